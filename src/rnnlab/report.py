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
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure

from rnnlab import stats
from rnnlab.errors import RnnlabError
from rnnlab.plotting import BAND_ALPHA, REFERENCE_STYLES, _color, new_figure, seeds_text, short_number, tidy_log_axis

DETAIL = "metrics/sine_detail.json"
HOW_TO = "dvc exp run --queue evaluate_sine -S seq_len=5,10,20,30,40,50 && dvc queue start -j 1"
TEXTS = "the texts' epochs"  # the protocol of a run with the commit's own recipe
# What a sweep varies, and how a protocol's label names each: a run differing from its commit in
# these (beside seq_len) trained the same models on another recipe, so it joins the study.
RECIPE_KEYS = {
    "sine.train.steps": "{} steps",  # the fair protocol: this budget at every seq_len
    "sine.train.lr": "lr {}",
    "sine.model.hidden_size": "hidden {}",
    "sine.train.sampling": "sampling {}",
    "sine.data.validation_fraction": "validation {}",
    "sine.train.horizon": "horizon {}",  # the closed-loop objective (closed_loop.py)
}
# How many seeds and backtest origins a run has: they change how sure its numbers are, not what
# it trains, so a run may differ from its commit in them and stay in the study; at one length
# and protocol the run with the most seeds is reported.
STUDY_KEYS = ("seeds", "series.origins")
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
    "rollout_mse": "Rollout test MSE, final epoch (the texts' number)",
    "backtest_mse": "Backtest MSE: each seed's mean over the rolling origins (the second metric)",
    "rollout_mse_last10": "Rollout test MSE, mean of the last 10 epochs",
    "oracle_rollout_mse_best": "Rollout test MSE, best epoch (chosen on the test range: optimistic)",
}
COMPARED = ("rollout_mse", "backtest_mse")  # the measures every comparison is drawn for


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

    @property
    def seeds(self) -> int:
        """Seeds per model (the most any model has)."""
        return max(len(seeds) for seeds in self.per_seed.values())

    def reference(self, name: str, measure: str = "rollout_mse") -> float | None:
        return (self.references.get(name) or {}).get(measure)


@dataclass
class Study:
    runs: list[Run] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(m for run in self.runs for m in run.per_seed))


