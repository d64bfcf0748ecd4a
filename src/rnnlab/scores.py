"""``rnnlab scores``: who won experiment S, in one narrow table.

Every forecaster of a run's ``metrics/sine_detail.json``, sorted by one measure (lower is better):
each network twice, as its median seed (with the range over seeds) and as its seed ensemble (the
median of the seeds' forecasts, scored as a forecaster of its own), and every classical reference.
The winner is marked. It reads the workspace's file, or an experiment's with ``--rev``.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab import references, stats
from rnnlab.errors import DataError
from rnnlab.references import NAMES

MEASURES = ("backtest_mse", "rollout_mse", "one_step_mse", "backtest_mase", "rollout_mase", "one_step_mase",
            "backtest_mae", "rollout_mae", "one_step_mae")
NAME_WIDTH = 40


@dataclass(frozen=True)
class Score:
    name: str
    kind: str      # "network" or "reference"
    value: float
    spread: tuple[float, float] | None = None  # the seeds' min and max
    floor: bool = False                         # not a forecaster: the noise floor, shown for scale


def read_detail(path: str | Path, rev: str | None = None, repo: str | Path = ".") -> dict:
    """The workspace's detail file, or the one an experiment's commit holds (``git show``)."""
    if rev is None:
        from rnnlab.io import read_json

        return read_json(path)
    proc = subprocess.run(["git", "show", f"{_resolve(rev, repo)}:{path}"], cwd=repo, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise DataError(f"{rev}:{path}: not in git ({(proc.stderr.strip().splitlines() or ['no output'])[-1]})")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise DataError(f"{rev}:{path}: not valid JSON ({exc.msg})") from None


def _resolve(rev: str, repo: str | Path) -> str:
    """A DVC experiment's name (``len-30``) as the git ref DVC keeps it under, or ``rev`` as it is."""
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], cwd=repo, capture_output=True,
                          text=True, check=False).stdout.split()
    named = [ref for ref in refs if ref.rsplit("/", 1)[-1] == rev]
    return named[0] if len(named) == 1 else rev


def scores(detail: dict, measure: str) -> list[Score]:
    """Every forecaster's ``measure``, lowest first (the noise floor last among equals)."""
    if not isinstance(detail, dict) or not isinstance(detail.get("models"), dict):
        raise DataError("not experiment S's detail (no models); run `dvc repro evaluate_sine`")
    found = []
    for kind, model in detail["models"].items():
        seeds = [s[measure] for s in (model.get("seeds") or {}).values() if measure in s]
        if not seeds:
            raise DataError(f"{kind}: no {measure} per seed; choose from {', '.join(MEASURES)}")
        median = float(np.median(seeds))
        found.append(Score(f"{kind.upper()}, median of {len(seeds)} seeds", "network", median, (min(seeds), max(seeds))))
        if measure in (model.get("ensemble") or {}):
            found.append(Score(f"{kind.upper()}, seed ensemble (median forecast)", "network", model["ensemble"][measure]))
    for name, reference in (detail.get("references") or {}).items():
        if isinstance(reference, dict) and measure in reference:
            found.append(Score(NAMES.get(name, name), "reference", reference[measure], floor=name == "clean_sine"))
    return sorted(found, key=lambda s: (s.value, s.floor))


SELECTION = "validation_mse"  # what a run's network forecaster is chosen by: never the test range


def chosen_on_validation(detail: dict) -> str | None:
    """The model whose median seed has the lowest validation MSE (the slice before the test range
    that early stopping judged), or None where no slice was held out. Picking the best of the
    networks on the test range would flatter it: this is the run's one network forecaster."""
    medians = {}
    for kind, model in detail["models"].items():
        values = [s[SELECTION] for s in (model.get("seeds") or {}).values() if SELECTION in s]
        if values:
            medians[kind] = float(np.median(values))
    return min(medians, key=medians.get) if medians else None


def forecaster_to_use(detail: dict, models: list[str]) -> tuple[str, str]:
    """The network ``rnnlab forecast`` continues a series with when none is named, and why: the one
    chosen on the validation slice where one was held out, else the lowest median backtest MSE
    (a forecast of the future may lean on the whole past, the test range included)."""
    trained = {kind: model for kind, model in detail["models"].items() if kind in models}
    if not trained:
        raise DataError(f"no trained model of {', '.join(models)} in this run's detail; run `dvc repro evaluate_sine`")
    chosen = chosen_on_validation({"models": trained})
    if chosen is not None:
        return chosen, f"the lowest median {SELECTION}"
    medians = {kind: float(np.median([s["backtest_mse"] for s in (model.get("seeds") or {}).values()]))
               for kind, model in trained.items()}
    return min(medians, key=medians.get), "the lowest median backtest_mse (no validation slice was held out)"


def against_best_reference(detail: dict, measure: str, name: str | None = None) -> list[str]:
    """Each network's seeds against the best classical forecaster's ``measure``: the median with its
    95% bootstrap interval, and how many seeds are below the reference (the sign test: exact
    two-sided binomial p). A claim that a network beats a reference is one this table makes."""
    found = detail.get("references") or {}
    if name is not None and measure not in (found.get(name) or {}):
        raise DataError(f"no reference {name!r} with {measure} in this run; choose from {', '.join(sorted(found))}")
    best = name is None
    name = name or references.best(found, measure)
    if name is None:
        return []
    value = found[name][measure]
    which = "the best classical forecaster" if best else "the classical forecaster"
    lines = [f"Against {which}, {NAMES.get(name, name)} ({value:.5g}): each network's seeds"]
    chosen = chosen_on_validation(detail)
    for kind, model in detail["models"].items():
        seeds = [s[measure] for s in (model.get("seeds") or {}).values() if measure in s]
        median, low, high = stats.bootstrap_median(seeds)
        test = stats.against_value(seeds, value)
        below, n = test.below
        lines.append(f"{'> ' if kind == chosen else '  '}{kind.upper():<5} median {median:.5g} [95% interval {low:.5g}, "
                     f"{high:.5g}]: {below} of {n} seeds below (sign test p = {test.p:.2g})")
    if chosen is not None:
        lines.append(f"> the run's network forecaster, chosen by the lowest median {SELECTION} (never the test range): "
                     f"{chosen.upper()}")
    return lines


def render(found: list[Score], measure: str) -> str:
    """At most 120 characters wide; the best forecaster (never the noise floor) marked."""
    winner = next(s for s in found if not s.floor)
    lines = [f"{'':2}{'forecaster':<{NAME_WIDTH}} {'':<9} {measure:>14}  seeds' range (min .. max)", ""]
    for score in found:
        mark = "* " if score is winner else "  "
        spread = f"  {score.spread[0]:.4g} .. {score.spread[1]:.4g}" if score.spread else ""
        lines.append(f"{mark}{score.name[:NAME_WIDTH]:<{NAME_WIDTH}} {score.kind:<9} {score.value:>14.5g}{spread}")
    lines.append("")
    lines.append(f"* the lowest {measure}: {winner.name} ({winner.kind})")
    return "\n".join(lines)
