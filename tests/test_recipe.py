"""The forecaster recipe (series.recipe: forecaster): transforms undone exactly, overlapping windows
in shuffled minibatches, forecasts that never see past their origin, the best weights restored, and
the seed ensemble scored as one forecaster."""

import json

import numpy as np
import pytest
import torch

from rnnlab import evaluation, recipe, sine
from rnnlab import io as rnnlab_io
from rnnlab.errors import DataError, ParamsError
from rnnlab.models import build_stack, config_for
from rnnlab.params import parse


def params(default_params, **series):
    raw = {**default_params, "seq_len": 5, "seeds": [0, 1]}
    raw["series"] = {**default_params["series"], "csv_path": "x.csv", "recipe": "forecaster", "season": 12,
                     "scaling": "standard", "origins": 3, "horizon": 6, **series}
    raw["series"]["forecaster"] = {**default_params["series"]["forecaster"], "epochs": 6, "patience": 2}
    raw["sine"] = {**default_params["sine"], "model": {**default_params["sine"]["model"], "hidden_size": 4}}
    return parse(raw)


def trend_and_season(n: int = 160) -> np.ndarray:
    t = np.arange(n, dtype=float)
    return 300 + 0.1 * t + 2 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.2, n)


@pytest.mark.parametrize("kind", ["none", "diff", "seasonal_diff", "log", "ar_residual"])
def test_undoing_the_true_transformed_future_gives_the_series_back(default_params, kind):
    p = params(default_params, transform=kind)
    x = trend_and_season()
    transform = recipe.Transform.of(p, x)
    z = transform.apply(x)
    assert len(z) == len(x) - {"none": 0, "log": 0, "diff": 1, "seasonal_diff": 12, "ar_residual": transform.lag}[kind]
    origin, steps = 100, 40
    future = z[origin + 1 - transform.lag : origin + 1 - transform.lag + steps]
    np.testing.assert_allclose(transform.undo(x[: origin + 1], future[None]), x[None, origin + 1 : origin + 1 + steps],
                               rtol=1e-12)


def test_a_diff_forecast_of_zero_change_is_the_naive_forecast_and_seasonal_the_seasonal_naive(default_params):
    x = trend_and_season()
    naive = recipe.Transform("diff", 1).undo(x[:101], np.zeros((1, 30)))
    np.testing.assert_array_equal(naive[0], np.full(30, x[100]))
    seasonal = recipe.Transform("seasonal_diff", 12).undo(x[:101], np.zeros((1, 30)))
    np.testing.assert_array_equal(seasonal[0], np.resize(x[89:101], 30))  # the last season, repeated


def test_the_ar_residual_is_what_statsmodels_autoreg_leaves_and_its_zero_forecast_is_the_ar_s(default_params):
    """Zhang's hybrid: the network learns the residuals of the AR fitted on the training part (its
    lags by AIC); a network that forecasts zero residuals forecasts what the AR alone does."""
    from statsmodels.tsa.ar_model import AutoReg, ar_select_order

    p = params(default_params, transform="ar_residual")
    x = trend_and_season()
    b = recipe.boundary(p, len(x))
    lags = len(ar_select_order(x[:b], maxlag=24, trend="c", ic="aic").ar_lags)
    fitted = AutoReg(x[:b], lags=lags, trend="c").fit()
    transform = recipe.Transform.of(p, x)
    assert transform.lag == lags >= 1
    np.testing.assert_allclose(transform.apply(x[:b]), fitted.resid, rtol=1e-9, atol=1e-9)
    ar_alone = transform.undo(x[:b], np.zeros((1, 12)))[0]
    np.testing.assert_allclose(ar_alone, fitted.forecast(12), rtol=1e-9)
    altered = x.copy()
    altered[b:] = 0.0  # the test range never enters the fit
    assert recipe.Transform.of(p, altered) == transform


def test_the_ar_residual_units_are_written_and_read_back(default_params, tmp_path):
    p = params(default_params, transform="ar_residual")
    units = recipe.Units.fit(trend_and_season(), p)
    rnnlab_io.write_json(tmp_path / "scaling.json", units.to_json())
    assert recipe.Units.read(tmp_path / "scaling.json") == units
    broken = tmp_path / "broken.json"
    for coefficients, message in (([1.0], r"broken\.json: ar_residual needs its AR's constant and \d+ lag weights"),
                                  ([float("nan")] * (units.transform.lag + 1), r"broken\.json:1: not a finite number"),
                                  (["a"], r"broken\.json: coefficients must be a list of numbers")):
        broken.write_text(json.dumps({**units.to_json(), "coefficients": coefficients}))
        with pytest.raises(DataError, match=message):
            recipe.Units.read(broken)


