"""The sequence-length study (text 000's exercise), read back from DVC experiments.

``dvc exp show --json`` lists each commit with its experiments and every run's params; the
per-seed metrics are not declared metrics (they would make ``dvc exp show`` hundreds of columns
wide) but a git-tracked file of every run's commit, ``metrics/sine_detail.json``, read with
``git show <rev>:metrics/sine_detail.json``. A run joins the study when it has that file and
differs from the commit's own params in ``seq_len`` only among the params that feed the sine
stages (``SINE_PARAMS``): a run that also changed, say, ``ball.train.lr`` trained the very same
sine models. Anything else is listed as skipped with the reason, never silently mixed in.

Other differences are allowed when they are the training *recipe* (``RECIPE_KEYS``): the
optimizer-step budget of the fair protocol (``sine.train.steps``: the same number of updates at
every length), the learning rate, the hidden size, scheduled sampling and the validation slice.
Each recipe is its own protocol: its runs form their own curve beside the texts' fixed epochs.

Recipes are chosen, never on the test range, by the sweep's grid (``grid``): the runs that held
out a validation slice (``sine.data.validation_fraction``) at one sequence length, recipe x model,
judged by the median validation rollout MSE. A model's best recipe is its *tuned* recipe; the
runs of that recipe at other lengths are the model's tuned curve in the study.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rnnlab.errors import RnnlabError
from rnnlab.plotting import BAND_ALPHA, REFERENCE_STYLES, _color, new_figure, seeds_text, short_number, tidy_log_axis

DETAIL = "metrics/sine_detail.json"
HOW_TO = "dvc exp run --queue -S seq_len=5,10,20,30,40,50 && dvc queue start -j 2"
TEXTS = "the texts' epochs"  # the protocol of a run with the commit's own recipe
# What a sweep varies, and how a protocol's label names each: a run differing from its commit in
# these (beside seq_len) trained the same models on another recipe, so it joins the study.
RECIPE_KEYS = {
    "sine.train.steps": "{} steps",  # the fair protocol: this budget at every seq_len
    "sine.train.lr": "lr {}",
    "sine.model.hidden_size": "hidden {}",
    "sine.train.sampling": "sampling {}",
    "sine.data.validation_fraction": "validation {}",
}
CAPTION_RUNS = 8  # more runs than this are counted in the figure's caption, not named
SELECTION = "validation_mse"  # what the grid chooses by: the rollout over the validation slice
# The top-level params the sine stages read (dvc.yaml's train_sine and evaluate_sine); a
# difference anywhere else cannot change a sine metric.
SINE_PARAMS = ("seq_len", "seeds", "threads", "series", "sine")
REFERENCE_ROWS = {  # the classical forecasters, beside the networks in every table
    "linear_ar": "linear AR, no constant (the texts'; reference)",
    "autoreg": "AutoReg with a constant (reference)",
    "exp_smoothing": "Holt-Winters (reference)",
    "seasonal_naive": "seasonal naive (reference)",
    "arima": "ARIMA (reference)",
    "naive": "naive (reference)",
}
MEASURES = {
    "rollout_mse": "final epoch (the texts' number)",
    "rollout_mse_last10": "mean of the last 10 epochs",
    "rollout_mse_best": "best epoch",
}


@dataclass
class Run:
    name: str
    seq_len: int
    per_seed: dict[str, dict[str, dict[str, float]]]  # model -> seed -> metric -> value
    references: dict[str, dict[str, float]]
    params: dict = field(default_factory=dict)  # the run's params.yaml (for the figure's caption)
    recipe: dict[str, object] = field(default_factory=dict)  # RECIPE_KEYS it changes -> its values

    @property
    def protocol(self) -> str:
        """The texts' recipe (the commit's), or the recipe keys this run changes."""
        return ", ".join(RECIPE_KEYS[key].format(value) for key, value in self.recipe.items()) or TEXTS

    @property
    def validated(self) -> bool:
        """Did it hold out a validation slice (so that the grid can judge it)?"""
        return all(SELECTION in seed for seeds in self.per_seed.values() for seed in seeds.values())

    def values(self, model: str, measure: str) -> list[float]:
        return [m[measure] for m in self.per_seed[model].values()]


@dataclass
class Study:
    runs: list[Run] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(m for run in self.runs for m in run.per_seed))


def exp_show(repo: Path, all_commits: bool) -> list[dict]:
    """``dvc exp show --json`` of the repository (``-A``: every commit, not only HEAD)."""
    command = ["dvc", "exp", "show", "--json", *(["--all-commits"] if all_commits else [])]
    # the dvc of this interpreter's environment, whether or not that environment is activated
    proc = subprocess.run([sys.executable, "-m", *command], cwd=repo, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RnnlabError(f"`{' '.join(command)}` failed in {repo}: {reason}")
    return json.loads(proc.stdout)


def git_reader(repo: Path) -> Callable[[str], dict | None]:
    """``rev -> metrics/sine_detail.json`` at that commit (an experiment's too), or None."""

    def read(rev: str) -> dict | None:
        proc = subprocess.run(["git", "show", f"{rev}:{DETAIL}"], cwd=repo, capture_output=True, text=True, check=False)
        try:
            return json.loads(proc.stdout) if proc.returncode == 0 else None
        except json.JSONDecodeError:
            return None

    return read


def _runs_of(commit: dict):
    """(name, rev, data, state) of a commit's own run and of each of its experiments; state is
    the queue's ("queued", "running", "failed", "success"), or None for a run no queue ran."""
    yield commit["rev"][:7], commit["rev"], commit.get("data"), None
    for experiment in commit.get("experiments") or []:
        state = (experiment.get("executor") or {}).get("state")
        for rev in experiment.get("revs") or []:
            yield rev.get("name") or experiment.get("name") or rev["rev"][:7], rev["rev"], rev.get("data"), state


def _file_data(data: dict, kind: str, path: str):
    return ((data.get(kind) or {}).get(path) or {}).get("data")


def collect(rows: list[dict], read_detail: Callable[[str], dict | None]) -> Study:
    """Turn ``dvc exp show --json`` output into a study; the workspace row is not a run."""
    study = Study()
    for commit in rows:
        if commit.get("rev") == "workspace":
            continue
        base_params = _file_data(commit.get("data") or {}, "params", "params.yaml") or {}
        for name, rev, data, state in _runs_of(commit):
            if state not in (None, "success"):  # a queued or running one lists its params, not yet its metrics
                study.skipped.append((name, f"{state}, no metrics yet" if state in ("queued", "running") else state))
                continue
            if not data:
                study.skipped.append((name, "no data (a failed or still queued experiment)"))
                continue
            params = _file_data(data, "params", "params.yaml")
            if not params or "seq_len" not in params:
                study.skipped.append((name, "no seq_len in params.yaml"))
            elif differing := _differences(_sine_params(params), _sine_params(base_params)):
                study.skipped.append((name, f"changes more than seq_len: {', '.join(differing)}"))
            elif not (detail := read_detail(rev)) or "models" not in detail or "references" not in detail:
                study.skipped.append((name, f"no {DETAIL} in its commit"))
            else:
                per_seed = {kind: model["seeds"] for kind, model in detail["models"].items()}
                recipe = _recipe(params, base_params)
                study.runs.append(Run(name, int(params["seq_len"]), per_seed, detail["references"], params, recipe))
    return study


def _dotted(params: dict, key: str):
    for part in key.split("."):
        params = params.get(part) if isinstance(params, dict) else None
    return params


def _recipe(params: dict, base: dict) -> dict[str, object]:
    """The recipe keys whose values differ from the commit's, in ``RECIPE_KEYS``' order."""
    return {key: _dotted(params, key) for key in RECIPE_KEYS if _dotted(params, key) != _dotted(base, key)}


def _sine_params(params: dict) -> dict:
    return {key: value for key, value in params.items() if key in SINE_PARAMS}


def _differences(params: dict, base: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ, apart from seq_len and the recipe (``RECIPE_KEYS``)."""
    keys = sorted(set(params) | set(base))
    found = []
    for key in keys:
        dotted = f"{prefix}{key}"
        if dotted == "seq_len" or dotted in RECIPE_KEYS:
            continue
        a, b = params.get(key), base.get(key)
        if isinstance(a, dict) or isinstance(b, dict):  # a section one side lacks: compare its keys
            found += _differences(a if isinstance(a, dict) else {}, b if isinstance(b, dict) else {}, f"{dotted}.")
        elif a != b:
            found.append(dotted)
    return found


def by_seq_len(study: Study, protocol: str = TEXTS) -> dict[int, Run]:
    """One run per sequence length of a protocol: the first listed (DVC lists the newest first)."""
    chosen: dict[int, Run] = {}
    for run in (r for r in study.runs if r.protocol == protocol):
        if run.seq_len in chosen:
            study.skipped.append((run.name, f"seq_len {run.seq_len} already reported by {chosen[run.seq_len].name}"))
        else:
            chosen[run.seq_len] = run
    return dict(sorted(chosen.items()))


def protocols(study: Study) -> dict[str, dict[int, Run]]:
    """Each protocol's runs by sequence length, the texts' first; a protocol needs two lengths
    (a run of the sweep's grid needs none: the grid reports it)."""
    names = sorted({run.protocol for run in study.runs}, key=lambda name: (name != TEXTS, name))
    groups = {name: by_seq_len(study, name) for name in names}
    in_grid = {run.name for run in grid(study).values()}
    for name, runs in list(groups.items()):
        if len(runs) < 2:
            if name != TEXTS:  # the commit's own run is always there alone before any experiment
                study.skipped += [(run.name, f"the only seq_len with {name}") for run in runs.values()
                                  if run.name not in in_grid]
            del groups[name]
    return groups


def grid(study: Study) -> dict[str, Run]:
    """The sweep: the runs that held out a validation slice, at the sequence length that has the
    most of them (the shorter on a tie), one per recipe (the first listed), by protocol."""
    validated = [run for run in study.runs if run.validated]
    if not validated:
        return {}
    counts = Counter(run.seq_len for run in validated)
    seq_len = min(counts, key=lambda length: (-counts[length], length))
    chosen: dict[str, Run] = {}
    for run in validated:
        if run.seq_len == seq_len:
            chosen.setdefault(run.protocol, run)
    return chosen


def tuned(recipes: dict[str, Run], models: list[str]) -> dict[str, str]:
    """Each model's best recipe on the grid: the lowest median validation MSE (never the test's);
    on a tie the recipe that changes fewer keys (the MLP ignores ``hidden_size``: its recipes with
    and without it are the same training)."""
    best = {}
    for model in models:
        scores = [(float(np.median(run.values(model, SELECTION))), len(run.recipe), protocol)
                  for protocol, run in recipes.items() if model in run.per_seed]
        if scores:
            best[model] = min(scores)[2]
    return best


def grid_table(recipes: dict[str, Run], models: list[str], measure: str, best: dict[str, str]) -> pd.DataFrame:
    """recipe x model: ``median [min, max]`` over seeds of ``measure``, each model's tuned recipe in bold."""
    cells = {}
    for model in models:
        column = {}
        for protocol, run in recipes.items():
            if model in run.per_seed:
                v = run.values(model, measure)
                cell = _median_range(v)
                column[protocol] = f"**{cell}**" if best.get(model) == protocol else cell
        cells[model.upper()] = column
    return pd.DataFrame(cells)


def tuned_runs(study: Study, best: dict[str, str]) -> dict[str, dict[int, Run]]:
    """model -> its tuned recipe's runs by sequence length (where that recipe ran at two or more)."""
    result = {}
    for model, protocol in best.items():
        runs = {length: run for length, run in by_seq_len(Study(study.runs), protocol).items() if model in run.per_seed}
        if len(runs) >= 2:
            result[model] = runs
    return result


def sweep_markdown(study: Study) -> str:
    """The grid, each model's tuned recipe, and the tuned study; empty without a sweep."""
    recipes = grid(study)
    if not recipes:
        return ""
    best = tuned(recipes, study.models)
    seq_len = next(iter(recipes.values())).seq_len
    parts = [f"\n## The sweep: {len(recipes)} recipes at seq_len {seq_len}, chosen on the validation slice\n",
             "\nEach model's recipe is chosen by its median validation rollout MSE (bold); the test range "
             "is never looked at to choose.\n",
             f"\n### Validation rollout MSE (chooses)\n\n{_markdown_table(grid_table(recipes, study.models, SELECTION, best))}\n",
             f"\n### Test rollout MSE (read only)\n\n{_markdown_table(grid_table(recipes, study.models, 'rollout_mse', best))}\n",
             "\n### Tuned recipes\n\n" + "".join(f"- {m.upper()}: {protocol}\n" for m, protocol in best.items())]
    if curves := tuned_runs(study, best):
        rows = {}
        for model, runs in curves.items():
            rows[f"{model.upper()} ({best[model]})"] = {
                f"seq_len {length}": _median_range(run.values(model, "rollout_mse")) for length, run in runs.items()}
        parts.append(f"\n### Tuned study: test rollout MSE\n\n{_markdown_table(pd.DataFrame(rows).T)}\n")
    return "".join(parts)


def _median_range(values: list[float]) -> str:
    return f"{np.median(values):.3g} [{min(values):.3g}, {max(values):.3g}]"


def table(runs: dict[int, Run], models: list[str], measure: str) -> pd.DataFrame:
    """model x seq_len: ``median [min, max]`` over seeds."""
    cells = {}
    for seq_len, run in runs.items():
        column = {}
        for model in models:
            if model in run.per_seed:
                column[model.upper()] = _median_range(run.values(model, measure))
        for name, label in REFERENCE_ROWS.items():  # those a run has (no seasonal one without a season)
            if name in run.references:
                column[label] = f"{run.references[name]['rollout_mse']:.3g}"
        cells[f"seq_len {seq_len}"] = column
    return pd.DataFrame(cells)


def _markdown_table(frame: pd.DataFrame) -> str:
    rows = [["", *frame.columns], ["---"] * (len(frame.columns) + 1)]
    rows += [[str(index), *map(str, row)] for index, row in zip(frame.index, frame.to_numpy())]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def markdown(groups: dict[str, dict[int, Run]], study: Study) -> str:
    first = next(iter(next(iter(groups.values())).values()))
    seeds = len(next(iter(first.per_seed.values())))
    floor = first.references.get("clean_sine", {}).get("rollout_mse")
    parts = [f"Rollout test MSE over the free-running test range, median [min, max] over {seeds} seeds. "
             + (f"Noise floor (clean sine): {floor:.4f}; " if floor is not None else "")
             + f"predicting zero: {first.references['zero']['rollout_mse']:.3f}.\n"]
    for protocol, runs in groups.items():
        parts.append(f"\n## Protocol: {protocol}\n")
        for measure, label in MEASURES.items():
            parts.append(f"\n### {label}\n\n{_markdown_table(table(runs, study.models, measure))}\n")
    parts.append(sweep_markdown(study))
    if study.skipped:
        parts.append("\nSkipped: " + "; ".join(f"{name} ({why})" for name, why in study.skipped) + "\n")
    return "".join(parts).rstrip("\n") + "\n"


def caption(groups: dict[str, dict[int, Run]]) -> str:
    """The params the study's runs share (they differ in seq_len and protocol only, among the
    sine params)."""
    runs = {run.name: run for group in groups.values() for run in group.values()}
    first = next(iter(runs.values()))
    lengths = sorted({run.seq_len for run in runs.values()})
    seeds = first.params.get("seeds") or sorted({int(s) for model in first.per_seed.values() for s in model})
    sine = first.params.get("sine") or {}
    model, train = sine.get("model") or {}, sine.get("train") or {}
    parts = [f"seq_len={', '.join(map(str, lengths))}", seeds_text(seeds)]
    if "hidden_size" in model:
        layers = model.get("num_layers", 1)
        parts.append(f"hidden {model['hidden_size']}" + (f" x {layers} layers" if layers > 1 else ""))
    if "lr" in train:
        parts.append(f"{train.get('optimizer', '')} lr {short_number(float(train['lr']))}".lstrip())
    if "epochs" in train:
        parts.append(f"{train['epochs']} epochs" + (" or a step budget" if len(groups) > 1 or TEXTS not in groups else ""))
    # a sweep has dozens of runs: name them only while the caption stays one readable line
    parts.append("runs: " + ", ".join(runs) if len(runs) <= CAPTION_RUNS else f"{len(runs)} runs")
    return " · ".join(parts)


# How each protocol's median is drawn: the texts' solid with dots, a fair budget dashed.
PROTOCOL_STYLES = [("o-", ".", 1.0), ("s--", "x", 0.75), ("^:", "+", 0.75)]


TUNED_STYLE = ("D:", "d", 0.9)  # colored dots and diamonds: the gray dash-dot is the AR


def figure(groups: dict[str, dict[int, Run]], models: list[str],
           tuned_curves: dict[str, tuple[str, dict[int, Run]]] | None = None) -> Figure:
    """Rollout MSE against seq_len, one panel per model on one shared scale (four bands on one
    axis hide each other): every seed as a dot, the median as a line per protocol, the band from
    the best to the worst seed, and the references in every panel. A recipe with a validation
    slice is drawn only as the tuned curve of the models it is tuned for (``tuned_curves``:
    model -> (recipe, runs by seq_len)), not in every panel."""
    tuned_curves = tuned_curves or {}
    groups = {name: runs for name, runs in groups.items()
              if not any("sine.data.validation_fraction" in run.recipe for run in runs.values())}
    everything = {s: run for runs in [*groups.values(), *(r for _, r in tuned_curves.values())] for s, run in runs.items()}
    lengths = sorted(everything)
    cols = 1 if len(models) == 1 else 2
    rows = -(-len(models) // cols)
    captioned = {**groups, **{f"tuned {m}": runs for m, (_, runs) in tuned_curves.items()}}
    fig = new_figure((12, 3.2 * rows + 1.0), caption(captioned))  # the tuned recipes: in the legends
    grid = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    for spare in grid[len(models):]:
        spare.remove()
    axes = grid[: len(models)]
    for k, (ax, model) in enumerate(zip(axes, models)):
        for (protocol, runs), styles in zip(groups.items(), PROTOCOL_STYLES):
            _protocol_curve(ax, model, runs, protocol, styles, first=protocol == next(iter(groups)))
        if model in tuned_curves:
            protocol, runs = tuned_curves[model]
            _protocol_curve(ax, model, runs, f"tuned: {protocol}", TUNED_STYLE, first=not groups)
        label, style = REFERENCE_STYLES["linear_ar"]
        ar = "linear_ar" if "linear_ar" in everything[lengths[0]].references else "autoreg"  # the sine's, or a series'
        label = label if ar == "linear_ar" else "AutoReg with a constant"
        ax.plot(lengths, [everything[s].references[ar]["rollout_mse"] for s in lengths], color="gray", ls=style,
                label=f"{label} over seq_len lags")
        for name in ("clean_sine", "zero"):  # a series of one's own has no clean signal
            if name in everything[lengths[0]].references:
                label, style = REFERENCE_STYLES[name]
                ax.axhline(everything[lengths[0]].references[name]["rollout_mse"], color="gray", ls=style, lw=1, label=label)
        ax.set(yscale="log", xticks=lengths)
        tuned_note = f" · diamonds, dotted: its tuned recipe ({tuned_curves[model][0]})" if model in tuned_curves else ""
        ax.set_title(model.upper() + tuned_note, fontsize="medium" if not tuned_note else "small")
        if k + cols >= len(models):  # no panel below it
            ax.set_xlabel("seq_len (input steps per training window)")
            ax.xaxis.set_tick_params(labelbottom=True)
        if k % cols == 0:
            ax.set_ylabel("rollout test MSE")
    axes[0].legend(fontsize="x-small", loc="center right", ncols=2)
    tidy_log_axis(axes[0])
    seeds = len(next(iter(everything[lengths[0]].per_seed.values())))
    fig.suptitle(f"What sequence length does: rollout test MSE, median of {seeds} seeds, band from best to worst seed")
    return fig


def _protocol_curve(ax, model: str, runs: dict[int, Run], protocol: str, styles: tuple, first: bool) -> None:
    style, marker, alpha = styles
    color = _color(model)
    present = [s for s in runs if model in runs[s].per_seed]
    values = [runs[s].values(model, "rollout_mse") for s in present]
    if first:  # one band per panel: two overlapping bands would hide each other again
        ax.fill_between(present, [min(v) for v in values], [max(v) for v in values], color=color, alpha=BAND_ALPHA, lw=0,
                        label="best to worst seed")
    for s, v in zip(present, values):
        ax.plot([s] * len(v), v, marker, color=color, ms=4, alpha=0.6 * alpha,
                label=("one seed" if first else f"one seed ({protocol})") if s == present[0] else None)
    median = f"{model.upper()} median" + ("" if first and protocol == TEXTS else f" ({protocol})")
    ax.plot(present, [np.median(v) for v in values], style, color=color, alpha=alpha, label=median)


def write(study: Study, figure_path: Path, table_path: Path) -> dict[int, Run]:
    """The figure and tables of every protocol with two or more lengths; returns the runs drawn
    by sequence length (the texts' protocol's where it has one)."""
    from rnnlab.io import save_figure, write_text

    groups = protocols(study)
    if not groups:
        have = ", ".join(f"{r.name} (seq_len {r.seq_len})" for r in study.runs) or "none"
        raise RnnlabError(f"a study needs runs at two or more sequence lengths; found {have}. Create them with:\n  {HOW_TO}")
    best = tuned(grid(study), study.models)
    curves = {model: (best[model], runs) for model, runs in tuned_runs(study, best).items()}
    save_figure(figure_path, figure(groups, study.models, curves))
    write_text(table_path, markdown(groups, study))
    return dict(sorted({s: run for runs in reversed(groups.values()) for s, run in runs.items()}.items()))
