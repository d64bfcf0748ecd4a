"""Tables in the documentation written from the committed outputs, so that no number can drift.

A page holds a generated table between two markers::

    <!-- table:sine-results -->
    | ... the table, rewritten by `rnnlab docs` ... |
    <!-- /table -->

`rnnlab docs` rewrites every such block of README.md and docs/*.md from metrics/*.json,
params.yaml and the study's tables (plots/seq_len_study.md, written by `rnnlab report`);
`rnnlab docs --check` rewrites nothing and fails, naming the page and the table, when a committed
page differs from a fresh render. A table is one function of :data:`TABLES` that
takes the repository's root and returns markdown lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from rnnlab import io
from rnnlab.errors import DataError

MARKER = re.compile(r"<!-- table:([a-z0-9-]+) -->\n(.*?)<!-- /table -->\n?", re.DOTALL)
OPEN = re.compile(r"<!-- table:([^ ]*) -->")
FENCE = re.compile(r"^ *```.*?^ *```", re.DOTALL | re.MULTILINE)  # a code block shows markers, it holds none
NAMES = {"mlp": "MLP", "rnn": "tanh RNN", "lstm": "LSTM", "gru": "GRU"}

# What the texts print (SPEC.md): constants of the sources, not of our runs.
TEXT_003 = {"gru": (0.0116, 0.0171), "mlp": (0.0184, 1.0187)}
TEXT_000_LSTM = (0.0036, 0.8241)
TEXT_004_RNN = {"epochs": 2351, "best_epoch": 2250, "test_accuracy": 0.9275}


def metrics(root: Path, name: str, prefix: str | None = None) -> dict:
    """metrics/<name>.json, without its experiment prefix (``{"S": {...}}`` -> ``{...}``)."""
    data = io.read_json(root / "metrics" / f"{name}.json")
    if not isinstance(data, dict):
        raise DataError(f"{root / 'metrics' / name}.json: not a JSON object; run `dvc repro`")
    if prefix is not None and set(data) == {prefix}:
        return data[prefix]
    return data


def ball_metrics(root: Path) -> dict:
    # the ball's metrics may carry the experiment prefix "B" or none
    data = metrics(root, "ball")
    return data["B"] if set(data) == {"B"} else data


def row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def g3(x: float) -> str:
    """Three significant digits: 0.0191, 1.05, 0.589."""
    return f"{x:.3g}"


def spread(median: float, low: float, high: float) -> str:
    return f"{g3(median)} [{g3(low)}, {g3(high)}]"


def sci(x: float) -> str:
    """A ratio that spans 20 orders of magnitude: 0.096, 2.1e-4, 7.7e-7, 0."""
    if x == 0:
        return "0"
    return f"{x:.2g}" if x >= 0.01 else f"{x:.1e}".replace("e-0", "e-")


def ratio(log10: float | None) -> float:
    """The ratio a `*_log10_ratio` metric stores; null means it underflowed to 0."""
    return 0.0 if log10 is None else 10.0 ** log10


# ---------------------------------------------------------------------------------------------
# The tables
# ---------------------------------------------------------------------------------------------


def results(root: Path) -> list[str]:
    """README: what each text reports beside what the pipeline gives at the default params."""
    sine = io.read_json(root / "metrics" / "sine_detail.json")["models"]
    seed0 = {k: sine[k]["seeds"]["0"] for k in sine}
    ball = ball_metrics(root)["rnn"]
    windows = metrics(root, "windows", "W")
    random = metrics(root, "random_windows", "R")
    gradients = metrics(root, "gradients", "gradients")
    best_w = min(windows, key=lambda k: windows[k]["one_step_mse"])
    lines = [
        row("experiment", "the text reports", "rnnlab, default params", "where"),
        row("---", "---", "---", "---"),
        row("S: noisy sine, GRU (text 003)", "train {:.4f} / test {:.4f}".format(*TEXT_003["gru"]),
            f"**{seed0['gru']['train_loss']:.4f} / {seed0['gru']['rollout_mse']:.4f}** (torch seed 0); "
            f"median of 5 seeds {sine['gru']['median']['rollout_mse']:.4f}", "[docs/sine.md](docs/sine.md)"),
        row("S: the same, MLP (text 003)", "train {:.4f} / test {:.4f}".format(*TEXT_003["mlp"]),
            f"{seed0['mlp']['train_loss']:.4f} / {seed0['mlp']['rollout_mse']:.4f} (the text's MLP starts from "
            "the GRU's leftover random state)", "[docs/sine.md](docs/sine.md)"),
        row("S: LSTM (text 000)", "train {:.4f} / test {:.4f} (the textbook's own csv)".format(*TEXT_000_LSTM),
            f"{seed0['lstm']['train_loss']:.4f} / {seed0['lstm']['rollout_mse']:.4f} (text 003's sine)",
            "[docs/sine.md](docs/sine.md)"),
        row("B: ball's next position, RNN (text 004)",
            f"stop at epoch {TEXT_004_RNN['epochs']}, test accuracy {TEXT_004_RNN['test_accuracy']}",
            f"stop at epoch {ball['epochs']}, test accuracy {ball['test_accuracy']:.4f}, "
            f"mean error {ball['mae']:.3f} positions, on a generated csv (the article's is not available; on any "
            "csv the default engine is text 004's loop bit for bit)", "[docs/ball.md](docs/ball.md)"),
        row("W: sliding windows (text 001)", "plots only",
            f"one-step test MSE {windows[best_w]['one_step_mse']:.4f} ({NAMES[best_w]}, median of 5 seeds)",
            "[docs/windows.md](docs/windows.md)"),
        row("R: random windows (text 002)", "plots only",
            f"free-run MSE {random['rnn']['rollout_mse']:.3f} (tanh RNN, median of 5 seeds): right frequency, "
            "wrong phase", "[docs/random.md](docs/random.md)"),
        row("theory: gates keep the gradient (texts 002-004)", "claimed",
            f"after 100 steps, trained: GRU {sci(ratio(gradients['gru']['trained_log10_ratio']))}, "
            f"LSTM {sci(ratio(gradients['lstm']['trained_log10_ratio']))}, "
            f"tanh RNN {sci(ratio(gradients['rnn']['trained_log10_ratio']))} of the last step's gradient",
            "[docs/theory.md](docs/theory.md)"),
    ]
    return lines


def sine_results(root: Path) -> list[str]:
    """docs/sine.md: experiment S at the default params, every model and the references."""
    detail = io.read_json(root / "metrics" / "sine_detail.json")
    models, refs = detail["models"], detail["references"]
    text = {"gru": "{:.4f} / {:.4f} (text 003)".format(*TEXT_003["gru"]),
            "mlp": "{:.4f} / {:.4f} (text 003)¹".format(*TEXT_003["mlp"]),
            "rnn": "—",
            "lstm": "{:.4f} / {:.4f} (text 000, on the textbook's own csv²)".format(*TEXT_000_LSTM)}
    lines = [
        row("model", "parameters", "train loss, seed 0", "rollout test MSE, seed 0",
            "rollout MSE over 5 seeds: median [min, max]", "one-step test MSE (median)", "the text reports (train / test)"),
        row("---", "---:", "---:", "---:", "---:", "---:", "---"),
    ]
    for kind in ("gru", "mlp", "rnn", "lstm"):
        m, s = models[kind]["median"], models[kind]["seeds"]["0"]
        bold = "**{}**" if kind == "gru" else "{}"
        lines.append(row(NAMES[kind], models[kind]["parameters"], bold.format(f"{s['train_loss']:.4f}"),
                         bold.format(f"{s['rollout_mse']:.4f}"),
                         spread(m["rollout_mse"], m["rollout_mse_min"], m["rollout_mse_max"]),
                         f"{m['one_step_mse']:.4f}", text[kind]))
    for key, label, params, note in (("clean_sine", "*clean sine (noise floor)*", "—", "noise variance 0.01"),
                                     ("zero", "*predict zero*", "—", "—"),
                                     ("linear_ar", "*linear AR, `seq_len` lags (statsmodels AutoReg)*", "", "—")):
        r = refs[key]
        lines.append(row(label, params, "—", f"{r['rollout_mse']:.4f}", "", f"{r['one_step_mse']:.4f}", note))
    return lines


def ball_results(root: Path) -> list[str]:
    """docs/ball.md: text 004's recipe at the default params beside the article's run."""
    ball = ball_metrics(root)
    lines = [
        row("run", "model", "epochs (best)", "test accuracy (text 004's formula)", "mean \\|error\\| (positions)",
            "max \\|error\\|", "rounds to the true position"),
        row("---", "---", "---:", "---:", "---:", "---:", "---:"),
        row("the article", "RNN", f"{TEXT_004_RNN['epochs']} ({TEXT_004_RNN['best_epoch']})",
            TEXT_004_RNN["test_accuracy"], "—", "—", "—"),
    ]
    for kind in ("rnn", "lstm", "gru"):
        if kind not in ball:
            continue
        m = ball[kind]
        best = f"{m['best_epoch']}" if m["best_epoch"] else "none³"
        lines.append(row("rnnlab", NAMES[kind], f"{m['epochs']} ({best})", f"{m['test_accuracy']:.4f}",
                         f"{m['mae']:.3f}", f"{m['max_abs_error']:.2f}", f"{m['rounds_correct']:.0%}"))
    return lines


def windows_results(root: Path) -> list[str]:
    """docs/windows.md: experiment W, every model over the seeds."""
    from rnnlab import params, windows
    from rnnlab.models import parameter_count

    p = params.load(root / "params.yaml")
    w = metrics(root, "windows_detail", "W")
    labels = {"mlp": "MLP (window as features)", "rnn": "tanh RNN", "lstm": "LSTM", "gru": "GRU"}
    layers = p.windows.model.num_layers
    lines = [
        row("model", "parameters", f"one-step test MSE, median [min, max] over {len(p.seeds)} seeds",
            "free run over the test points"),
        row("---", "---:", "---:", "---:"),
    ]
    for kind in ("mlp", "rnn", "lstm", "gru"):
        m = w[kind]
        label = labels[kind] + (f", {layers} layers" if kind != "mlp" else "")
        lines.append(row(label, parameter_count(windows.model_config(p, kind)),
                         spread(m["one_step_mse"], m["one_step_mse_min"], m["one_step_mse_max"]),
                         spread(m["rollout_mse"], m["rollout_mse_min"], m["rollout_mse_max"])))
    return lines


def random_results(root: Path) -> list[str]:
    """docs/random.md: experiment R."""
    r = metrics(root, "random_windows_detail", "R")
    labels = {"rnn": "tanh RNN (the text's)", "lstm": "LSTM", "gru": "GRU"}
    lines = [
        row("model", "final train loss (median)", "free-run MSE, median [min, max] over the seeds"),
        row("---", "---:", "---:"),
    ]
    for kind in ("rnn", "lstm", "gru"):
        m = r[kind]
        lines.append(row(labels[kind], f"{m['train_loss']:.4f}",
                         spread(m["rollout_mse"], m["rollout_mse_min"], m["rollout_mse_max"])))
    return lines


def theory_claims(root: Path) -> list[str]:
    """docs/theory.md: each claim of the texts beside what the analyses measured."""
    grad = metrics(root, "gradients", "gradients")
    gates = metrics(root, "gates", "gates")
    t = {k: ratio(grad[k]["trained_log10_ratio"]) for k in grad}
    i = {k: ratio(grad[k]["initial_log10_ratio"]) for k in grad}
    lstm_vs_rnn = t["lstm"] / t["rnn"] if t["rnn"] else float("inf")
    gru_vs_lstm = t["gru"] / t["lstm"] if t["lstm"] else float("inf")
    gru, lstm = gates["gru"], gates["lstm"]
    underflow = " (underflowed)" if i["rnn"] == 0 else ""
    where = "`plots/analysis/gradient_flow.png`, `metrics/gradients.json`"
    return [
        row("claim", "where", "measured", "verdict"),
        row("---", "---", "---", "---"),
        row("Gradients through many steps vanish: BPTT multiplies one Jacobian per step (text 002)", where,
            f"at initialisation, after 100 steps: tanh RNN {sci(i['rnn'])}{underflow}, LSTM {sci(i['lstm'])}, "
            f"GRU {sci(i['gru'])} of the last step's gradient", "holds, for all three at initialisation"),
        row("The GRU's gates keep its gradient from vanishing (text 003)", "same",
            f"trained, after 100 steps: GRU keeps {sci(t['gru'])}, LSTM {sci(t['lstm'])}, tanh RNN {sci(t['rnn'])}",
            "holds after training, not by construction: freshly initialised, the GRU vanishes like the rest"),
        row("The LSTM's cell state, only multiplied and added, avoids vanishing (text 004)", "same",
            f"{sci(t['lstm'])} after 100 steps: {lstm_vs_rnn:.0f}x better than the RNN, "
            f"{gru_vs_lstm:.0f}x worse than the GRU", "partly"),
        row("Gradients explode, e.g. with large weights (text 002)", "`train_grad_norm` in the histories",
            f"largest per-epoch gradient norm at the texts' settings: RNN {grad['rnn']['train_grad_norm_max']:.1f}, "
            f"GRU {grad['gru']['train_grad_norm_max']:.1f}, LSTM {grad['lstm']['train_grad_norm_max']:.1f}",
            "not at these settings: nothing to clip"),
        row("The update gate keeps long-term memory, the reset gate short-term information (text-000 quiz)",
            "`plots/analysis/gates.png`, `metrics/gates.json`",
            f"mean activations along the rollout: GRU update {gru['update_mean']:.2f}, reset {gru['reset_mean']:.2f}; "
            f"LSTM input {lstm['input_mean']:.2f}, forget {lstm['forget_mean']:.2f}, output {lstm['output_mean']:.2f}",
            "not visible here: the update gate swings with the sine's phase instead of holding near 1 "
            "(see the figure); a 200-step sine needs little long memory"),
    ]


STUDY = Path("plots") / "seq_len_study.md"  # `rnnlab report`'s tables, committed


def study_table(root: Path, protocol: str, heading: str) -> list[list[str]]:
    """The cells of one table of `rnnlab report`'s study: the first table after ``### <heading>``
    under ``## Protocol: <protocol>``; its header row first."""
    text = io.read_text(root / STUDY)
    section = re.search(rf"^## Protocol: {re.escape(protocol)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    table = section and re.search(rf"^### {re.escape(heading)}[^\n]*\n\n((?:\|.*\n)+)", section.group(1), re.M)
    if not table:
        raise DataError(f"{root / STUDY}: no table {heading!r} under '## Protocol: {protocol}'; "
                        "run `rnnlab report` on the study's experiments")
    lines = [line for line in table.group(1).splitlines() if not line.startswith("| ---")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def study_findings(root: Path) -> list[str]:
    """docs/study.md: the texts' protocol at every length, from the study's own tables: each
    network's rollout test MSE and the GRU's hold rate, beside the linear AR with the same lags."""
    mse = study_table(root, "the texts' epochs", "Rollout test MSE, final epoch")
    hold = {r[0]: r[1:] for r in study_table(root, "the texts' epochs", "Hold rate")}
    lengths = [re.match(r"seq_len (\d+)", cell).group(1) for cell in mse[0][1:]]
    rows = {r[0]: r[1:] for r in mse[1:]}
    lines = [row("", *lengths), row(*["---"] * (len(lengths) + 1))]
    for name in ("GRU", "LSTM", "RNN", "MLP"):
        lines.append(row(name, *rows[name]))
        if name == "GRU":
            lines.append(row("GRU hold rate", *hold["GRU"]))
    lines.append(row("linear AR, same lags", *rows["linear AR, no constant (the texts'; reference)"]))
    return lines


PIN_LABELS = {
    "pinned": "every pin (what the stages run)",
    "ATEN_CPU_CAPABILITY": "ATen left to choose",
    "MKL_CBWR": "MKL left to choose",
    "NPY_DISABLE_CPU_FEATURES": "numpy left to choose",
    "OPENBLAS_CORETYPE": "OpenBLAS with SkylakeX's kernels (an AVX-512 Intel CPU's choice)",
    "OPENBLAS_NUM_THREADS": "OpenBLAS left its threads",
    "native": "no pin",
}


def pins(root: Path) -> list[str]:
    """docs/reproducibility.md: what each pin governs and costs (benchmarks/bench_pins.py's run)."""
    data = io.read_json(root / "benchmarks/results/bench_pins.json")
    machine = data["machine"]
    lines = [f"Measured by `python benchmarks/bench_pins.py` on {machine['cpu']}, {machine['date']}, {machine['load']}.",
             "",
             "| a whole `dvc repro` with | its time | text 004's RNN trains | outputs that differ from the pinned run's "
             "| metrics that moved (largest relative change) |",
             "| --- | ---: | ---: | --- | --- |"]
    pinned = data["variants"]["pinned"]
    for name, variant in data["variants"].items():
        differing = variant.get("differs_from_pinned", [])
        outs = "—" if name == "pinned" else (", ".join(f"`{o}`" for o in differing) if differing else "none")
        moved = "—" if name == "pinned" else (
            f"{variant['metrics_changed']} ({variant['largest_relative_change']:.2g}, `{variant['where']}`)"
            if variant.get("metrics_changed") else "none")
        time = f"{variant['seconds']:.0f} s" + ("" if name == "pinned" else f" ({variant['seconds'] / pinned['seconds']:.2f}x)")
        lines.append(row(PIN_LABELS.get(name, name), time, f"{variant['ball_rnn_seconds']:.0f} s", outs, moved))
    return lines


def cross_cpu(root: Path) -> list[str]:
    """docs/reproducibility.md: the probe's hashes on emulated CPUs (benchmarks/cross_cpu.py's run)."""
    data = io.read_json(root / "benchmarks/results/cross_cpu.json")
    here = data["runs"][0]
    parts = list(here["hashes"])
    lines = [f"Each cell: the part's hash, or \"= pinned\" where it equals this machine's run with the pins "
             f"({data['date']}, `python benchmarks/cross_cpu.py`).", "",
             row("CPU", "pins", *parts), row("---", "---", *["---"] * len(parts))]
    for run in data["runs"]:
        cells = ["= pinned" if run["hashes"][part] == here["hashes"][part] else f"`{run['hashes'][part][:6]}`"
                 for part in parts]
        lines.append(row(run["cpu"], run["pins"], *cells))
    return lines


def minutes(seconds: float) -> str:
    """93 -> "1 min 33 s"; 45 -> "45 s"."""
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


COMMANDS = {"setup": "the venv, the pinned install, numba compiling the engine's kernels",
            "repro": "`dvc repro` of every stage at the default params",
            "test": "the test suite (pytest on both cores)"}


def commands(root: Path) -> list[str]:
    """docs/workflow.md: what the README's commands cost from a fresh clone (benchmarks/time_commands.py)."""
    data = io.read_json(root / "benchmarks/results/commands.json")
    machine = data["machine"]
    lines = [f"Measured by `python benchmarks/time_commands.py` on {machine['cpu']}, {machine['cores']} cores, "
             f"{machine['date']} (commit {machine['commit']}), one command after another:", "",
             "| from a fresh clone | took | what it does | load average before / after |",
             "| --- | ---: | --- | --- |"]
    for name, result in data["commands"].items():
        what = COMMANDS[name]
        if warm := result.get("kernel_warm_up_seconds"):
            what += " (" + " and ".join(f"{part} {minutes(s)}" for part, s in warm.items()) + ", side by side)"
        if pytest := result.get("pytest"):
            what += f": {pytest['summary']}, pytest {minutes(pytest['seconds'])}"
        if status := result.get("status"):
            what += f"; then `rnnlab status`: {status}"
        lines.append(row(f"`make {name}`", minutes(result["seconds"]), what,
                         f"{result['load_before']:.2f} / {result['load_after']:.2f}"))
    return lines


def exp_show_width(root: Path) -> list[str]:
    """docs/workflow.md: why plain `dvc exp show` folds S's numbers in 200 columns (benchmarks/exp_show_width.py)."""
    data = io.read_json(root / "benchmarks/results/exp_show_width.json")
    repo, widths = data["repository"], data["narrowest_terminal_by_folded_columns"]
    lines = [f"`dvc exp show` here has {repo['all']} columns: {repo['params.yaml leaves']} params (every leaf of "
             f"params.yaml), {repo['dependencies']} file dependencies, {repo['declared metrics']} declared metrics "
             f"and {repo['bookkeeping']} of DVC's own. The narrowest terminal in which DVC's table prints an "
             "experiment's name, date, seq_len and S's four metrics in full, by how many more columns it folds "
             f"into \"…\" ({data['date']}, `python benchmarks/exp_show_width.py`):", "",
             row("columns folded", *widths), row("---", *["---:"] * len(widths)),
             row("narrowest terminal", *widths.values()), "",
             f"This repository's own `dvc exp show` (the workspace and the commit, no experiment) prints S's four "
             f"metrics from {data['repository_narrowest_terminal']} columns on."]
    return lines


def series_contest(root: Path, name: str = "series_30seeds") -> list[str]:
    """docs/series.md: the contest on five series at 30 seeds (benchmarks/bench_series.py's output,
    the command in the results file's first line)."""
    path = root / "benchmarks/results" / f"{name}.md"
    lines = io.read_text(path).splitlines()
    table = [line for line in lines if line.startswith("|")]
    against = [line for line in lines if ": " in line and not line.startswith(("|", "#"))]
    if not table or not against:
        raise DataError(f"{path}: no table or no seed lines; run the command its first line names")
    return [*table, "", "Each network's 30 seeds against each series' best classical forecaster (the script's own "
            "lines; `>` marks the network chosen on the validation slice):", "", "```", *against, "```"]


TABLES: dict[str, Callable[[Path], list[str]]] = {
    "results": results,
    "sine-results": sine_results,
    "ball-results": ball_results,
    "windows-results": windows_results,
    "random-results": random_results,
    "theory-claims": theory_claims,
    "study-findings": study_findings,
    "pins": pins,
    "cross-cpu": cross_cpu,
    "commands": commands,
    "exp-show-width": exp_show_width,
    "series-contest": series_contest,
    "series-contest-hybrid": lambda root: series_contest(root, "series_30seeds_ar_residual"),
}


# ---------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------


def pages(root: Path) -> list[Path]:
    """The pages that may hold generated tables: README.md and docs/*.md."""
    found = [root / "README.md"] if (root / "README.md").exists() else []
    return found + sorted((root / "docs").glob("*.md"))


def used(text: str) -> list[str]:
    """The tables a page's text asks for (markers shown in a code block do not count)."""
    fenced = [m.span() for m in FENCE.finditer(text)]
    return [m.group(1) for m in MARKER.finditer(text) if not any(a <= m.start() < b for a, b in fenced)]


def render(page: Path, root: Path) -> tuple[str, list[str]]:
    """The page with every table rewritten, and the names of the tables that changed."""
    text = io.read_text(page)
    name = page.relative_to(root)
    fenced = [m.span() for m in FENCE.finditer(text)]

    def shown(m: re.Match) -> bool:
        return any(a <= m.start() < b for a, b in fenced)

    opened = [(m.group(1), text.count("\n", 0, m.start()) + 1) for m in OPEN.finditer(text) if not shown(m)]
    closed = {m.start(): m for m in MARKER.finditer(text) if not shown(m)}
    if len(opened) != len(closed):
        table, line = next((o for o in opened if o[0] not in {m.group(1) for m in closed.values()}), opened[-1])
        raise DataError(f"{name}:{line}: table {table!r} has no closing <!-- /table --> (or a marker is malformed)")
    for table, line in opened:
        if table not in TABLES:
            raise DataError(f"{name}:{line}: unknown table {table!r} (known: {', '.join(TABLES)})")
    changed: list[str] = []

    def fresh(m: re.Match) -> str:
        if shown(m):
            return m.group(0)
        try:
            body = "\n".join(TABLES[m.group(1)](root)) + "\n"
        except (KeyError, TypeError) as exc:  # metrics of other params than the tables describe
            raise DataError(f"{name}: table {m.group(1)!r} found no {exc} in metrics/ (a model or key the "
                            "default params write); run `dvc repro` at the committed params.yaml") from None
        if body != m.group(2):
            changed.append(m.group(1))
        return f"<!-- table:{m.group(1)} -->\n{body}<!-- /table -->\n"

    return MARKER.sub(fresh, text), changed


def run(root: Path, check: bool) -> list[str]:
    """Rewrite (or with ``check``, only compare) every generated table; one line per stale table."""
    stale: list[str] = []
    fresh: dict[Path, str] = {}
    for page in pages(root):  # every page renders before any is written: a failure writes nothing
        text, changed = render(page, root)
        stale += [f"{page.relative_to(root)}: table {name!r} differs from a fresh render of the committed outputs"
                  for name in changed]
        if changed:
            fresh[page] = text
    if not check:
        for page, text in fresh.items():
            io.write_text(page, text)
    return stale