def test_log_refuses_a_value_that_is_not_positive(default_params):
    with pytest.raises(Exception, match=r"series.transform log needs values > 0; value 3 is 0"):
        recipe.Transform("log").apply(np.array([1.0, 2.0, 0.0]))


def test_a_transform_needs_the_forecaster_recipe(default_params):
    with pytest.raises(ParamsError, match=r"series\.transform diff needs series\.recipe: forecaster"):
        params(default_params, transform="diff", recipe="texts")


def test_windows_overlap_by_the_stride():
    z = torch.arange(12.0)
    windows = recipe.strided_windows(z, seq_len=3, stride=1)
    expected = np.lib.stride_tricks.sliding_window_view(np.arange(12.0), 4)
    np.testing.assert_array_equal(windows.inputs[..., 0].numpy(), expected[:, :-1])
    np.testing.assert_array_equal(windows.targets[..., 0].numpy(), expected[:, 1:])
    assert recipe.strided_windows(z, seq_len=3, stride=4).inputs[:, 0, 0].tolist() == [0.0, 4.0, 8.0]


def test_every_window_is_in_one_minibatch_per_epoch_reshuffled_and_seeded():
    windows = recipe.strided_windows(torch.arange(50.0), seq_len=3, stride=1)  # 47 windows

    def epochs(seed):
        regime = recipe.ShuffledWindows(windows, batch_size=10, seed=seed, judge=None)
        return [torch.cat([inputs[0, :, 0, 0] for inputs, _ in regime.batches()]).tolist() for _ in range(2)]

    first, second = epochs(0)
    assert sorted(first) == sorted(second) == list(range(47)) and first != second
    assert epochs(0) == [first, second] and epochs(1) != [first, second]
    assert recipe.ShuffledWindows(windows, 10, 0, None).steps_per_epoch() == 5


def test_a_forecast_from_an_origin_uses_no_value_after_it(default_params):
    p = params(default_params, transform="seasonal_diff")
    x = trend_and_season()
    units = recipe.Units.fit(x, p)
    model = build_stack(config_for("gru", p.sine.model, "sine"), list(p.seeds))
    whole = recipe.answers(p, x, units.to_model(x), units, model)
    altered = x.copy()
    altered[129:] += 50.0  # the test range starts at 128: everything after the first origin changes
    cut = recipe.answers(p, altered, units.to_model(altered), units, model)
    torch.testing.assert_close(cut["backtest"][:, 0], whole["backtest"][:, 0], rtol=0, atol=0)
    assert not torch.allclose(cut["backtest"][:, 1], whole["backtest"][:, 1])


def test_units_are_fitted_on_the_transformed_training_part_only(default_params):
    p = params(default_params, transform="diff")
    x = trend_and_season()
    altered = x.copy()
    altered[128:] *= 3
    assert recipe.Units.fit(x, p) == recipe.Units.fit(altered, p)
    units = recipe.Units.fit(x, p)
    train = np.diff(x)[:127]
    assert units.scaler.mean == pytest.approx(train.mean()) and units.scaler.std == pytest.approx(train.std())


class WindowsCutError(Exception):
    """Raised by the recorder once the training windows are cut: nothing needs to train."""


@pytest.mark.parametrize("transform", ["none", "diff", "seasonal_diff", "log"])
def test_no_training_window_reads_a_value_of_the_validation_slice(default_params, transform, monkeypatch):
    """The validation backtests judge the epochs: a window that had trained on their values would
    flatter them. Changing every value from the slice's start on leaves the windows as they were."""
    p = params(default_params, transform=transform, scaling="none")  # no scaler fitted over the slice
    x = trend_and_season()
    start = recipe.validation_start(p, len(x))
    cut = []

    def record(z, seq_len, stride):
        cut.append(recipe_strided(z, seq_len, stride))
        raise WindowsCutError

    recipe_strided = recipe.strided_windows
    monkeypatch.setattr(recipe, "strided_windows", record)
    for series in (x, np.concatenate([x[:start], x[start:] * 7])):
        units = recipe.Units.fit(series, p)
        with pytest.raises(WindowsCutError):
            recipe.train(p, series, units.to_model(series), units, "gru")
    before, after = cut
    assert torch.equal(before.inputs, after.inputs) and torch.equal(before.targets, after.targets)
    # and they reach the slice: the last target is the value just before it (z's start - lag - 1)
    units = recipe.Units.fit(x, p)
    last = units.to_model(x)[start - 1 - units.transform.lag]
    assert before.targets[-1, -1, 0].item() == pytest.approx(float(last))


