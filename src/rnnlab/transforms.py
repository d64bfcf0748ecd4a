"""Experiment S's series in the models' units and back, for the forecaster recipe (``recipe.py``):
a transform (``series.transform``), then a scaling fitted on the transformed training part.

Apart from ``recipe.py`` so that ``prepare_series`` writes the models' units without importing
the models (its DVC dependencies stay the data code)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab import data
from rnnlab.errors import DataError
from rnnlab.io import read_json
from rnnlab.params import Params

log = logging.getLogger(__name__)

BEYOND_SHARE = 0.5  # of the test part beyond the training part's range: warned

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


def warn_if_test_beyond_training(z: np.ndarray, first_test: int, transform: str, source: str) -> float:
    """Warn when most of the test part of ``z`` (the series in the models' units) lies beyond the
    range of its training part, ``z[:first_test]``; returns that share.

    A network learns the range it trains on (a tanh-bounded one cannot leave it): on a trending
    series left as it is (or only logged) its forecasts flatten at the training part's edge (co2
    untransformed: at 351-356 ppm while the series rises to 374). US real GDP, quarterly, logged:
    all of the test part beyond the range, networks' backtest MASE 54-70 against the naive
    forecast's 13; differenced (7% beyond), 5.2-5.6. Shares on the packaged series: co2 79%
    untransformed, 0-2% differenced; sunspots 10%; nile and the sine 0%."""
    train, test = z[:first_test], z[first_test:]
    share = float(np.mean((test < train.min()) | (test > train.max()))) if len(test) and len(train) else 0.0
    if share > BEYOND_SHARE:
        log.warning("warning: %s: %.0f%% of the test part lies beyond the training part's range in the models' "
                    "units (series.transform %s): a network cannot forecast what it never saw, its forecasts "
                    "will flatten at the edge; for a trending series use series.recipe=forecaster with "
                    "series.transform=diff", source, 100 * share, transform)
    return share

