"""The classical references: statsmodels' fits asked the networks' questions, never refitted on
test data, and equal to the texts' hand-written linear AR where they overlap."""

import numpy as np
import pytest

from rnnlab import data, references
from rnnlab.params import Series

SERIES = Series(csv_path="x.csv", column=None, scaling="none", season=20, arima_order=(2, 0, 0), origins=3, horizon=5)


def damped_oscillation(n: int = 200) -> np.ndarray:
    """x_t = 1.6 x_{t-1} - 0.9 x_{t-2}: two lags describe it exactly."""
    series = [1.0, 0.5]
    for _ in range(n - 2):
        series.append(1.6 * series[-1] - 0.9 * series[-2])
    return np.array(series)


def test_questions_spread_origins_from_the_first_test_point_to_the_last_whole_horizon():
    q = references.questions(100, 80, SERIES)
    assert q.origins == (80, 87, 94) and q.origins[-1] + q.horizon == 99


def test_one_origin_is_the_texts_single_rollout_point():
    q = references.questions(100, 80, Series(**{**SERIES.__dict__, "origins": 1}))
    assert q.origins == (80,)


def test_autoreg_recovers_an_exact_autoregression_in_every_question():
    series = damped_oscillation()
    q = references.questions(len(series), 150, SERIES)
    got = references.autoreg(series, q, lags=2)
    np.testing.assert_allclose(got["rollout"], series[151:], atol=1e-9)
    np.testing.assert_allclose(got["one_step"], series[151:], atol=1e-9)
    np.testing.assert_allclose(got["backtest"], [series[o + 1 : o + 6] for o in q.origins], atol=1e-9)


def test_autoreg_is_the_texts_least_squares_linear_ar_on_the_sine(default_params):
    """The hand-written AR it replaced: lstsq over sliding windows, no intercept."""
    from rnnlab.params import parse

    p = parse(default_params)
    values = data.noisy_sine(p.sine.data)
    boundary, lags = 800, p.seq_len
    windows = np.lib.stride_tricks.sliding_window_view(values[:boundary], lags + 1)
    coef, *_ = np.linalg.lstsq(windows[:, :-1], windows[:, -1], rcond=None)
    buffer = list(values[boundary - lags + 1 : boundary + 1])
    for _ in range(len(values) - boundary - 1):
        buffer.append(float(np.dot(buffer[-lags:], coef)))
    one_step = np.lib.stride_tricks.sliding_window_view(values[boundary + 1 - lags : -1], lags) @ coef

    got = references.autoreg(values, references.questions(len(values), boundary, p.series), lags, trend="n")
    np.testing.assert_allclose(got["rollout"], buffer[lags:], atol=1e-6, rtol=0)
    np.testing.assert_allclose(got["one_step"], one_step, atol=1e-6, rtol=0)


def test_naive_repeats_the_last_known_value_and_seasonal_naive_the_last_season():
    series = np.arange(100.0)
    q = references.questions(100, 80, SERIES)
    naive = references.naive(series, q)
    assert naive["rollout"].tolist() == [80.0] * 19
    assert naive["one_step"].tolist() == list(np.arange(80.0, 99.0))
    seasonal = references.seasonal_naive(series, q, season=20)
    assert seasonal["one_step"].tolist() == list(np.arange(61.0, 80.0))            # value 20 steps back
    assert seasonal["rollout"].tolist() == list(np.arange(61.0, 81.0)[:19])        # the last season again


@pytest.mark.parametrize("name", ["autoreg", "exp_smoothing", "arima", "ets", "autoreg_aic", "theta", "combination"])
def test_a_forecast_from_an_origin_uses_no_value_after_it(name):
    """Changing every value after the first origin changes nothing of that origin's forecast:
    the fit sees the training part only, the conditioning the values up to the origin."""
    rng = np.random.default_rng(0)
    series = np.sin(np.arange(200) * 2 * np.pi / 20) + rng.normal(0, 0.1, 200)
    q = references.questions(200, 160, SERIES)
    whole = references.all_references(series, q, SERIES, 4, clean=None)[name]
    altered = series.copy()
    altered[q.origins[0] + 1 :] = 100.0
    cut = references.all_references(altered, q, SERIES, 4, clean=None)[name]
    np.testing.assert_allclose(cut["backtest"][0], whole["backtest"][0], rtol=0, atol=1e-12)
    assert not np.allclose(cut["backtest"][1], whole["backtest"][1])  # later origins do see them


@pytest.mark.parametrize("name", ["naive", "autoreg", "exp_smoothing", "arima", "ets", "autoreg_aic", "theta", "combination"])
def test_every_reference_answers_every_question_in_the_networks_shapes(name):
    series = damped_oscillation() + np.sin(np.arange(200))
    q = references.questions(200, 160, SERIES)
    got = references.all_references(series, q, SERIES, lags=4, clean=None)[name]
    assert got["rollout"].shape == got["one_step"].shape == (39,)
    assert got["backtest"].shape == (3, 5)
    assert all(np.isfinite(got[question]).all() for question in ("rollout", "one_step", "backtest"))


