"""Classical forecasts of experiment S's series: what a network's numbers should be compared with.

Each reference is fitted on the training part only, then asked the same three questions as the
networks (see ``sine.evaluate``):

- ``rollout``: from the first test point, forecast the rest of the test range (the texts' metric);
- ``one_step``: each test point from the true values before it;
- ``backtest``: from each of ``series.origins`` origins in the test range, ``series.horizon`` steps.

Conditioning on data after the training part (``apply(..., refit=False)``) never refits: the
parameters stay the training part's, as the networks' weights do.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rnnlab.params import Series

# Forecaster: (values known so far, steps) -> forecast of the next ``steps`` values
Forecaster = Callable[[np.ndarray, int], np.ndarray]
# How a person calls each reference (tables, plot legends)
NAMES = {"linear_ar": "linear AR, no constant (the texts')", "autoreg": "AutoReg with a constant",
         "exp_smoothing": "Holt-Winters", "seasonal_naive": "seasonal naive", "arima": "ARIMA", "naive": "naive",
         "zero": "predict zero", "clean_sine": "the clean sine (noise floor)", "ets": "ETS, its form by AIC",
         "autoreg_aic": "AutoReg, its lags by AIC", "theta": "Theta", "combination": "median of ETS, ARIMA and Theta"}
# Yardsticks, not forecasters: the noise floor needs the clean signal, and zero is a scale
YARDSTICKS = ("clean_sine", "zero")


def best(metrics: dict[str, dict], measure: str) -> str | None:
    """The classical forecaster with the lowest ``measure`` in ``metrics`` (name -> its metrics),
    the yardsticks aside; None if none has it."""
    found = {name: m[measure] for name, m in metrics.items()
             if name not in YARDSTICKS and isinstance(m, dict) and isinstance(m.get(measure), (int, float))}
    return min(found, key=found.get) if found else None


@dataclass(frozen=True)
class Questions:
    """Where the test range starts and which origins the backtest forecasts from."""

    boundary: int            # first test index
    origins: tuple[int, ...]  # last known index of each backtest forecast
    horizon: int


def questions(length: int, boundary: int, series: Series) -> Questions:
    """``series.origins`` origins spread evenly from the first test point to the last that leaves
    a whole horizon after it; the first is always the texts' rollout origin."""
    last = length - 1 - series.horizon
    origins = np.unique(np.linspace(boundary, last, series.origins).round().astype(int))
    return Questions(boundary, tuple(int(o) for o in origins), series.horizon)


def answers(values: np.ndarray, q: Questions, forecast: Forecaster, one_step: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "rollout": forecast(values[: q.boundary + 1], len(values) - q.boundary - 1),
        "one_step": one_step,
        "backtest": np.stack([forecast(values[: o + 1], q.horizon) for o in q.origins]),
    }


