"""``rnnlab forecast``: a trained S model continues the series, every seed at once.

The seeds' median is the forecast (the seed ensemble, scored as a forecaster of its own in
``metrics/sine_detail.json``: ``models.<kind>.ensemble``); their range (min to max) is the lab's
honest uncertainty band: five trainings that differ only in their torch seed disagree by that much.
"""

from __future__ import annotations

import csv
import io
import re
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
class Calendar:
    """A csv's column of times that step evenly (years 1700, 1701, ...; months 1958-03, 1958-04, ...)."""
    name: str                           # the column's header: month, YEAR
    times: tuple                        # its values, as read
    step: int | None = None             # integer times: the step between two
    format: str | None = None           # dates: their strftime format
    freq: object = None                 # dates: pandas' frequency (a DateOffset)

    def after(self, steps: int) -> list:
        """The ``steps`` times after the last one, written as the csv writes them."""
        if self.step is not None:
            return [self.times[-1] + self.step * k for k in range(1, steps + 1)]
        last = pd.to_datetime(self.times[-1], format=self.format)
        return list(pd.date_range(last, periods=steps + 1, freq=self.freq)[1:].strftime(self.format))


DATE_FORMATS = ("%Y-%m-%d", "%Y-%m", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d.%m.%Y", "%m/%d/%Y", "%d/%m/%Y")


def calendar(path: str | Path, column: str | None) -> Calendar | None:
    """The first column of a headed csv, beside ``column``, whose values are times stepping evenly
    (integers with one step, or dates of one pandas frequency); None if the csv has none."""
    if column is None:  # one number per line: no times to continue
        return None
    rows = list(csv.reader(io.StringIO(data.csv_text(path))))
    header = [name.strip() for name in rows[0]]
    for index, name in enumerate(header):
        values = [row[index].strip() for row in rows[1:] if len(row) == len(header)]
        if name == column or len(values) < 3 or len(values) != len(rows) - 1:
            continue
        if all(re.fullmatch(r"-?\d+", v) for v in values):
            steps = set(np.diff([int(v) for v in values]).tolist())
            if len(steps) == 1 and next(iter(steps)) > 0:
                return Calendar(name, tuple(int(v) for v in values), step=next(iter(steps)))
            continue
        for fmt in DATE_FORMATS:
            try:
                parsed = pd.to_datetime(values, format=fmt)
            except (ValueError, TypeError):
                continue
            freq = pd.DatetimeIndex(parsed, freq="infer").freq  # None where no one frequency fits
            if freq is not None:
                return Calendar(name, tuple(values), format=fmt, freq=freq)
    return None


@dataclass(frozen=True)
class Forecast:
    history: np.ndarray      # the values the forecast continues, in the series' units
    seeds: list[int]
    runs: np.ndarray         # (seeds, steps), in the series' units

    def frame(self, times: Calendar | None = None) -> pd.DataFrame:
        """One row per step (and its time, after ``times``' last): median, min, max over seeds,
        then every seed's value."""
        frame = pd.DataFrame({"step": np.arange(1, self.runs.shape[1] + 1)})
        if times is not None:
            frame[times.name] = times.after(self.runs.shape[1])
        frame["median"] = np.median(self.runs, axis=0)
        frame["min"] = self.runs.min(axis=0)
        frame["max"] = self.runs.max(axis=0)
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
