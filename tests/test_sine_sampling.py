"""Scheduled sampling in experiment S (``sine.train.sampling``): a window's inputs after the first are,
by coin, the model's own previous predictions; the chance ramps from 0 to ``sampling``; 0 is the texts'."""

import dataclasses

import numpy as np
import pytest
import torch
import yaml

from rnnlab import data, params, sine
from rnnlab.checkpoints import save_checkpoint, stack_checkpoint
from rnnlab.engine import Batch
from rnnlab.errors import ParamsError
from rnnlab.io import save_torch
from rnnlab.models import ModelConfig, build_stack
from rnnlab.params import Training
from rnnlab.training import StatefulWindows, fit

from conftest import ROOT, tiny


def regime(sampling: float, seeds=(0, 1), epochs: int = 3) -> StatefulWindows:
    values = np.sin(np.linspace(0, 8 * np.pi, 400)) + np.random.RandomState(0).normal(0, 0.05, 400)
    split = data.split_series(values, 0.8)
    return StatefulWindows(data.stateful_windows(split.train, 10), split.test, sampling=sampling, epochs=epochs,
                           seeds=tuple(seeds))


def test_the_chance_ramps_linearly_from_zero_to_sampling_at_the_last_epoch():
    ramp = regime(0.5, epochs=5)
    assert [ramp.chance(e) for e in range(1, 6)] == [0.0, 0.125, 0.25, 0.375, 0.5]
    assert regime(0.5, epochs=1).chance(1) == 0.5


def test_each_replicas_coins_come_from_its_own_seed():
    together, alone = regime(1.0, seeds=(0, 1, 2), epochs=1), regime(1.0, seeds=(1,), epochs=1)
    for r in (together, alone):
        list(r.batches())
    coins = [together.feed(10) for _ in range(3)]
    single = [alone.feed(10) for _ in range(3)]
    assert all(np.array_equal(c[1], s[0]) for c, s in zip(coins, single))
    assert all(not c[:, :, 0].any() for c in coins)          # step 0 always reads the true value
    expected = np.random.default_rng(1).random(9) < 1.0
    assert np.array_equal(single[0][0, 0, 1:], expected)


def test_teacher_forcing_draws_no_coin_and_logs_nothing_new():
    teacher = regime(0.0, seeds=())
    result = fit(build_stack(ModelConfig("gru", hidden_size=4), [0, 1]), teacher, Training("adam", 1e-2, "constant", 2, None))
    assert teacher._coins == {}
    assert list(result.history) == ["train_loss", "train_grad_norm", "test_loss"]


def test_sampling_needs_the_replicas_seeds():
    with pytest.raises(ValueError, match="seeds"):
        regime(0.5, seeds=())


def test_a_step_trains_on_the_realized_inputs_from_the_windows_initial_state():
    cfg = ModelConfig("lstm", hidden_size=4)
    a, b = regime(1.0, epochs=1), regime(1.0, epochs=1)
    model_a, model_b = build_stack(cfg, [0, 1]), build_stack(cfg, [0, 1])
    x, y = next(iter(a.batches()))
    list(b.batches())
    state = model_a.train_step(Batch(x, y), None)[2]                          # some carried state
    model_b.train_step(Batch(x, y), None)
    metrics, final = a.step(model_a, (x, y), state)
    feed = b.feed(x.shape[2])
    inputs, _ = model_b.engine().sampled_inputs(x, feed, state)
    loss, _, expected_final = model_b.train_step(Batch(inputs, y), state)
    assert torch.equal(metrics["loss"], loss) and torch.equal(model_a.flat.grad, model_b.flat.grad)
    assert all(torch.equal(f, e) for f, e in zip(final, expected_final))
    assert torch.equal(metrics["fed_back"], torch.from_numpy(feed.mean((1, 2))).float())


def test_the_fed_back_fraction_follows_the_ramp():
    result = fit(build_stack(ModelConfig("gru", hidden_size=4), [0, 1]), regime(0.6, epochs=4),
                 Training("adam", 1e-2, "constant", 4, None))
    fed_back = result.history["train_fed_back"]                                 # (epochs, R)
    assert fed_back[0].eq(0).all()                                              # p = 0 at the first epoch
    # the last epoch: 29 windows x 9 coins at p = 0.6, of 10 inputs each
    assert ((fed_back[-1] > 0.45) & (fed_back[-1] < 0.63)).all(), fed_back[-1]


def small_params(sampling: float, epochs: int = 3):
    p = params.parse(tiny(yaml.safe_load((ROOT / "params.yaml").read_text()), epochs=epochs))
    return dataclasses.replace(p, sine=dataclasses.replace(p.sine, train=dataclasses.replace(p.sine.train, sampling=sampling)))


@pytest.mark.parametrize("kind", ["lstm", "mlp"])
def test_training_with_sampling_twice_is_bitwise_identical(tmp_path, kind):
    p = small_params(0.5)
    values = data.noisy_sine(p.sine.data)
    for run in ("a", "b"):
        model, result, _ = sine.train(p, values, kind)
        save_checkpoint(tmp_path / f"{run}.pt", stack_checkpoint(model, list(p.seeds), result.state))
        save_torch(tmp_path / f"{run}.history", result.history)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    assert (tmp_path / "a.history").read_bytes() == (tmp_path / "b.history").read_bytes()


def test_sampling_changes_training_from_the_second_epoch_only():
    values = data.noisy_sine(small_params(0.0).sine.data)
    _, forced, _ = sine.train(small_params(0.0), values, "gru")
    _, sampled, _ = sine.train(small_params(1.0), values, "gru")
    assert torch.equal(forced.history["train_loss"][0], sampled.history["train_loss"][0])
    assert not torch.equal(forced.history["train_loss"][1], sampled.history["train_loss"][1])
    frame = sine.history_frame(sampled, list(small_params(1.0).seeds))
    assert "train_fed_back" in frame.columns


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_params_sampling_out_of_range(value):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["sine"]["train"]["sampling"] = value
    with pytest.raises(ParamsError) as info:
        params.parse(raw)
    assert str(info.value) == f"sine.train.sampling must be in [0, 1], got {value}"


def test_the_default_is_teacher_forcing():
    assert params.load(ROOT / "params.yaml").sine.train.sampling == 0.0