def test_the_clean_signal_and_the_texts_ar_without_a_constant_are_references_only_on_the_sine():
    series = np.sin(np.arange(100.0))
    q = references.questions(100, 80, SERIES)
    assert not {"clean_sine", "linear_ar"} & set(references.all_references(series, q, SERIES, 3, clean=None))
    assert {"clean_sine", "linear_ar"} <= set(references.all_references(series, q, SERIES, 3, clean=series))
    clean = references.all_references(series, q, SERIES, 3, clean=series)["clean_sine"]
    np.testing.assert_array_equal(clean["rollout"], series[81:])


def test_autoreg_fits_a_constant_by_default_as_least_squares_with_an_intercept_does():
    """A series around a level far from 0: numpy's lstsq with a column of ones is the reference."""
    rng = np.random.default_rng(1)
    series = 50 + damped_oscillation() + rng.normal(0, 0.3, 200)
    boundary, lags = 160, 3
    windows = np.lib.stride_tricks.sliding_window_view(series[:boundary], lags + 1)
    design = np.column_stack([np.ones(len(windows)), windows[:, :-1]])
    coef, *_ = np.linalg.lstsq(design, windows[:, -1], rcond=None)
    recent = np.lib.stride_tricks.sliding_window_view(series[boundary + 1 - lags : -1], lags)
    one_step = np.column_stack([np.ones(39), recent]) @ coef
    q = references.questions(200, boundary, SERIES)
    np.testing.assert_allclose(references.autoreg(series, q, lags)["one_step"], one_step, atol=1e-9, rtol=0)
    without = references.autoreg(series, q, lags, trend="n")["one_step"]
    assert np.abs(without - series[161:]).mean() > np.abs(one_step - series[161:]).mean()


def test_arima_without_an_order_takes_the_lowest_aic_of_the_grid_fitted_on_the_training_part():
    from statsmodels.tsa.arima.model import ARIMA

    rng = np.random.default_rng(2)
    series = np.cumsum(0.5 + rng.normal(0, 1, 120))  # a random walk with drift
    grid = ((0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0))
    aics = {o: ARIMA(series[:100], order=o, trend="c" if o[1] == 0 else "t").fit().aic for o in grid}
    assert references.arima_order_by_aic(series[:100], grid) == min(aics, key=aics.get)
    altered = series.copy()
    altered[100:] = 0.0  # the test part never enters the choice
    assert references.arima_order_by_aic(altered[:100], grid) == references.arima_order_by_aic(series[:100], grid)


def test_arima_reports_the_order_it_used():
    series = damped_oscillation() + np.random.default_rng(3).normal(0, 0.1, 200)
    q = references.questions(200, 160, SERIES)
    assert references.arima(series, q, (2, 0, 0))["order"].tolist() == [2, 0, 0]


def test_holt_winters_follows_a_trend_and_a_season():
    """A straight line plus a 12-step season, no noise: a damped additive trend with an additive
    season forecasts it closely; without the trend (the lab's former Holt-Winters) it could not."""
    t = np.arange(144.0)
    series = 0.5 * t + 3 * np.sin(2 * np.pi * t / 12)
    q = references.questions(144, 120, Series(**{**SERIES.__dict__, "season": 12, "horizon": 12}))
    got = references.exponential_smoothing(series, q, season=12)
    assert np.abs(got["rollout"] - series[121:]).max() < 1.0, got["rollout"] - series[121:]  # a level alone: off by 11


def test_the_best_classical_forecaster_is_the_lowest_that_forecasts():
    """The noise floor (it knows the clean signal) and predicting zero are yardsticks, never the best."""
    metrics = {"clean_sine": {"rollout_mse": 0.009}, "zero": {"rollout_mse": 0.001}, "naive": {"rollout_mse": 0.5},
               "exp_smoothing": {"rollout_mse": 0.011}, "arima": {"order": [2, 0, 1]}}
    assert references.best(metrics, "rollout_mse") == "exp_smoothing"
    assert references.best({"zero": {"rollout_mse": 1.0}}, "rollout_mse") is None


