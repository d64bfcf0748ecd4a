"""``rnnlab forecast``: a trained S model continues the series, every seed at once.

The seeds' median is the forecast (the seed ensemble, scored as a forecaster of its own in
``metrics/sine_detail.json``: ``models.<kind>.ensemble``); their range (min to max) is the lab's
honest uncertainty band: five trainings that differ only in their torch seed disagree by that much.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rnnlab import data, evaluation, provenance, recipe, sine
from rnnlab.checkpoints import load_checkpoint
from rnnlab.errors import DataError
from rnnlab.params import Params


@dataclass(frozen=True)
class Forecast:
    history: np.ndarray      # the values the forecast continues, in the series' units
    seeds: list[int]
    runs: np.ndarray         # (seeds, steps), in the series' units

    def frame(self) -> pd.DataFrame:
        """One row per step: median, min, max over seeds, then every seed's value."""
        frame = pd.DataFrame({
            "step": np.arange(1, self.runs.shape[1] + 1),
            "median": np.median(self.runs, axis=0),
            "min": self.runs.min(axis=0),
            "max": self.runs.max(axis=0),
        })
        for seed, run in zip(self.seeds, self.runs):
            frame[f"seed{seed}"] = run
        return frame


def load_model(p: Params, models: Path, kind: str, prepared: Path):
    """A trained S model, refused unless it trained on what ``prepared`` (prepare_series' folder)
    holds now, cut as params.yaml cuts it: not another series' model, nor another seq_len's."""
    path = models / f"{kind}.pt"
    if not path.exists():
        raise DataError(f"{path}: no such file; run `dvc repro train_sine@{kind}` first")
    trained_on = provenance.sine(p, prepared / "series.csv", prepared / "scaled.csv", prepared / "scaling.json")
    return load_checkpoint(path, sine.model_config(p, kind), list(p.seeds), trained_on)


def forecast(p: Params, prepared: Path, models: Path, kind: str, steps: int,
             history: np.ndarray | None = None) -> Forecast:
    """``steps`` values after the series prepare_series left in ``prepared`` (or after ``history``),
    by the recipe params.yaml names."""
    if p.series.recipe == "forecaster":
        return continue_forecaster(p, prepared, models, kind, steps, history)
    return continue_series(p, prepared, models, kind, steps, history)


def continue_series(p: Params, prepared: Path, models: Path, kind: str, steps: int,
                    history: np.ndarray | None = None) -> Forecast:
    """Forecast ``steps`` values after the end of the prepared series, or after ``history``.

    After the series, a model starts from the state its training left and reads the test range
    teacher-forced (the backtest's warm-up, to the last point). After a history of yours, which
    need not continue the training series, it starts from a zero state and reads that history.
    """
    if steps < 1:
        raise DataError(f"--steps must be 1 or more, got {steps}")
    saved = load_model(p, models, kind, prepared)
    to_series, scaled = data.Scaler.read(prepared / "scaling.json"), data.read_series(prepared / "scaled.csv")
    model = saved.stack()
    if history is None:
        known = data.split_series(scaled, p.sine.data.train_fraction).test
        state, shown = saved.state, to_series.unscale_values(scaled)
    else:
        known = torch.from_numpy(to_series.scale(history)).float()
        state, shown = None, history
    runs = evaluation.backtest(model, known, state, (len(known) - 1,), steps)[:, 0]  # (R, steps)
    return Forecast(history=shown, seeds=list(p.seeds), runs=to_series.unscale(runs).double().numpy())


def continue_forecaster(p: Params, prepared: Path, models: Path, kind: str, steps: int,
                        history: np.ndarray | None = None) -> Forecast:
    """``continue_series`` for a model of the forecaster recipe (``series.recipe: forecaster``): it
    reads the last ``seq_len`` values of the series (or of ``history``) from a zero state, as it
    was trained to, runs free, and its forecasts are undone into the series' units."""
    if steps < 1:
        raise DataError(f"--steps must be 1 or more, got {steps}")
    model = load_model(p, models, kind, prepared).stack()
    units, series = recipe.Units.read(prepared / "scaling.json"), data.read_series(prepared / "series.csv")
    known = series if history is None else history
    if len(known) <= units.transform.lag:
        raise DataError(f"--history has {len(known)} values; series.transform {units.transform.kind} needs more "
                        f"than {units.transform.lag}")
    runs = recipe.free_runs(model, known, units.to_model(known, "--history"), units, (len(known) - 1,), steps, p.seq_len)
    return Forecast(history=known, seeds=list(p.seeds), runs=runs[:, 0])