def test_training_keeps_each_replicas_best_validation_weights(default_params):
    p = params(default_params, transform="seasonal_diff")
    x = trend_and_season()
    units = recipe.Units.fit(x, p)
    z = units.to_model(x)
    model, result, _ = recipe.train(p, x, z, units, "gru")
    best = result.history["val_loss"].min(0).values                  # (R,)
    vq = recipe.validation_questions(p, len(x))
    runs = recipe.free_runs(model, x, z, units, vq.origins, vq.horizon, p.seq_len)
    truth = np.stack([x[o + 1 : o + 1 + vq.horizon] for o in vq.origins])
    torch.testing.assert_close(torch.from_numpy(((runs - truth) ** 2).mean((1, 2))), best.double(), rtol=1e-6, atol=0)
    assert all(o + vq.horizon < 128 for o in vq.origins)  # validation backtests end before the test range


def test_the_ensemble_is_the_per_step_median_of_the_replicas_scored_like_one(default_params):
    p = params(default_params)
    x = trend_and_season()
    rng = np.random.default_rng(1)
    truths = sine.truths(p, x)
    preds = {k: torch.from_numpy(t.numpy()[None] + rng.normal(0, 1, (3, *t.shape))).float() for k, t in truths.items()}
    got = sine.ensemble_metrics(p, x, preds)
    median = np.median(preds["backtest"].double().numpy(), 0)
    mae = np.abs(median - truths["backtest"].numpy()).mean()
    assert got["backtest_mae"] == pytest.approx(mae, rel=1e-6)
    assert got["backtest_mase"] == pytest.approx(mae / np.abs(np.diff(x[:128])).mean(), rel=1e-6)
    assert evaluation.scores(preds["backtest"], truths["backtest"], 1.0)["mae"].min() > got["backtest_mae"]


@pytest.mark.parametrize(("series", "message"), [
    ({"transform": "sqrt"}, r"series\.transform: unknown transform 'sqrt'; choose from \['none', 'diff'"),
    ({"gaps": "drop"}, r"series\.gaps: unknown gaps 'drop'"),
    ({"recipe": "fancy"}, r"series\.recipe: unknown recipe 'fancy'"),
    ({"transform": "seasonal_diff", "season": None}, r"series\.transform seasonal_diff needs series\.season"),
], ids=["transform", "gaps", "recipe", "season"])
def test_a_bad_series_key_is_named(default_params, series, message):
    with pytest.raises(ParamsError, match=message):
        params(default_params, **series)


def test_a_bad_forecaster_key_is_named(default_params):
    raw = {**default_params, "series": {**default_params["series"], "forecaster": {
        **default_params["series"]["forecaster"], "validation_fraction": 0.0}}}
    with pytest.raises(ParamsError, match=r"series\.forecaster\.validation_fraction must be in \(0, 0\.5\), got 0\.0"):
        parse(raw)


def test_the_figures_caption_names_the_forecaster_recipe(default_params):
    from rnnlab import plotting

    caption = plotting.sine_caption(params(default_params, transform="diff"))
    assert "forecaster recipe: stride 1, batch 32, adam lr 3e-3, <= 6 epochs, patience 2, transform diff" in caption
    assert "150 epochs" not in caption
    assert "forecaster" not in plotting.sine_caption(parse(default_params))


@pytest.mark.parametrize(("key", "value"), [("horizon", 5), ("sampling", 0.5)])
def test_a_texts_recipe_key_the_forecaster_would_ignore_is_refused(default_params, key, value):
    """sine.train.horizon (the closed loop) and .sampling (scheduled sampling) shape the texts' training
    only: under the forecaster's recipe a run would be labelled with them and trained without."""
    train = {**default_params["sine"]["train"], key: value}
    raw = {**default_params, "sine": {**default_params["sine"], "train": train}}
    parse(raw)  # the texts' recipe reads it
    raw["series"] = {**default_params["series"], "recipe": "forecaster"}
    with pytest.raises(ParamsError, match=rf"sine\.train\.{key} {value} has no effect under series\.recipe: forecaster"):
        parse(raw)
