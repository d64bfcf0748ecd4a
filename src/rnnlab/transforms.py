"""Experiment S's series in the models' units and back, for the forecaster recipe (``recipe.py``):
a transform (``series.transform``), then a scaling fitted on the transformed training part.

Apart from ``recipe.py`` so that ``prepare_series`` writes the models' units without importing
the models (its DVC dependencies stay the data code)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab import data, references
from rnnlab.errors import DataError
from rnnlab.io import read_json
from rnnlab.params import Params

log = logging.getLogger(__name__)

BEYOND_SHARE = 0.5  # of the test part beyond the training part's range: warned

@dataclass(frozen=True)
class Transform:
    """x -> z: ``none`` (z = x), ``log`` (z = log x), ``diff`` / ``seasonal_diff`` (z[t] = x[t] - x[t - lag],
    the first ``lag`` values have none, so z is ``lag`` shorter), ``ar_residual`` (z[t] = x[t] minus
    a linear autoregression's one-step prediction from the ``lag`` values before it: the hybrid of
    Zhang 2003, where the network learns what the AR leaves)."""

    kind: str = "none"
    lag: int = 0
    coefficients: tuple[float, ...] = ()  # ar_residual: the AR's constant, then its lag 1, 2, ... weights

    @classmethod
    def of(cls, p: Params, x: np.ndarray | None = None) -> Transform:
        """``series.transform``; ``ar_residual`` fits its AR on ``x``'s training part."""
        if p.series.transform == "ar_residual":
            return cls.ar_residual(x[: boundary(p, len(x))], references.ar_max_lags(boundary(p, len(x)), p.series.season))
        lag = {"diff": 1, "seasonal_diff": p.series.season or 0}.get(p.series.transform, 0)
        return cls(p.series.transform, lag)

    @classmethod
    def ar_residual(cls, train: np.ndarray, max_lags: int) -> Transform:
        """The AR of ``references.autoreg_by_aic`` (a constant, its lags by AIC), fitted on ``train``."""
        fitted = references.fit_autoreg_by_aic(train, max_lags)
        return cls("ar_residual", len(fitted.params) - 1, tuple(float(v) for v in fitted.params))

    def _ar_prediction(self, history: np.ndarray, t: int) -> np.ndarray:
        """The AR's prediction of step ``t`` from ``history[..., t - lag : t]``."""
        prediction = self.coefficients[0]
        for i, weight in enumerate(self.coefficients[1:], start=1):
            prediction = prediction + weight * history[..., t - i]
        return prediction

    def apply(self, x: np.ndarray, source: str = "the series") -> np.ndarray:
        if self.kind == "ar_residual":
            predicted = self.coefficients[0] + sum(
                weight * x[self.lag - i : len(x) - i] for i, weight in enumerate(self.coefficients[1:], start=1))
            return x[self.lag :] - predicted
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
        if self.kind == "ar_residual":  # the AR runs on the hybrid's own forecasts, as a difference does
            out = np.empty((*z.shape[:-1], self.lag + z.shape[-1]))
            out[..., : self.lag] = known[len(known) - self.lag :]
            for j in range(z.shape[-1]):
                out[..., self.lag + j] = self._ar_prediction(out, self.lag + j) + z[..., j]
            return out[..., self.lag :]
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
        transform = Transform.of(p, x)
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
        saved = {**self.scaler.to_json(), "transform": self.transform.kind, "lag": self.transform.lag}
        return {**saved, "coefficients": list(self.transform.coefficients)} if self.transform.coefficients else saved

    @classmethod
    def read(cls, path: str | Path) -> Units:
        saved = read_json(path)
        try:
            coefficients = tuple(float(v) for v in saved.get("coefficients", ()))
        except (TypeError, ValueError):
            raise DataError(f"{path}: coefficients must be a list of numbers; run `dvc repro prepare_series`") from None
        transform = Transform(saved.get("transform", "none"), int(saved.get("lag", 0)), coefficients)
        if transform.kind == "ar_residual" and len(coefficients) != transform.lag + 1:  # (read_json refuses NaN)
            raise DataError(f"{path}: ar_residual needs its AR's constant and {transform.lag} lag weights, got "
                            f"{len(coefficients)} numbers; run `dvc repro prepare_series`")
        return cls(transform, data.Scaler.read(path))


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