def exp_show(repo: Path, all_commits: bool, rev: str | None = None) -> list[dict]:
    """``dvc exp show --json`` of the repository: HEAD's experiments, ``rev``'s, or (``-A``) every commit's."""
    command = ["dvc", "exp", "show", "--json", *(["--all-commits"] if all_commits else []), *(["--rev", rev] if rev else [])]
    # the dvc of this interpreter's environment, whether or not that environment is activated
    proc = subprocess.run([sys.executable, "-m", *command], cwd=repo, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RnnlabError(f"`{' '.join(command)}` failed in {repo}: {reason}")
    return json.loads(proc.stdout)


def git_reader(repo: Path) -> Callable[..., dict | None]:
    """``(rev, path=metrics/sine_detail.json) -> the file at that commit`` (an experiment's too),
    parsed (JSON, or YAML for dvc.lock), or None."""

    def read(rev: str, path: str = DETAIL) -> dict | None:
        proc = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=repo, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            return None
        try:
            return yaml.safe_load(proc.stdout) if path.endswith((".lock", ".yaml")) else json.loads(proc.stdout)
        except (json.JSONDecodeError, yaml.YAMLError):
            return None

    return read


# The stages that make S's metrics, and the code their dvc.lock entries record
S_STAGES = re.compile(r"prepare_series|train_sine@.*|evaluate_sine")
CODE = ("src/", "stages/")


def provenance(lock: dict | None, params: dict, base_lock: dict | None) -> str | None:
    """Why a run's sine metrics were not made by its own params and the baseline's code, or None.

    Its commit's dvc.lock says, stage by stage, the params and code each output was made with: a
    pipeline stopped before ``evaluate_sine`` (``dvc exp run -S seq_len=30 prepare_series``)
    leaves metrics of other params; a run made while a source file was edited has its hash."""
    stages = (lock or {}).get("stages") if isinstance(lock, dict) else None
    if not isinstance(stages, dict) or "evaluate_sine" not in stages:
        return "no evaluate_sine in its dvc.lock: its metrics were not made by its own run"
    base_stages = (base_lock or {}).get("stages") or {}
    for name, stage in stages.items():
        if not S_STAGES.fullmatch(name) or not isinstance(stage, dict):
            continue
        made_with = ((stage.get("params") or {}).get("params.yaml")) or {}
        for key, value in made_with.items():
            if _dotted(params, key) != value:
                return (f"{name} last ran at {key} = {_short(value)}, not {_short(_dotted(params, key))}: a pipeline "
                        "stopped before evaluate_sine (run it to evaluate_sine)")
        base_code = {d.get("path"): d.get("md5") for d in (base_stages.get(name) or {}).get("deps") or []}
        for dep in stage.get("deps") or []:
            path = dep.get("path", "")
            if path.startswith(CODE) and path in base_code and dep.get("md5") != base_code[path]:
                return f"made by other code than its baseline: {path} differs"
    return None


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


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


def collect(rows: list[dict], read: Callable[..., dict | None]) -> Study:
    """Turn ``dvc exp show --json`` output into a study; the workspace row is not a run.
    ``read(rev, path)``: a file of a commit (``git_reader``)."""
    study = Study()
    for commit in rows:
        if commit.get("rev") == "workspace":
            continue
        base_params = _file_data(commit.get("data") or {}, "params", "params.yaml") or {}
        base_lock = read(commit["rev"], "dvc.lock")
        for name, rev, data, state in _runs_of(commit):
            if state not in (None, "success"):  # a queued or running one lists its params, not yet its metrics
                study.skipped.append((name, f"{state}, no metrics yet" if state in ("queued", "running") else state))
                continue
            if not data:
                study.skipped.append((name, "no data (a failed or still queued experiment)"))
                continue
            params = _file_data(data, "params", "params.yaml")
            if why := _incomparable(params, base_params):
                study.skipped.append((name, why))
            elif not (detail := read(rev)) or "models" not in detail or "references" not in detail:
                study.skipped.append((name, f"no {DETAIL} in its commit"))
            elif why := provenance(read(rev, "dvc.lock"), params, base_lock):
                study.skipped.append((name, why))
            else:
                per_seed = {kind: model["seeds"] for kind, model in detail["models"].items()}
                recipe = _recipe(params, base_params)
                study.runs.append(Run(name, int(params["seq_len"]), per_seed, detail["references"], params, recipe))
    return study


def check_queue(rows: list[dict]) -> list[tuple[str, str | None]]:
    """Each queued experiment's name and why ``collect`` would skip it once run (None: it joins).

    Run before ``dvc queue start``: a sweep that varies a param the study cannot compare (say
    ``sine.models``) is refused in seconds, not after it trained. Only the params are known
    before a run; its dvc.lock (``provenance``) is checked when the report is written."""
    found = []
    for commit in rows:
        if commit.get("rev") == "workspace":
            continue
        base_params = _file_data(commit.get("data") or {}, "params", "params.yaml") or {}
        found += [(name, _incomparable(_file_data(data or {}, "params", "params.yaml"), base_params))
                  for name, _, data, state in _runs_of(commit) if state == "queued"]
    return found


def _incomparable(params: dict | None, base_params: dict) -> str | None:
    """Why a run of ``params`` cannot join its commit's study (the params alone), or None."""
    if not params or "seq_len" not in params:
        return "no seq_len in params.yaml"
    if differing := _differences(_sine_params(params), _sine_params(base_params)):
        return f"changes more than seq_len: {', '.join(differing)}"
    return None


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
        if dotted == "seq_len" or dotted in RECIPE_KEYS or dotted in STUDY_KEYS:
            continue
        a, b = params.get(key), base.get(key)
        if isinstance(a, dict) or isinstance(b, dict):  # a section one side lacks: compare its keys
            found += _differences(a if isinstance(a, dict) else {}, b if isinstance(b, dict) else {}, f"{dotted}.")
        elif a != b:
            found.append(dotted)
    return found


def by_seq_len(study: Study, protocol: str = TEXTS) -> dict[int, Run]:
    """One run per sequence length of a protocol: the one with the most seeds, on a tie the first
    listed (DVC lists the newest first)."""
    chosen: dict[int, Run] = {}
    for run in sorted((r for r in study.runs if r.protocol == protocol), key=lambda r: -r.seeds):  # stable
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


def _interval(values: list[float]) -> str:
    median, low, high = stats.bootstrap_median(values)
    return f"{median:.3g} [{low:.3g}, {high:.3g}]"


def _has(runs: dict[int, Run], models: list[str], measure: str) -> bool:
    """Does every seed of every run have ``measure`` (older runs lack the newer measures)?"""
    return all(measure in seed for run in runs.values() for m in models if m in run.per_seed
               for seed in run.per_seed[m].values())


def table(runs: dict[int, Run], models: list[str], measure: str) -> pd.DataFrame:
    """model x seq_len: ``median [95% bootstrap interval]`` over seeds; the references' one number
    each (of the same question: the backtest's for the backtest, else the rollout's)."""
    question = "backtest_mse" if measure == "backtest_mse" else "rollout_mse"
    cells = {}
    for seq_len, run in runs.items():
        column = {}
        for model in models:
            if model in run.per_seed:
                column[model.upper()] = _interval(run.values(model, measure))
        for name, label in REFERENCE_ROWS.items():  # those a run has (no seasonal one without a season)
            if run.reference(name, question) is not None:
                column[label] = f"{run.reference(name, question):.3g}"
        cells[f"seq_len {seq_len} ({run.seeds} seeds)"] = column
    return pd.DataFrame(cells)


def hold_rate(run: Run, model: str) -> tuple[float, float, float]:
    """The share of the model's seeds whose free run holds (``stats.hold_rate``), with its interval."""
    return stats.hold_rate(run.values(model, "rollout_mse"), run.reference("zero"))


def hold_table(runs: dict[int, Run], models: list[str]) -> pd.DataFrame:
    """model x seq_len: the hold rate [95% Wilson interval]; the linear AR's: holds or not."""
    cells = {}
    for seq_len, run in runs.items():
        column = {m.upper(): "{:.0%} [{:.0%}, {:.0%}]".format(*hold_rate(run, m)) for m in models if m in run.per_seed}
        if run.reference("linear_ar") is not None:
            holds = run.reference("linear_ar") < run.reference("zero") * stats.HOLD_FRACTION
            column[REFERENCE_ROWS["linear_ar"]] = "holds" if holds else "drifts"
        cells[f"seq_len {seq_len}"] = column
    return pd.DataFrame(cells)


@dataclass(frozen=True)
class Finding:
    """One comparison the study draws: ``first`` against ``second`` (lower MSE is better)."""

    first: str
    second: str
    medians: tuple[float, float]
    result: stats.Comparison

    def row(self) -> dict[str, str]:
        r = self.result
        needed = "—" if r.resolved else ("no effect seen" if r.seeds_needed() == float("inf") else f"{r.seeds_needed()}")
        beats = f"{r.below[0]} of {r.below[1]} seeds below" if r.below else f"{r.beats:.2f}"
        return {"comparison": f"{self.first} vs {self.second}",
                "medians": f"{self.medians[0]:.3g} vs {self.medians[1]:.3g}",
                "P(first beats second)": beats,
                "test": f"{r.test}, n = {r.n_a}" + (f" / {r.n_b}" if r.test != "sign test" else ""),
                "p": f"{r.p:.2g}", "Holm p": f"{r.p_adjusted:.2g}", "verdict": f"**{r.verdict}**" if r.resolved else r.verdict,
                "seeds needed per side": needed}


BEST_LABELS = {name: label.replace(" (reference)", "") + " (the best classical reference)"
               for name, label in REFERENCE_ROWS.items()}


def best_reference(run: Run, question: str) -> tuple[str | None, float | None]:
    """The classical forecaster with the lowest error at this run's length (the linear AR aside: it
    has its own comparison), and that error; (None, None) where the run has none."""
    scored = {name: run.reference(name, question) for name in REFERENCE_ROWS if name != "linear_ar"}
    scored = {name: value for name, value in scored.items() if value is not None}
    if not scored:
        return None, None
    name = min(scored, key=scored.get)
    return name, scored[name]


def _pair(first: str, a: list[float], second: str, b: list[float]) -> Finding:
    return Finding(first, second, (float(np.median(a)), float(np.median(b))), stats.compare(a, b))


def _family(findings: list[Finding]) -> list[Finding]:
    """Holm's adjustment over one family of comparisons."""
    adjusted = stats.holm([f.result for f in findings])
    return [Finding(f.first, f.second, f.medians, r) for f, r in zip(findings, adjusted)]


def comparisons(groups: dict[str, dict[int, Run]], models: list[str], measure: str) -> dict[str, list[Finding]]:
    """The study's comparisons of ``measure``, by family (Holm within each):

    - per protocol, architecture vs architecture at each length (every pair);
    - per protocol, each architecture at each length vs its best length (lowest median);
    - per protocol, each network vs the linear AR at the same lags (sign test: the AR has no seeds);
    - per protocol, each network vs the best classical reference at that length (the lowest of
      ``REFERENCE_ROWS`` but the AR: Holt-Winters on the sine), by the sign test too;
    - each other protocol vs the texts', per architecture and length.
    """
    question = "backtest_mse" if measure == "backtest_mse" else "rollout_mse"
    families: dict[str, list[Finding]] = {}
    for protocol, runs in groups.items():
        if not _has(runs, models, measure):
            continue
        pairs, lengths, ar, classical = [], [], [], []
        for seq_len, run in runs.items():
            present = [m for m in models if m in run.per_seed]
            name, value = best_reference(run, question)
            for k, a in enumerate(present):
                for b in present[k + 1:]:
                    pairs.append(_pair(f"{a.upper()} at {seq_len}", run.values(a, measure),
                                       f"{b.upper()} at {seq_len}", run.values(b, measure)))
                reference = run.reference("linear_ar", question)
                if reference is not None:
                    values = run.values(a, measure)
                    ar.append(Finding(f"{a.upper()} at {seq_len}", f"linear AR ({seq_len} lags)",
                                      (float(np.median(values)), reference), stats.against_value(values, reference)))
                if name is not None:
                    values = run.values(a, measure)
                    classical.append(Finding(f"{a.upper()} at {seq_len}", BEST_LABELS.get(name, name),
                                        (float(np.median(values)), value), stats.against_value(values, value)))
        for model in models:
            have = {n: run.values(model, measure) for n, run in runs.items() if model in run.per_seed}
            if len(have) < 2:
                continue
            best = min(have, key=lambda n: np.median(have[n]))
            lengths += [_pair(f"{model.upper()} at {best}", have[best], f"{model.upper()} at {n}", have[n])
                        for n in have if n != best]
        for name, found in ((f"{protocol}: architecture vs architecture at one length", pairs),
                            (f"{protocol}: each architecture's best length vs its others", lengths),
                            (f"{protocol}: network vs the linear AR at the same lags", ar),
                            (f"{protocol}: network vs the best classical reference", classical)):
            if found:
                families[name] = _family(found)
    texts = groups.get(TEXTS, {})
    for protocol, runs in groups.items():
        if protocol == TEXTS or not _has(runs, models, measure) or not _has(texts, models, measure):
            continue
        found = [_pair(f"{m.upper()} at {n} ({protocol})", run.values(m, measure), f"{m.upper()} at {n} (texts')",
                       texts[n].values(m, measure))
                 for n, run in runs.items() if n in texts for m in models if m in run.per_seed and m in texts[n].per_seed]
        if found:
            families[f"{protocol} vs the texts' epochs, same architecture and length"] = _family(found)
    return families


POWER_RULE = (f"Each comparison: the Mann-Whitney U test (two-sided) of the two cells' seeds, or against a "
              f"classical reference, which has no seeds, the sign test (exact binomial) of how many seeds are below "
              f"it (k of n seeds below); P(first beats second) is the chance that a seed of the first has the lower "
              f"MSE (ties half). p is adjusted by Holm's method within each table (a family); a finding is "
              f"**significant** when that Holm-corrected p is below {stats.ALPHA}, else within noise. "
              f"Seeds needed per side: the power rule "
              f"for a two-sided test at {stats.ALPHA:.0%} with {stats.POWER:.0%} power at the observed effect "
              f"(Noether 1987: N = (z_0.975 + z_0.8)^2 / (3 (P - 1/2)^2) seeds in all, half per side; for the sign "
              f"test, the binomial's normal approximation), unadjusted for the family.")


def _markdown_table(frame: pd.DataFrame) -> str:
    rows = [["", *frame.columns], ["---"] * (len(frame.columns) + 1)]
    rows += [[str(index), *map(str, row)] for index, row in zip(frame.index, frame.to_numpy())]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def trainings(groups: dict[str, dict[int, Run]]) -> int:
    """How many trained models a study's tables rest on: runs x models x seeds."""
    runs = {run.name: run for runs in groups.values() for run in runs.values()}
    return sum(len(seeds) for run in runs.values() for seeds in run.per_seed.values())


MARKER = "<!-- rnnlab report: {runs} runs, {trainings} trainings -->"


def markdown(groups: dict[str, dict[int, Run]], study: Study) -> str:
    first = next(iter(next(iter(groups.values())).values()))
    floor = first.reference("clean_sine")
    zero = first.reference("zero")
    seeds = sorted({run.seeds for runs in groups.values() for run in runs.values()})
    runs = {run.name for runs in groups.values() for run in runs.values()}
    parts = [MARKER.format(runs=len(runs), trainings=trainings(groups)) + "\n\n"
             f"Every cell: the median over seeds ({'-'.join(map(str, (seeds[0], seeds[-1]))) if len(seeds) > 1 else seeds[0]}"
             f" seeds a cell) with its 95% bootstrap interval ({stats.RESAMPLES} resamples). "
             + (f"Noise floor (clean sine): {floor:.4f}; " if floor is not None else "")
             + f"predicting zero: {zero:.3f}. A free run *holds* when its MSE is below predict-zero's / "
             f"{1 / stats.HOLD_FRACTION:.0f} = {zero * stats.HOLD_FRACTION:.4f}.\n"]
    for protocol, runs in groups.items():
        parts.append(f"\n## Protocol: {protocol}\n")
        parts.append(f"\n### Hold rate: the share of seeds whose free run holds [95% Wilson interval]\n\n"
                     f"{_markdown_table(hold_table(runs, study.models))}\n")
        for measure, label in MEASURES.items():
            if _has(runs, study.models, measure):
                parts.append(f"\n### {label}\n\n{_markdown_table(table(runs, study.models, measure))}\n")
    by_measure = {measure: comparisons(groups, study.models, measure) for measure in COMPARED}
    parts.insert(1, "\n## Findings in plain words\n\n" + "".join(f"- {line}\n" for line in
                                                                   summary(groups, study.models, by_measure["rollout_mse"])))
    methods = POWER_RULE
    for measure, families in by_measure.items():
        if not families:
            continue
        parts.append(f"\n## Comparisons: {MEASURES[measure]}\n\n{methods}\n")
        methods = "The tests and their correction: as above."
        for name, found in families.items():
            significant = sum(f.result.resolved for f in found)
            frame = pd.DataFrame([f.row() for f in found]).set_index("comparison")
            parts.append(f"\n### {name} ({significant} of {len(found)} significant)\n\n{_markdown_table(frame)}\n")
    parts.append(sweep_markdown(study))
    if study.skipped:
        parts.append("\nSkipped: " + "; ".join(f"{name} ({why})" for name, why in study.skipped) + "\n")
    return "".join(parts).rstrip("\n") + "\n"


def summary(groups: dict[str, dict[int, Run]], models: list[str], families: dict[str, list[Finding]]) -> list[str]:
    """The study in a few sentences, from its own tables and tests (the rollout, the texts' number)."""
    lines = []
    for protocol, runs in groups.items():
        cells = [(float(np.median(run.values(m, "rollout_mse"))), m, n) for n, run in runs.items() for m in models
                 if m in run.per_seed]
        _, model, seq_len = min(cells)
        run = runs[seq_len]
        held = round(hold_rate(run, model)[0] * len(run.values(model, "rollout_mse")))
        line = (f"**{protocol}**: the best network cell is {model.upper()} at seq_len {seq_len}, median rollout MSE "
                f"{_interval(run.values(model, 'rollout_mse'))}; its free run holds on {held} of "
                f"{len(run.values(model, 'rollout_mse'))} seeds.")
        for family, what in ((f"{protocol}: network vs the linear AR at the same lags", "the linear AR with the same lags"),
                             (f"{protocol}: network vs the best classical reference", "the best classical reference")):
            found = families.get(family, [])
            if not found:
                continue
            better = sum(f.result.resolved and f.result.beats > 0.5 for f in found)
            worse = sum(f.result.resolved and f.result.beats < 0.5 for f in found)
            line += (f" Against {what}: significantly better in {better} of {len(found)} network cells, "
                     f"significantly worse in {worse}, within noise in {len(found) - better - worse}.")
        name, value = best_reference(run, "rollout_mse")
        if name is not None:
            line += f" The best classical reference at seq_len {seq_len}: {BEST_LABELS[name].split(' (')[0]}, {value:.3g}."
        lines.append(line)
    never = [m.upper() for m in models if all(hold_rate(run, m)[0] == 0 for runs in groups.values()
                                              for run in runs.values() if m in run.per_seed)]
    if never:
        lines.append(f"Never holding a free run, on any seed, length or protocol: {', '.join(never)}.")
    return lines


def caption(groups: dict[str, dict[int, Run]]) -> str:
    """The params the study's runs share (they differ in seq_len and protocol only, among the
    sine params)."""
    runs = {run.name: run for group in groups.values() for run in group.values()}
    first = next(iter(runs.values()))
    lengths = sorted({run.seq_len for run in runs.values()})
    seeds = first.params.get("seeds") or sorted({int(s) for model in first.per_seed.values() for s in model})
    seeds = range(seeds) if isinstance(seeds, int) else seeds  # `seeds: 30` is seeds 0-29
    sine = first.params.get("sine") or {}
    model, train = sine.get("model") or {}, sine.get("train") or {}
    counts = sorted({run.seeds for run in runs.values()})
    parts = [f"seq_len={', '.join(map(str, lengths))}",
             seeds_text(seeds) if len(counts) == 1 else f"{counts[0]}-{counts[-1]} seeds a run"]
    if "hidden_size" in model:
        layers = model.get("num_layers", 1)
        parts.append(f"hidden {model['hidden_size']}" + (f" x {layers} layers" if layers > 1 else ""))
    if "lr" in train:
        parts.append(f"{train.get('optimizer', '')} lr {short_number(float(train['lr']))}".lstrip())
    if "epochs" in train:  # a run of the fair protocol trains to its step budget instead
        budget = any("sine.train.steps" in run.recipe for run in runs.values())
        parts.append(f"{train['epochs']} epochs" + (" or a step budget" if budget else ""))
    # a sweep has dozens of runs: name them only while the caption stays one readable line
    parts.append("runs: " + ", ".join(runs) if len(runs) <= CAPTION_RUNS else f"{len(runs)} runs")
    return " · ".join(parts)


# How each protocol's median is drawn: the texts' solid with dots, a fair budget dashed.
PROTOCOL_STYLES = [("o-", ".", 1.0), ("s--", "x", 0.75), ("^:", "+", 0.75)]


TUNED_STYLE = ("D:", "d", 0.9)  # colored dots and diamonds: the gray dash-dot is the AR


def figure(groups: dict[str, dict[int, Run]], models: list[str],
           tuned_curves: dict[str, tuple[str, dict[int, Run]]] | None = None) -> Figure:
    """Rollout MSE against seq_len, one panel per model on one shared scale (four bands on one
    axis hide each other): every seed as a dot (each protocol's dots side by side), the median
    with its 95% bootstrap interval as a line per protocol, the band from the best to the worst
    seed, and the references in every panel. Below them the hold rate of every model and
    protocol, and (where the runs have it) the backtest's median. A recipe with a validation
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
    fig = new_figure((12, 3.2 * rows + 3.4), caption(captioned))  # the tuned recipes: in the legends
    layout = fig.add_gridspec(rows + 1, cols, height_ratios=[1] * rows + [0.8])
    axes = []
    for k in range(len(models)):
        axes.append(fig.add_subplot(layout[k // cols, k % cols], sharex=axes[0] if axes else None,
                                    sharey=axes[0] if axes else None))
    spread = 0.9 if len(groups) > 1 else 0.0  # each protocol's seeds beside the others', not on them
    offsets = {name: (k - (len(groups) - 1) / 2) * spread for k, name in enumerate(groups)}
    for k, (ax, model) in enumerate(zip(axes, models)):
        for (protocol, runs), styles in zip(groups.items(), PROTOCOL_STYLES):
            _protocol_curve(ax, model, runs, protocol, styles, first=protocol == next(iter(groups)),
                            offset=offsets[protocol])
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
        if k % cols == 0:
            ax.set_ylabel("rollout test MSE")
    axes[0].legend(fontsize="x-small", loc="center right", ncols=2)
    tidy_log_axis(axes[0])
    _hold_panel(fig.add_subplot(layout[rows, 0]), groups, models, lengths)
    if cols > 1:
        backtest = fig.add_subplot(layout[rows, 1])
        if any(_has(runs, models, "backtest_mse") for runs in groups.values()):
            _backtest_panel(backtest, groups, models, lengths)
        else:
            backtest.remove()
    seeds = sorted({run.seeds for run in everything.values()})
    count = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    fig.suptitle(f"What sequence length does: rollout test MSE, every seed a dot ({count} seeds a cell), the median "
                 "with its 95% bootstrap interval, the band from best to worst seed")
    return fig


def _yerr(cells: np.ndarray) -> np.ndarray:
    """(n, 3) rows of (value, low, high) -> matplotlib's (2, n) distances below and above, never
    negative (rounding can put an interval's end a hair past its value)."""
    return np.maximum(0.0, np.stack([cells[:, 0] - cells[:, 1], cells[:, 2] - cells[:, 0]]))


def _hold_panel(ax, groups: dict[str, dict[int, Run]], models: list[str], lengths: list[int]) -> None:
    """The hold rate of each model (color) and protocol (line style), with its Wilson interval.
    A model and protocol that never holds, at any length, is named in a note instead: a dozen
    lines stacked at 0% would hide each other and say nothing more."""
    never: dict[str, list[str]] = {}
    for (protocol, runs), (style, _, alpha) in zip(groups.items(), PROTOCOL_STYLES):
        for model in models:
            present = [s for s in runs if model in runs[s].per_seed]
            rates = np.array([hold_rate(runs[s], model) for s in present]) * 100  # (lengths, 3) in %
            if not present or not rates[:, 0].any():
                never.setdefault(model, []).append(protocol)
                continue
            ax.errorbar(present, rates[:, 0], yerr=_yerr(rates), fmt=style,
                        color=_color(model), alpha=alpha, ms=4, capsize=2, lw=1,
                        label=f"{model.upper()}" + ("" if protocol == TEXTS else f" ({protocol})"))
    ax.set(xticks=lengths, ylim=(-3, 103), xlabel="seq_len (input steps per training window)", ylabel="seeds that hold (%)")
    ax.set_title(f"Hold rate: free run MSE below predict zero / {1 / stats.HOLD_FRACTION:.0f}, 95% interval",
                 fontsize="medium")
    if never:
        named = [model.upper() + ("" if len(protocols) == len(groups) else f" ({', '.join(protocols)})")
                 for model, protocols in never.items()]
        ax.text(0.99, 0.97, "0% at every length: " + "; ".join(named), transform=ax.transAxes, ha="right", va="top",
                fontsize="x-small", wrap=True)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="xx-small", ncols=max(1, len(groups)), loc="center right")


def _backtest_panel(ax, groups: dict[str, dict[int, Run]], models: list[str], lengths: list[int]) -> None:
    """The backtest MSE's median and 95% interval of each model and protocol, and the linear AR's."""
    for runs, (style, _, alpha) in zip(groups.values(), PROTOCOL_STYLES):
        if not _has(runs, models, "backtest_mse"):
            continue
        for model in models:
            present = [s for s in runs if model in runs[s].per_seed]
            cells = np.array([stats.bootstrap_median(runs[s].values(model, "backtest_mse")) for s in present])
            ax.errorbar(present, cells[:, 0], yerr=_yerr(cells), fmt=style,
                        color=_color(model), alpha=alpha, ms=4, capsize=2, lw=1)
    first = next(runs for runs in groups.values() if _has(runs, models, "backtest_mse"))
    ar = [(s, first[s].reference("linear_ar", "backtest_mse")) for s in first]
    ar = [(s, v) for s, v in ar if v is not None]
    if ar:
        label, style = REFERENCE_STYLES["linear_ar"]
        ax.plot(*zip(*ar), color="gray", ls=style, label=f"{label} over seq_len lags")
        ax.legend(fontsize="x-small")
    origins = (next(iter(first.values())).params.get("series") or {}).get("origins")
    ax.set(yscale="log", xticks=lengths, xlabel="seq_len (input steps per training window)", ylabel="backtest MSE")
    ax.set_title("Backtest: each seed's mean over the rolling origins" + (f" ({origins})" if origins else ""),
                 fontsize="medium")


def _protocol_curve(ax, model: str, runs: dict[int, Run], protocol: str, styles: tuple, first: bool,
                    offset: float = 0.0) -> None:
    style, marker, alpha = styles
    color = _color(model)
    present = [s for s in runs if model in runs[s].per_seed]
    values = [runs[s].values(model, "rollout_mse") for s in present]
    if first:  # one band per panel: two overlapping bands would hide each other again
        ax.fill_between(present, [min(v) for v in values], [max(v) for v in values], color=color, alpha=BAND_ALPHA, lw=0,
                        label="best to worst seed")
    for s, v in zip(present, values):
        ax.plot([s + offset] * len(v), v, marker, color=color, ms=4, alpha=0.6 * alpha,
                label=("one seed" if first else f"one seed ({protocol})") if s == present[0] else None)
    median = f"{model.upper()} median" + ("" if first and protocol == TEXTS else f" ({protocol})")
    cells = np.array([stats.bootstrap_median(v) for v in values])  # (lengths, 3): median, low, high
    ax.plot(present, cells[:, 0], style, color=color, alpha=alpha, label=median)
    ax.errorbar(present, cells[:, 0], yerr=_yerr(cells), fmt="none",
                ecolor=color, alpha=alpha, capsize=3, lw=1)


# A study's evidence: every run's per-seed results, kept beside its table so that the table and the
# figure can be rebuilt, and audited, without the experiments that made them (``--from``).
SEEDS_FILE, RUNS_FILE = "seeds.csv", "runs.json"
DEFAULT_EVIDENCE = Path("plots/seq_len_study")


def evidence_folder(table_path: Path) -> Path:
    """A study's evidence folder: beside its table, named as it is (plots/seq_len_study.md ->
    plots/seq_len_study/)."""
    return table_path.with_suffix("")


def save_evidence(study: Study, folder: Path) -> None:
    """``seeds.csv``: one row per trained model (run, model, seed, then every measure, exactly as
    the run's sine_detail.json holds it); ``runs.json``: each run's seq_len, params, references and
    recipe, and the experiments left out with the reason."""
    import csv
    import io as text_io

    from rnnlab.io import write_text

    measures = list(dict.fromkeys(m for run in study.runs for seeds in run.per_seed.values()
                                  for seed in seeds.values() for m in seed))
    table = text_io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["run", "model", "seed", *measures])
    for run in study.runs:
        for model, seeds in run.per_seed.items():
            for seed, values in seeds.items():
                writer.writerow([run.name, model, seed, *(repr(float(values[m])) if m in values else "" for m in measures)])
    runs = [{"name": run.name, "seq_len": run.seq_len, "recipe": run.recipe, "references": run.references,
             "params": run.params} for run in study.runs]
    write_text(folder / SEEDS_FILE, table.getvalue())
    write_text(folder / RUNS_FILE, json.dumps({"runs": runs, "skipped": study.skipped}, indent=1) + "\n")


