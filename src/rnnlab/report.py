"""The sequence-length study (seed 000's exercise), read back from DVC experiments.

``dvc exp show --json`` lists each commit with its experiments; every run carries its
params and metrics by file. A run joins the study when it has the per-seed sine metrics and
differs from the commit's own params in ``seq_len`` only among the params that feed the sine
stages (``SINE_PARAMS``): a run that also changed, say, ``ball.train.lr`` trained the very same
sine models. Anything else is listed as skipped with the reason, never silently mixed in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rnnlab.errors import RnnlabError
from rnnlab.plotting import BAND_ALPHA, REFERENCE_STYLES, _color, new_figure, seeds_text, short_number, tidy_log_axis

SEED_METRICS = "metrics/sine_seeds.json"
METRICS = "metrics/sine.json"
HOW_TO = "dvc exp run --queue -S seq_len=5,10,20,30,40,50 && dvc queue start -j 2"
# The top-level params the sine stages read (dvc.yaml's train_sine and evaluate_sine); a
# difference anywhere else cannot change a sine metric.
SINE_PARAMS = ("seq_len", "seeds", "threads", "series", "sine")
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


def _runs_of(commit: dict):
    """(name, data) of a commit's own run and of each of its experiments."""
    yield commit["rev"][:7], commit.get("data")
    for experiment in commit.get("experiments") or []:
        for rev in experiment.get("revs") or []:
            yield rev.get("name") or experiment.get("name") or rev["rev"][:7], rev.get("data")


def _file_data(data: dict, kind: str, path: str):
    return ((data.get(kind) or {}).get(path) or {}).get("data")


def collect(rows: list[dict]) -> Study:
    """Turn ``dvc exp show --json`` output into a study; the workspace row is not a run."""
    study = Study()
    for commit in rows:
        if commit.get("rev") == "workspace":
            continue
        base_params = _file_data(commit.get("data") or {}, "params", "params.yaml") or {}
        for name, data in _runs_of(commit):
            if not data:
                study.skipped.append((name, "no data (a failed or still queued experiment)"))
                continue
            params = _file_data(data, "params", "params.yaml")
            per_seed, summary = _file_data(data, "metrics", SEED_METRICS), _file_data(data, "metrics", METRICS)
            if not params or "seq_len" not in params:
                study.skipped.append((name, "no seq_len in params.yaml"))
            elif not per_seed or not summary or "reference" not in summary:
                study.skipped.append((name, f"missing {SEED_METRICS} or {METRICS}"))
            elif differing := _differences(_sine_params(params), _sine_params(base_params)):
                study.skipped.append((name, f"changes more than seq_len: {', '.join(differing)}"))
            else:
                study.runs.append(Run(name, int(params["seq_len"]), per_seed, summary["reference"], params))
    return study


def _sine_params(params: dict) -> dict:
    return {key: value for key, value in params.items() if key in SINE_PARAMS}


