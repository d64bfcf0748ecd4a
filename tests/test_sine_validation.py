"""Experiment S's validation slice (``sine.data.validation_fraction``): the training part's last
points held out, rolled out every epoch, the test range read on from after them; 0 is the texts'."""

import dataclasses
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from rnnlab import data, evaluation, params, sine
from rnnlab.errors import DataError, ParamsError
from rnnlab.models import ModelConfig, build_stack
from rnnlab.params import Training
from rnnlab.training import StatefulWindows, fit

from conftest import ROOT, run, tiny


def default_params(**data_changes):
    p = params.parse(tiny(yaml.safe_load((ROOT / "params.yaml").read_text()), epochs=2))
    return dataclasses.replace(p, sine=dataclasses.replace(p.sine, data=dataclasses.replace(p.sine.data, **data_changes)))


def with_train(p, **changes):
    return dataclasses.replace(p, sine=dataclasses.replace(p.sine, train=dataclasses.replace(p.sine.train, **changes)))


# --- the slice --------------------------------------------------------------------------------


def test_a_tenth_of_1000_points_holds_out_points_700_to_799():
    split = data.split_series(np.arange(1000.0), 0.8)
    part = data.hold_out(split.train, 1000, 0.1, 20)
    assert part.fit.tolist() == list(range(700)) and part.validation.tolist() == list(range(700, 800))
    windows = data.stateful_windows(part.fit, 20)
    assert len(windows.inputs) == 700 // 21 and windows.targets[-1, -1, 0] == 692


def test_fraction_zero_holds_out_nothing():
    train = torch.arange(800.0)
    part = data.hold_out(train, 1000, 0.0, 20)
    assert torch.equal(part.fit, train) and len(part.validation) == 0


def test_a_slice_of_one_point_is_refused_naming_the_key():
    with pytest.raises(ParamsError, match=r"^sine.data.validation_fraction 0.001 holds out 1 point\(s\) of the "
                                          r"training part's 800: a validation rollout needs at least 2"):
        data.hold_out(torch.arange(800.0), 1000, 0.001, 20)


def test_a_fraction_that_rounds_to_no_point_is_refused_too():
    with pytest.raises(ParamsError, match=r"sine.data.validation_fraction 0.0001 holds out 0 point"):
        data.hold_out(torch.arange(800.0), 1000, 0.0001, 20)


def test_a_slice_that_leaves_no_training_window_is_refused_naming_the_key():
    with pytest.raises(ParamsError, match=r"^sine.data.validation_fraction 0.7 holds out 70 of the training part's "
                                          r"80 points and leaves 10, too few for one training window of seq_len \+ 1 = 21"):
        data.hold_out(torch.arange(80.0), 100, 0.7, 20)


def test_prepare_series_refuses_a_slice_too_large_for_the_series_before_writing(tmp_path):
    params_ = yaml.safe_load((ROOT / "params.yaml").read_text())
    params_["sine"]["data"]["validation_fraction"] = 0.7
    params_["series"]["season"] = None
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_))
    (tmp_path / "my.csv").write_text("".join(f"{np.sin(k / 10):.6f}\n" for k in range(100)))
    proc = run([sys.executable, str(ROOT / "stages" / "prepare_series.py"), "my.csv", "--series", "out/series.csv",
                "--scaled", "out/scaled.csv", "--scaling", "out/scaling.json"], tmp_path, check=False)
    assert proc.returncode == 1
    assert ("error: my.csv: sine.data.validation_fraction 0.7 holds out 70 of the training part's 80 points and "
            "leaves 10, too few for one training window of seq_len + 1 = 21") in proc.stderr
    assert not (tmp_path / "out").exists()


def test_check_length_accepts_the_default_and_a_tenth():
    values = np.arange(1000.0)
    data.check_length(values, default_params(), "s.csv")
    data.check_length(values, default_params(validation_fraction=0.1), "s.csv")
    with pytest.raises(DataError, match=r"s\.csv: sine\.data\.validation_fraction 0\.001 holds out 1 point"):
        data.check_length(values, default_params(validation_fraction=0.001), "s.csv")


@pytest.mark.parametrize(("value", "message"), [
    (-0.1, "sine.data.validation_fraction must be >= 0 and below sine.data.train_fraction (0.8), got -0.1"),
    (0.8, "sine.data.validation_fraction must be >= 0 and below sine.data.train_fraction (0.8), got 0.8"),
])
def test_params_validation_fraction_out_of_range(value, message):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["sine"]["data"]["validation_fraction"] = value
    with pytest.raises(ParamsError) as info:
        params.parse(raw)
    assert str(info.value) == message


def test_the_default_is_no_slice():
    assert params.load(ROOT / "params.yaml").sine.data.validation_fraction == 0.0


# --- training and the metrics -----------------------------------------------------------------


def sine_regime(validation_fraction: float, seq_len: int = 10) -> StatefulWindows:
    values = np.sin(np.linspace(0, 8 * np.pi, 400)) + np.random.RandomState(0).normal(0, 0.05, 400)
    split = data.split_series(values, 0.8)
    part = data.hold_out(split.train, len(values), validation_fraction, seq_len)
    return StatefulWindows(data.stateful_windows(part.fit, seq_len), split.test, validation=part.validation)