def load_evidence(folder: Path) -> Study:
    """The study ``save_evidence`` kept in ``folder``."""
    import csv

    try:
        listed = json.loads((folder / RUNS_FILE).read_text())
        with open(folder / SEEDS_FILE, newline="") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError as exc:
        raise RnnlabError(f"{exc.filename}: no such file; a study's evidence folder holds {SEEDS_FILE} and "
                          f"{RUNS_FILE} (`rnnlab report` writes them beside its table)") from None
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as exc:
        raise RnnlabError(f"{folder}: not a study's evidence ({exc})") from None
    header, per_run = rows[0], {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header) or header[:3] != ["run", "model", "seed"]:
            raise RnnlabError(f"{folder / SEEDS_FILE}:{line}: {len(row)} fields, the header has {len(header)}")
        try:
            values = {m: float(v) for m, v in zip(header[3:], row[3:]) if v != ""}
        except ValueError as exc:
            raise RnnlabError(f"{folder / SEEDS_FILE}:{line}: {exc}") from None
        per_run.setdefault(row[0], {}).setdefault(row[1], {})[row[2]] = values
    study = Study(skipped=[tuple(pair) for pair in listed.get("skipped", [])])
    for run in listed["runs"]:
        if run["name"] not in per_run:
            raise RnnlabError(f"{folder / SEEDS_FILE}: no seeds of run {run['name']} (listed in {RUNS_FILE})")
        study.runs.append(Run(run["name"], int(run["seq_len"]), per_run[run["name"]], run["references"],
                              run["params"], run["recipe"]))
    return study