def test_ets_takes_the_form_of_lowest_aic_and_forecasts_as_statsmodels_fitted_on_the_training_part():
    """An independent fit of every form by statsmodels itself: the lowest AIC's forecast from the
    training part's end is the rollout; conditioning on later values never refits."""
    import itertools

    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    t = np.arange(144.0)
    series = 0.5 * t + 3 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(4).normal(0, 0.3, 144)
    fits = {}
    for (trend, damped), seasonal in itertools.product(((None, False), ("add", False), ("add", True)), ("add", None)):
        shape = {"trend": trend, "damped_trend": damped, "seasonal": seasonal, "seasonal_periods": 12 if seasonal else None}
        fits[trend, damped, seasonal] = ETSModel(series[:120], error="add", initialization_method="heuristic",
                                                 **shape).fit(disp=False)
    best = min(fits.values(), key=lambda fitted: fitted.aic)
    # a backtest origin at the training part's last point: the forecast of the fit itself
    at_the_end = references.Questions(boundary=120, origins=(119,), horizon=12)
    got = references.ets(series, at_the_end, season=12)
    np.testing.assert_allclose(got["backtest"][0], best.forecast(12), rtol=1e-10)
    others = [fitted for fitted in fits.values() if fitted is not best]
    assert all(np.abs(got["backtest"][0] - fitted.forecast(12)).max() > 1e-6 for fitted in others)


def test_autoreg_by_aic_takes_statsmodels_order_and_says_how_many_lags():
    from statsmodels.tsa.ar_model import AutoReg, ar_select_order

    series = damped_oscillation() + np.random.default_rng(5).normal(0, 0.05, 200)
    lags = len(ar_select_order(series[:160], maxlag=10, trend="c", ic="aic").ar_lags)
    at_the_end = references.Questions(boundary=160, origins=(159,), horizon=10)
    got = references.autoreg_by_aic(series, at_the_end, max_lags=10)
    assert got["lags"].tolist() == [lags] and 1 <= lags <= 10
    fitted = AutoReg(series[:160], lags=lags, trend="c").fit()
    np.testing.assert_allclose(got["backtest"][0], fitted.forecast(10), rtol=1e-10)


def test_the_combination_is_the_per_step_median_of_ets_arima_and_theta():
    """M4's benchmark combination (Makridakis et al. 2020): the median of ETS, ARIMA and Theta."""
    series = damped_oscillation() + np.sin(np.arange(200))
    q = references.questions(200, 160, SERIES)
    found = references.all_references(series, q, SERIES, lags=4, clean=None)
    for question in ("rollout", "one_step", "backtest"):
        parts = np.stack([found[name][question] for name in ("ets", "arima", "theta")])
        np.testing.assert_array_equal(found["combination"][question], np.median(parts, axis=0))


def test_a_training_part_too_short_for_a_seasonal_ets_gets_the_forms_it_can_fit():
    """statsmodels' heuristic initial season needs two whole seasons: 20 points of a 12-step season
    have one and a bit. The seasonal forms are skipped, not the run."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    series = np.sin(np.arange(30.0)) + 0.1 * np.arange(30)
    with pytest.raises(ValueError):
        ETSModel(series[:20], error="add", seasonal="add", seasonal_periods=12, initialization_method="heuristic")
    q = references.Questions(boundary=20, origins=(20,), horizon=5)
    got = references.ets(series, q, season=12)
    assert got is not None and got["rollout"].shape == (9,) and np.isfinite(got["rollout"]).all()


@pytest.mark.parametrize("season", [12, None])
def test_theta_forecasts_from_the_training_part_s_end_as_statsmodels_theta_model_does(season):
    """statsmodels' ThetaModel fitted on the training part is the reference; from later origins the
    same alpha, drift and seasonal indices are kept (no refit)."""
    from statsmodels.tsa.forecasting.theta import ThetaModel

    t = np.arange(144.0)
    series = 50 + 0.3 * t + 4 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(6).normal(0, 0.5, 144)
    fitted = ThetaModel(series[:120], period=season, deseasonalize=bool(season)).fit()
    at_the_end = references.Questions(boundary=120, origins=(119,), horizon=12)
    got = references.theta(series, at_the_end, season)
    np.testing.assert_allclose(got["backtest"][0], np.asarray(fitted.forecast(12)), rtol=1e-10)
    altered = series.copy()
    altered[121:] = 0.0  # the rollout from the first test point sees nothing after it
    np.testing.assert_array_equal(references.theta(altered, at_the_end, season)["rollout"], got["rollout"])


@pytest.mark.parametrize("season", [12, None])
def test_theta_s_one_step_answers_are_its_forecasts_one_step_from_every_test_point(season):
    """The one-step answers come from one pass of the smoothing; each equals the forecast from that
    point's origin, refiltered on the values up to it."""
    t = np.arange(144.0)
    series = 50 + 0.3 * t + 4 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(7).normal(0, 0.5, 144)
    every_origin = references.Questions(boundary=120, origins=tuple(range(120, 143)), horizon=1)
    got = references.theta(series, every_origin, season)
    np.testing.assert_allclose(got["one_step"], got["backtest"][:, 0], rtol=1e-12)