def test_each_epoch_rolls_out_over_the_slice_and_reads_it_before_the_test_range():
    regime = sine_regime(0.1)
    model = build_stack(ModelConfig("gru", hidden_size=4), [0, 1])
    result = fit(model, regime, Training("adam", 1e-2, "constant", 2, None))
    assert list(result.history) == ["train_loss", "train_grad_norm", "test_loss", "val_loss"]
    val = regime.validation                                          # points 280..319 of 400
    preds = evaluation.rollout(model, val[0], result.state, len(val) - 1)
    assert torch.equal(result.history["val_loss"][-1], evaluation.mse(preds, val[1:]).double())
    warmed = evaluation.warm(model, val, result.state)
    preds = evaluation.rollout(model, regime.test[0], warmed, len(regime.test) - 1)
    assert torch.equal(result.history["test_loss"][-1], evaluation.mse(preds, regime.test[1:]).double())
    # reading the slice moved the state: the test rollout is not the one from the last window's state
    unwarmed = evaluation.mse(evaluation.rollout(model, regime.test[0], result.state, len(regime.test) - 1), regime.test[1:])
    assert not torch.equal(result.history["test_loss"][-1], unwarmed.double())


def test_without_a_slice_the_history_has_no_validation_column():
    model = build_stack(ModelConfig("gru", hidden_size=4), [0])
    result = fit(model, sine_regime(0.0), Training("adam", 1e-2, "constant", 1, None))
    assert list(result.history) == ["train_loss", "train_grad_norm", "test_loss"]


def test_warming_with_nothing_keeps_the_state():
    state = torch.ones(1, 1, 1, 4)
    assert evaluation.warm(build_stack(ModelConfig("gru", hidden_size=4), [0]), torch.zeros(0), state) is state


@pytest.mark.parametrize("kind", ["gru", "mlp"])
def test_the_trained_state_is_the_one_the_test_range_starts_from(kind):
    """``sine.train`` hands back (and the stage stores) the state after the slice, so ``sine.evaluate``
    on it answers the rollout the last epoch logged."""
    p = default_params(validation_fraction=0.1)
    values = data.noisy_sine(p.sine.data)
    model, result, _ = sine.train(p, values, kind)
    preds = sine.evaluate(p, values, data.Scaler(), model, result.state)
    truth = sine.truths(p, values)["rollout"]
    assert torch.equal(evaluation.mse(preds["rollout"], truth).double(), result.history["test_loss"][-1])


def test_the_step_budget_counts_the_windows_actually_trained_on():
    p = with_train(default_params(validation_fraction=0.1), steps=99)
    _, result, _ = sine.train(p, data.noisy_sine(p.sine.data), "mlp")
    assert len(result.history["train_loss"]) == round(99 / (700 // 21))  # 33 windows an epoch, not 38


def test_validation_mse_is_kept_per_seed_and_as_the_median_and_one_number_per_model_is_declared():
    p = default_params(validation_fraction=0.1)
    values = data.noisy_sine(p.sine.data)
    seeds = list(p.seeds)
    model, result, _ = sine.train(p, values, "gru")
    history = pd.read_csv(pd.io.common.StringIO(sine.history_frame(result, seeds).to_csv(index=False)))
    assert [c for c in history.columns if c.startswith("val_loss")] == ["val_loss", "val_loss_seed0", "val_loss_seed1"]
    preds = sine.evaluate(p, values, data.Scaler(), model, result.state)
    per_seed = sine.seed_metrics(p, values, history, preds, seeds)
    for r, seed in enumerate(seeds):
        assert per_seed[seed]["validation_mse"] == result.history["val_loss"][-1, r].item()
    naive = {"rollout_mse": 1.0, "backtest_mse": 1.0}
    metrics, detail = sine.metrics_files({"gru": per_seed}, {"gru": 929}, {"naive": naive}, headline="backtest_mse")
    # one declared number per model, the median seed's; the validation score and the references are detail
    assert metrics == {"S": {"gru": {"backtest_mse": np.median([per_seed[s]["backtest_mse"] for s in seeds])}}}
    assert detail["references"] == {"naive": naive}
    gru = detail["models"]["gru"]
    assert gru["median"]["validation_mse"] == np.median([per_seed[s]["validation_mse"] for s in seeds])
    assert gru["seeds"]["1"]["validation_mse"] == per_seed[1]["validation_mse"]

    p0 = default_params()
    model, result, _ = sine.train(p0, values, "gru")
    history = sine.history_frame(result, seeds)
    per_seed = sine.seed_metrics(p0, values, history, sine.evaluate(p0, values, data.Scaler(), model, result.state), seeds)
    assert "validation_mse" not in per_seed[0]
    metrics, _ = sine.metrics_files({"gru": per_seed}, {"gru": 929}, {})
    assert list(metrics["S"]["gru"]) == ["rollout_mse"]  # the texts' free-run test


def test_the_validation_curve_is_written_in_the_series_units():
    p = default_params(validation_fraction=0.1)
    _, result, _ = sine.train(p, data.noisy_sine(p.sine.data), "gru")
    plain, scaled = sine.history_frame(result, list(p.seeds)), sine.history_frame(result, list(p.seeds), unit=4.0)
    for column in ("val_loss", "val_loss_seed0", "val_loss_seed1"):
        np.testing.assert_array_equal(scaled[column], plain[column] * 4.0)


@pytest.mark.parametrize("horizon", [None, 3])
def test_sine_train_horizon_switches_training_to_the_closed_loop(horizon, monkeypatch):
    """The wiring: sine.train.horizon k trains each window's last k predictions free-running
    (closed_loop.ClosedLoopWindows, with that k); unset, the texts' teacher forcing."""
    built = []

    class Recorded(sine.closed_loop.ClosedLoopWindows):
        def __init__(self, *args, **kwargs):
            built.append(kwargs["horizon"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(sine.closed_loop, "ClosedLoopWindows", Recorded)
    p = with_train(default_params(), horizon=horizon)
    sine.train(p, data.noisy_sine(p.sine.data), "gru")
    assert built == ([] if horizon is None else [3])