def _statsmodels(module: str, name: str):
    """A statsmodels class, imported when first needed (0.7 s) and without its import-time
    deprecation chatter about pandas internals, which says nothing about our data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(importlib.import_module(module), name)


# --- the references --------------------------------------------------------------------


def naive(values: np.ndarray, q: Questions) -> dict[str, np.ndarray]:
    """Tomorrow is today: the last known value, repeated (MASE's yardstick)."""
    return answers(values, q, lambda known, steps: np.full(steps, known[-1]), values[q.boundary : -1])


def seasonal_naive(values: np.ndarray, q: Questions, season: int) -> dict[str, np.ndarray]:
    """The value one season earlier; beyond one season, the last known season repeated."""

    def forecast(known: np.ndarray, steps: int) -> np.ndarray:
        return np.resize(known[-season:], steps)

    return answers(values, q, forecast, values[q.boundary + 1 - season : len(values) - season])


def autoreg(values: np.ndarray, q: Questions, lags: int, trend: str = "c") -> dict[str, np.ndarray]:
    """statsmodels' AutoReg with ``lags`` lags and, by default, its default constant (what a
    forecaster fits); ``trend="n"``: no constant, the texts' linear model of a window."""
    AutoReg = _statsmodels("statsmodels.tsa.ar_model", "AutoReg")
    fitted = AutoReg(values[: q.boundary], lags=lags, trend=trend).fit()
    return _state_space_like(values, q, fitted)


# The ARIMA orders tried when ``series.arima_order`` is null: small, as a forecaster's first look.
ARIMA_GRID = tuple((p, d, q) for d in (0, 1) for p in range(4) for q in range(3))


def arima_order_by_aic(train: np.ndarray, grid: tuple[tuple[int, int, int], ...] = ARIMA_GRID) -> tuple[int, int, int]:
    """The order of ``grid`` whose ARIMA, fitted on ``train`` alone, has the lowest AIC (a constant
    with d = 0, a drift with d = 1, as ``arima`` fits them); fits that fail are skipped."""
    best, best_aic = None, np.inf
    for order in grid:
        try:
            aic = _fit_arima(train, order).aic
        except (ValueError, np.linalg.LinAlgError):
            continue
        if np.isfinite(aic) and aic < best_aic:
            best, best_aic = order, aic
    if best is None:
        raise ValueError("no ARIMA order of the grid could be fitted on the training part")
    return best


def _fit_arima(train: np.ndarray, order: tuple[int, int, int]):
    ARIMA = _statsmodels("statsmodels.tsa.arima.model", "ARIMA")
    trend = "c" if order[1] == 0 else "t" if order[1] == 1 else "n"  # a level, a drift, none beyond
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on short series; the fit is still used
        return ARIMA(train, order=order, trend=trend).fit()


def arima(values: np.ndarray, q: Questions, order: tuple[int, int, int] | None) -> dict[str, np.ndarray]:
    """statsmodels' ARIMA(p, d, q), fitted by maximum likelihood on the training part; ``order``
    None: chosen there by AIC over ``ARIMA_GRID`` (``answers["order"]`` says which)."""
    train = values[: q.boundary]
    chosen = tuple(order) if order is not None else arima_order_by_aic(train)
    result = _state_space_like(values, q, _fit_arima(train, chosen))
    result["order"] = np.array(chosen)
    return result


def exponential_smoothing(values: np.ndarray, q: Questions, season: int | None) -> dict[str, np.ndarray]:
    """statsmodels' Holt-Winters (ETS): an additive damped trend, and an additive season when the
    series has one."""
    ExponentialSmoothing = _statsmodels("statsmodels.tsa.holtwinters", "ExponentialSmoothing")
    shape = {"trend": "add", "damped_trend": True, "seasonal": "add" if season else None, "seasonal_periods": season}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = ExponentialSmoothing(values[: q.boundary], **shape).fit()
    # Conditioning on later data: the same model with the fitted smoothing constants and initial
    # states fixed, filtered over the longer series. Holt-Winters has no apply().
    fixed = {k: fitted.params[k] for k in ("smoothing_level", "smoothing_trend", "damping_trend")}
    known = {"initial_level": fitted.params["initial_level"], "initial_trend": fitted.params["initial_trend"]}
    if season:
        fixed["smoothing_seasonal"] = fitted.params["smoothing_seasonal"]
        known["initial_seasonal"] = fitted.params["initial_seasons"]

    def refilter(data: np.ndarray):
        model = ExponentialSmoothing(data, **shape, initialization_method="known", **known)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit(optimized=False, **fixed)

    one_step = refilter(values).fittedvalues[q.boundary + 1 :]
    return answers(values, q, lambda data, steps: refilter(data).forecast(steps), one_step)


# ETS's forms tried: additive errors, no trend / a trend / a damped trend, with and without an
# additive season (where the series has one). Initial states by statsmodels' heuristic, so every
# form's AIC counts the same kind of parameters (the smoothing constants), and a season of 200
# points costs no 200-parameter fit.
ETS_FORMS = tuple({"trend": trend, "damped_trend": damped}
                  for trend, damped in ((None, False), ("add", False), ("add", True)))


def ets(values: np.ndarray, q: Questions, season: int | None) -> dict[str, np.ndarray] | None:
    """statsmodels' ETSModel, the form (``ETS_FORMS``, with or without the season) of lowest AIC on
    the training part: what forecast's ``ets()`` does, restricted to additive errors. A form the
    training part is too short for (the heuristic's initial season needs two) is skipped; None if
    every form is."""
    ETSModel = _statsmodels("statsmodels.tsa.exponential_smoothing.ets", "ETSModel")
    train = values[: q.boundary]
    seasons = ({"seasonal": "add", "seasonal_periods": season}, {"seasonal": None}) if season else ({"seasonal": None},)
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on short series; the fit is still used
        for form in ETS_FORMS:
            for seasonal in seasons:
                shape = {"error": "add", **form, **seasonal}
                try:
                    fitted = ETSModel(train, initialization_method="heuristic", **shape).fit(disp=False)
                except (ValueError, np.linalg.LinAlgError):
                    continue
                if np.isfinite(fitted.aic) and (best is None or fitted.aic < best[0]):
                    best = (fitted.aic, shape, fitted)
    if best is None:
        return None
    _, shape, fitted = best
    # Conditioning on later data: the same form with the fitted initial states and constants fixed
    initial = {"initial_level": fitted.initial_level}
    if shape["trend"]:
        initial["initial_trend"] = fitted.initial_trend
    if shape["seasonal"]:
        initial["initial_seasonal"] = fitted.initial_seasonal
    names = fitted.model.param_names

    def refilter(data: np.ndarray):
        model = ETSModel(data, initialization_method="known", **shape, **initial)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.smooth([fitted.params[names.index(n)] for n in model.param_names])

    one_step = np.asarray(refilter(values).fittedvalues)[q.boundary + 1 :]
    return answers(values, q, lambda data, steps: np.asarray(refilter(data).forecast(steps)), one_step)


def autoreg_by_aic(values: np.ndarray, q: Questions, max_lags: int) -> dict[str, np.ndarray]:
    """statsmodels' AutoReg with a constant, its order (1 to ``max_lags``, or none) of lowest AIC on
    the training part (``ar_select_order``); ``answers["lags"]`` says how many."""
    fitted = fit_autoreg_by_aic(values[: q.boundary], max_lags)
    result = _state_space_like(values, q, fitted)
    result["lags"] = np.array([len(fitted.params) - 1])
    return result


def fit_autoreg_by_aic(train: np.ndarray, max_lags: int):
    """statsmodels' AutoReg with a constant, fitted on ``train`` with its order (0 to ``max_lags``) of lowest AIC."""
    select = _statsmodels("statsmodels.tsa.ar_model", "ar_select_order")
    AutoReg = _statsmodels("statsmodels.tsa.ar_model", "AutoReg")
    lags = len(select(train, maxlag=max_lags, trend="c", ic="aic").ar_lags or ())
    return AutoReg(train, lags=lags, trend="c").fit()


def ar_max_lags(train_length: int, season: int | None) -> int:
    """The longest AR ``autoreg_by_aic`` tries: two seasons (24 without one), at most a quarter of
    the training part."""
    return max(1, min(train_length // 4, 2 * season if season else 24))


def theta(values: np.ndarray, q: Questions, season: int | None) -> dict[str, np.ndarray]:
    """statsmodels' ThetaModel (theta 2, the M3 winner's method): a simple exponential smoothing plus
    half the linear trend, on the series deseasonalised where ``season`` is set and the training part
    passes statsmodels' seasonality test. Its constant ``alpha``, drift ``b0`` and seasonal indices
    are fitted on the training part; from a later origin the smoothing runs on, with them fixed."""
    ThetaModel = _statsmodels("statsmodels.tsa.forecasting.theta", "ThetaModel")
    ExponentialSmoothing = _statsmodels("statsmodels.tsa.holtwinters", "ExponentialSmoothing")
    train = values[: q.boundary]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # deseasonalising needs two whole seasons in the training part
            model = ThetaModel(train, period=season, deseasonalize=bool(season))
            fitted = model.fit()
        except ValueError:
            model = ThetaModel(train, deseasonalize=False)
            fitted = model.fit()
    alpha, b0 = float(fitted.params["alpha"]), float(fitted.params["b0"])
    # the training part's seasonal indices (empty where the seasonality test failed): statsmodels keeps
    # them on the result only, as _seasonal
    indices = np.asarray(fitted._seasonal) if model.deseasonalize else np.empty(0)
    multiplicative = model.method.startswith("mul")

    def season_at(t: np.ndarray) -> np.ndarray:
        if not len(indices):
            return np.ones(len(t)) if multiplicative else np.zeros(len(t))
        return indices[t % len(indices)]

    def smoothed(known: np.ndarray):
        """The exponential smoothing of ``known`` deseasonalised, with the training part's alpha."""
        t = np.arange(len(known))
        y = known / season_at(t) if multiplicative else known - season_at(t)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ExponentialSmoothing(y, initial_level=y[0], initialization_method="known").fit(
                smoothing_level=alpha, optimized=False)

    def theta_line(level: np.ndarray, known: np.ndarray, ahead: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Theta 2 from the smoothed ``level`` after ``known`` points, ``ahead`` steps on (0: the
        next), reseasonalised for times ``t``: half the trend line's slope on top of the level."""
        h = ahead + (1 / alpha - (1 - alpha) ** known / alpha if alpha > 0 else 0.0)
        line = 0.5 * b0 * h + level
        return line * season_at(t) if multiplicative else line + season_at(t)

    def forecast(known: np.ndarray, steps: int) -> np.ndarray:
        ahead = np.arange(steps, dtype=np.float64)
        return theta_line(smoothed(known).forecast(1)[0], len(known), ahead, len(known) + np.arange(steps))

    # one step ahead of every test point, in one pass: the smoothing's fitted value at t is its level
    # after the t points before it
    targets = np.arange(q.boundary + 1, len(values))
    levels = np.asarray(smoothed(values).fittedvalues)[targets]
    one_step = theta_line(levels, targets.astype(np.float64), np.zeros(len(targets)), targets)
    return answers(values, q, forecast, one_step)


COMBINED = ("ets", "arima", "theta")  # M4's benchmark combination (Makridakis et al. 2020)


def combination(found: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The per-step median of ``COMBINED``'s answers to every question (those ``found`` has): a
    combination of the field's standard forecasters, as the M3/M4 benchmarks combine them."""
    parts = [found[name] for name in COMBINED if name in found]
    return {question: np.median(np.stack([part[question] for part in parts]), axis=0)
            for question in ("rollout", "one_step", "backtest")}


def _state_space_like(values: np.ndarray, q: Questions, fitted) -> dict[str, np.ndarray]:
    """Forecasts of a statsmodels result that can be re-applied to longer data without refitting."""
    whole = fitted.apply(values, refit=False)
    one_step = np.asarray(whole.predict(start=q.boundary + 1, end=len(values) - 1, dynamic=False))
    return answers(values, q, lambda data, steps: np.asarray(fitted.apply(data, refit=False).forecast(steps)), one_step)


def clean_signal(values: np.ndarray, q: Questions, clean: np.ndarray) -> dict[str, np.ndarray]:
    """The noiseless signal itself (known only for the generated sine): its error is the noise,
    the floor no forecaster can beat."""
    return answers(values, q, lambda known, steps: clean[len(known) : len(known) + steps], clean[q.boundary + 1 :])


def zero(values: np.ndarray, q: Questions) -> dict[str, np.ndarray]:
    """Always 0: for a zero-mean series, the error of saying nothing."""
    return answers(values, q, lambda known, steps: np.zeros(steps), np.zeros(len(values) - q.boundary - 1))


def all_references(values: np.ndarray, q: Questions, series: Series, lags: int,
                   clean: np.ndarray | None) -> dict[str, dict[str, np.ndarray]]:
    """Every reference that applies to this series, by name (``arima``'s chosen order under
    ``arima``'s ``"order"``: not a question, ``reference_metrics`` skips it)."""
    result = {}
    if clean is not None:  # the generated sine: the noise floor, and the texts' AR without a constant
        result["clean_sine"] = clean_signal(values, q, clean)
        result["linear_ar"] = autoreg(values, q, lags, trend="n")
    result["zero"] = zero(values, q)
    result["naive"] = naive(values, q)
    if series.season:
        result["seasonal_naive"] = seasonal_naive(values, q, series.season)
    result["autoreg"] = autoreg(values, q, lags)
    result["exp_smoothing"] = exponential_smoothing(values, q, series.season)
    result["arima"] = arima(values, q, series.arima_order)
    if (fitted := ets(values, q, series.season)) is not None:
        result["ets"] = fitted
    result["autoreg_aic"] = autoreg_by_aic(values, q, ar_max_lags(q.boundary, series.season))
    result["theta"] = theta(values, q, series.season)
    result["combination"] = combination(result)
    return result