def written_trainings(table_path: Path) -> int | None:
    """How many trainings the study in an existing table rests on (its ``MARKER``), or None."""
    try:
        first = table_path.read_text().split("\n", 1)[0]
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    match = re.fullmatch(MARKER.format(runs=r"\d+", trainings=r"(\d+)"), first)
    return int(match.group(1)) if match else None


def guard(table_path: Path, figure_path: Path, new: int, force: bool) -> None:
    """Refuse to overwrite a study that rests on more trainings than ``new`` (or on an unknown
    number: a table this report did not mark), unless ``force``: a report over a few experiments
    must not silently replace a committed study of hundreds."""
    if force or not table_path.exists():
        return
    old = written_trainings(table_path)
    if old is not None and old <= new:
        return
    what = "does not say how many trainings made it" if old is None else f"rests on {old} trainings, this study on {new}"
    raise RnnlabError(f"{table_path} {what}: not overwritten (nor {figure_path}). Write elsewhere with "
                      "--table and --figure, or replace it with --force")


def write(study: Study, figure_path: Path, table_path: Path, force: bool = False,
          evidence: Path | None = None) -> dict[int, Run]:
    """The figure and tables of every protocol with two or more lengths, and (``evidence``) the
    study's per-seed results beside them; returns the runs drawn by sequence length (the texts'
    protocol's where it has one). An existing table of a richer study (``guard``) is kept unless
    ``force``."""
    from rnnlab.io import save_figure, write_text

    collected = Study(list(study.runs), list(study.skipped))  # before grouping adds its own skips
    groups = protocols(study)
    if not groups:
        have = ", ".join(f"{r.name} (seq_len {r.seq_len})" for r in study.runs) or "none"
        raise RnnlabError(f"a study needs runs at two or more sequence lengths; found {have}. Create them with:\n  {HOW_TO}")
    guard(table_path, figure_path, trainings(groups), force)
    best = tuned(grid(study), study.models)
    curves = {model: (best[model], runs) for model, runs in tuned_runs(study, best).items()}
    save_figure(figure_path, figure(groups, study.models, curves))
    write_text(table_path, markdown(groups, study))
    if evidence is not None:
        save_evidence(collected, evidence)
    return dict(sorted({s: run for runs in reversed(groups.values()) for s, run in runs.items()}.items()))