def _differences(params: dict, base: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ, apart from seq_len."""
    keys = sorted(set(params) | set(base))
    found = []
    for key in keys:
        dotted = f"{prefix}{key}"
        if dotted == "seq_len":
            continue
        a, b = params.get(key), base.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, f"{dotted}.")
        elif a != b:
            found.append(dotted)
    return found


def by_seq_len(study: Study) -> dict[int, Run]:
    """One run per sequence length: the first listed (DVC lists the newest experiment first)."""
    chosen: dict[int, Run] = {}
    for run in study.runs:
        if run.seq_len in chosen:
            study.skipped.append((run.name, f"seq_len {run.seq_len} already reported by {chosen[run.seq_len].name}"))
        else:
            chosen[run.seq_len] = run
    return dict(sorted(chosen.items()))


def table(runs: dict[int, Run], models: list[str], measure: str) -> pd.DataFrame:
    """model x seq_len: ``median [min, max]`` over seeds."""
    cells = {}
    for seq_len, run in runs.items():
        column = {}
        for model in models:
            if model in run.per_seed:
                v = run.values(model, measure)
                column[model.upper()] = f"{np.median(v):.3g} [{min(v):.3g}, {max(v):.3g}]"
        column["linear AR (reference)"] = f"{run.references['linear_ar']['rollout_mse']:.3g}"
        cells[f"seq_len {seq_len}"] = column
    return pd.DataFrame(cells)


def _markdown_table(frame: pd.DataFrame) -> str:
    rows = [["", *frame.columns], ["---"] * (len(frame.columns) + 1)]
    rows += [[str(index), *map(str, row)] for index, row in zip(frame.index, frame.to_numpy())]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def markdown(runs: dict[int, Run], study: Study) -> str:
    seeds = len(next(iter(next(iter(runs.values())).per_seed.values())))
    floor = next(iter(runs.values())).references["clean_sine"]["rollout_mse"]
    parts = [f"Rollout test MSE over 199 free-running steps, median [min, max] over {seeds} seeds. "
             f"Noise floor (clean sine): {floor:.4f}; predicting zero: "
             f"{next(iter(runs.values())).references['zero']['rollout_mse']:.3f}.\n"]
    for measure, label in MEASURES.items():
        parts.append(f"\n### {label}\n\n{_markdown_table(table(runs, study.models, measure))}\n")
    if study.skipped:
        parts.append("\nSkipped: " + "; ".join(f"{name} ({why})" for name, why in study.skipped) + "\n")
    return "".join(parts).rstrip("\n") + "\n"


def caption(runs: dict[int, Run]) -> str:
    """The params the study's runs share (they differ in seq_len only, among the sine params)."""
    first = next(iter(runs.values()))
    seeds = first.params.get("seeds") or sorted({int(s) for model in first.per_seed.values() for s in model})
    sine = first.params.get("sine") or {}
    model, train = sine.get("model") or {}, sine.get("train") or {}
    parts = [f"seq_len={', '.join(map(str, runs))} (one run each)", seeds_text(seeds)]
    if "hidden_size" in model:
        layers = model.get("num_layers", 1)
        parts.append(f"hidden {model['hidden_size']}" + (f" x {layers} layers" if layers > 1 else ""))
    if "lr" in train:
        parts.append(f"{train.get('optimizer', '')} lr {short_number(float(train['lr']))}".lstrip())
    if "epochs" in train:
        parts.append(f"{train['epochs']} epochs")
    parts.append("runs: " + ", ".join(run.name for run in runs.values()))
    return " · ".join(parts)


def figure(runs: dict[int, Run], models: list[str]) -> Figure:
    """Rollout MSE against seq_len, one panel per model on one shared scale (four bands on one
    axis hide each other): every seed as a dot, the median as a line, the band from the best to
    the worst seed, and the references in every panel."""
    lengths = list(runs)
    cols = 1 if len(models) == 1 else 2
    rows = -(-len(models) // cols)
    fig = new_figure((12, 3.2 * rows + 1.0), caption(runs))
    grid = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    for spare in grid[len(models):]:
        spare.remove()
    axes = grid[: len(models)]
    linear = [runs[s].references["linear_ar"]["rollout_mse"] for s in lengths]
    for k, (ax, model) in enumerate(zip(axes, models)):
        color = _color(model)
        present = [s for s in lengths if model in runs[s].per_seed]
        values = [runs[s].values(model, "rollout_mse") for s in present]
        ax.fill_between(present, [min(v) for v in values], [max(v) for v in values], color=color, alpha=BAND_ALPHA, lw=0,
                        label="best to worst seed")
        for s, v in zip(present, values):
            ax.plot([s] * len(v), v, ".", color=color, ms=4, alpha=0.6, label="one seed" if s == present[0] else None)
        ax.plot(present, [np.median(v) for v in values], "o-", color=color, label=f"{model.upper()} median")
        label, style = REFERENCE_STYLES["linear_ar"]
        ax.plot(lengths, linear, color="gray", ls=style, label=f"{label} over seq_len lags")
        for name in ("clean_sine", "zero"):  # a series of one's own has no clean signal
            if name in runs[lengths[0]].references:
                label, style = REFERENCE_STYLES[name]
                ax.axhline(runs[lengths[0]].references[name]["rollout_mse"], color="gray", ls=style, lw=1, label=label)
        ax.set(yscale="log", xticks=lengths)
        ax.set_title(model.upper(), fontsize="medium")
        if k + cols >= len(models):  # no panel below it
            ax.set_xlabel("seq_len (input steps per training window)")
            ax.xaxis.set_tick_params(labelbottom=True)
        if k % cols == 0:
            ax.set_ylabel("rollout test MSE")
    axes[0].legend(fontsize="x-small", loc="center right", ncols=2)
    tidy_log_axis(axes[0])
    seeds = len(next(iter(next(iter(runs.values())).per_seed.values())))
    fig.suptitle(f"What sequence length does: rollout test MSE, median of {seeds} seeds, band from best to worst seed")
    return fig


def write(study: Study, figure_path: Path, table_path: Path) -> dict[int, Run]:
    from rnnlab.io import save_figure, write_text

    runs = by_seq_len(study)
    if len(runs) < 2:
        have = ", ".join(f"{r.name} (seq_len {r.seq_len})" for r in runs.values()) or "none"
        raise RnnlabError(f"a study needs runs at two or more sequence lengths; found {have}. Create them with:\n  {HOW_TO}")
    save_figure(figure_path, figure(runs, study.models))
    write_text(table_path, markdown(runs, study))
    return runs
