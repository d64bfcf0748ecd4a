"""Experiment S's series in the models' units and back, for the forecaster recipe (``recipe.py``):
a transform (``series.transform``), then a scaling fitted on the transformed training part.

Apart from ``recipe.py`` so that ``prepare_series`` writes the models' units without importing
the models (its DVC dependencies stay the data code)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab import data
from rnnlab.errors import DataError
from rnnlab.io import read_json
from rnnlab.params import Params


@dataclass(frozen=True)
class Transform:
    """x -> z: ``none`` (z = x), ``log`` (z = log x), ``diff`` / ``seasonal_diff`` (z[t] = x[t] - x[t - lag],
    the first ``lag`` values have none, so z is ``lag`` shorter)."""

    kind: str = "none"
    lag: int = 0

    @classmethod
    def of(cls, p: Params) -> Transform:
        lag = {"diff": 1, "seasonal_diff": p.series.season or 0}.get(p.series.transform, 0)
        return cls(p.series.transform, lag)

    def apply(self, x: np.ndarray, source: str = "the series") -> np.ndarray:
        if self.kind == "log":
            bad = np.flatnonzero(x <= 0)
            if len(bad):
                raise DataError(f"{source}: series.transform log needs values > 0; value {bad[0] + 1} is {x[bad[0]]:g}")
            return np.log(x)
        if self.lag:
            return x[self.lag :] - x[: -self.lag]
        return x

    def undo(self, known: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Forecasts of z after the last known value back into x.

        ``known``: x up to the origin (x[: o + 1]); ``z`` (..., steps): forecasts of z for
        x[o + 1], x[o + 2], ... Differences add back onto the known value ``lag`` steps earlier, or
        onto the forecast of it once the forecast has passed ``lag`` steps."""
        if self.kind == "log":
            return np.exp(z)
        if not self.lag:
            return z
        out = np.empty_like(z)
        for j in range(z.shape[-1]):
            base = known[len(known) - self.lag + j] if j < self.lag else out[..., j - self.lag]
            out[..., j] = base + z[..., j]
        return out


@dataclass(frozen=True)
class Units:
    """From the series to the models' units and back: the transform, then a scaling fitted on the
    transformed training part. Written beside the scaled series (``prepare_series``' scaling json)."""

    transform: Transform
    scaler: data.Scaler

    @classmethod
    def fit(cls, x: np.ndarray, p: Params, source: str = "the series") -> Units:
        transform = Transform.of(p)
        z = transform.apply(x, source)
        train = z[: boundary(p, len(x)) - transform.lag]
        if p.series.scaling == "none":
            return cls(transform, data.Scaler())
        std = float(train.std())
        if std == 0:
            raise DataError(f"{source}: series.scaling standard: the transformed training part is constant (std 0)")
        return cls(transform, data.Scaler(float(train.mean()), std))

    def to_model(self, x: np.ndarray, source: str = "the series") -> np.ndarray:
        return self.scaler.scale(self.transform.apply(x, source))

    def to_json(self) -> dict:
        return {**self.scaler.to_json(), "transform": self.transform.kind, "lag": self.transform.lag}

    @classmethod
    def read(cls, path: str | Path) -> Units:
        saved = read_json(path)
        return cls(Transform(saved.get("transform", "none"), int(saved.get("lag", 0))), data.Scaler.read(path))


def boundary(p: Params, length: int) -> int:
    """The first test index of the series (the texts' split, ``sine.data.train_fraction``)."""
    return int(p.sine.data.train_fraction * length)
