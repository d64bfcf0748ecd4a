"""fit(): text 003's stateful window training, deterministic, one gradient per replica."""

import dataclasses
import io
import itertools

import numpy as np
import pytest
import torch

from rnnlab import data, params, sine
from rnnlab.checkpoints import load_checkpoint, save_checkpoint, stack_checkpoint
from rnnlab.errors import DataError
from rnnlab.io import save_torch
from rnnlab.models import ModelConfig, build_stack
from rnnlab.params import Training
from rnnlab.progress import Progress
from rnnlab.training import FitResult, StatefulWindows, fit


def training(optimizer, lr, epochs, lr_schedule="constant", grad_clip=None):
    return Training(optimizer, lr, lr_schedule, epochs, grad_clip)


def sine_problem(points=400, seq_len=10):
    values = np.sin(np.linspace(0, 8 * np.pi, points)) + np.random.RandomState(0).normal(0, 0.05, points)
    split = data.split_series(values, 0.8)
    return StatefulWindows(data.stateful_windows(split.train, seq_len), split.test)


class Recorder(torch.nn.Module):
    """Wraps a stack and records the state each training step receives and returns."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, []

    def train_step(self, batch, state=None):
        loss, pred, out = self.model.train_step(batch, state)
        self.calls.append((state, out))
        return loss, pred, out

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.model, name)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_state_left_by_one_window_starts_the_next_also_across_epochs(kind):
    regime = sine_problem()
    model = Recorder(build_stack(ModelConfig(kind, hidden_size=4), [0]))
    fit(model, regime, training("adam", 1e-3, 2))

    training_calls = model.calls  # rollouts go through model.rollout, not train_step
    assert len(training_calls) == 2 * len(regime.windows.inputs)
    assert training_calls[0][0] is None  # zeros at the very start, like text 003's hidden=None
    for (_, returned), (received, _) in itertools.pairwise(training_calls):
        pairs = zip(returned, received) if kind == "lstm" else [(returned, received)]
        for out, nxt in pairs:
            assert torch.equal(out, nxt)          # same values ...
            assert not nxt.requires_grad           # ... detached: no gradient into the past


def test_epoch_train_loss_is_the_mean_of_window_losses():
    regime = sine_problem()
    model = build_stack(ModelConfig("mlp"), [0])
    lr_zero = training("sgd", 1e-30, 1)  # weights effectively frozen
    result = fit(model, regime, lr_zero)
    with torch.no_grad():
        y, _ = model(regime.windows.inputs.unsqueeze(0))
        expected = ((y[0] - regime.windows.targets) ** 2).mean((1, 2)).double().mean()
    torch.testing.assert_close(result.history["train_loss"][0, 0], expected, atol=0, rtol=1e-6)


@pytest.mark.parametrize("kind", ["mlp", "rnn", "lstm", "gru"])
def test_training_lowers_the_loss(kind):
    regime = sine_problem()
    result = fit(build_stack(ModelConfig(kind, hidden_size=8), [0]), regime, training("adam", 1e-2, 15))
    first, last = result.history["train_loss"][[0, -1], 0].tolist()
    assert last < 0.5 * first, f"{kind}: train loss {first:.4f} -> {last:.4f}, expected to halve"


def test_each_replica_trains_as_if_alone():
    regime = sine_problem()
    cfg, config = ModelConfig("gru", hidden_size=8), training("adam", 5e-3, 3)
    together = build_stack(cfg, [1, 2])
    alone = build_stack(cfg, [2])
    both, single = fit(together, regime, config), fit(alone, regime, config)
    # Batched matmuls may round differently from single ones: equal to float32 precision.
    torch.testing.assert_close(together.stacked_state_dict()["rnn.weight_hh_l0"][1],
                               alone.stacked_state_dict()["rnn.weight_hh_l0"][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(both.history["test_loss"][:, 1], single.history["test_loss"][:, 0], atol=1e-5, rtol=1e-4)


def with_epochs(p, epochs):
    return dataclasses.replace(p, sine=dataclasses.replace(p.sine, train=dataclasses.replace(p.sine.train, epochs=epochs)))


def test_training_twice_gives_bitwise_identical_checkpoints(tmp_path, root):
    p = with_epochs(params.load(root / "params.yaml"), 3)
    values = data.noisy_sine(p.sine.data)
    for run in ("a", "b"):
        model, result, _ = sine.train(p, values, "lstm")
        save_checkpoint(tmp_path / f"{run}.pt", stack_checkpoint(model, list(p.seeds), result.state))
        save_torch(tmp_path / f"{run}.history", result.history)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    assert (tmp_path / "a.history").read_bytes() == (tmp_path / "b.history").read_bytes()


@pytest.mark.slow
def test_default_params_reproduce_text_003_gru_to_the_digit(root):
    # The text prints: GRU loss=0.0116, GRU test loss=0.0171 (150 epochs, seq_len 20).
    p = params.load(root / "params.yaml")
    values = data.parse_series(data.series_csv(data.noisy_sine(p.sine.data)))
    _, result, _ = sine.train(p, values, "gru")
    assert f"{result.history['train_loss'][-1, 0].item():.4f}" == "0.0116"
    assert f"{result.history['test_loss'][-1, 0].item():.4f}" == "0.0171"


def test_checkpoint_round_trip_keeps_weights_and_state(tmp_path):
    model = build_stack(ModelConfig("lstm", hidden_size=4), [0, 1])
    state = (torch.randn(2, 1, 1, 4), torch.randn(2, 1, 1, 4))
    save_checkpoint(tmp_path / "m.pt", stack_checkpoint(model, [0, 1], state))
    saved = load_checkpoint(tmp_path / "m.pt")
    loaded, seeds, loaded_state = saved.stack(), saved.seeds, saved.state
    assert seeds == [0, 1] and loaded.cfg == model.cfg
    assert torch.equal(loaded.flat, model.flat)
    assert all(torch.equal(a, b) for a, b in zip(state, loaded_state))


@pytest.mark.parametrize("cfg, seeds", [(ModelConfig("lstm", hidden_size=5), [0, 1]),
                                        (ModelConfig("lstm", hidden_size=4), [0, 2])])
def test_a_checkpoint_trained_under_other_params_is_refused_naming_the_file(tmp_path, cfg, seeds):
    model = build_stack(ModelConfig("lstm", hidden_size=4), [0, 1])
    save_checkpoint(tmp_path / "m.pt", stack_checkpoint(model, [0, 1], None))
    assert load_checkpoint(tmp_path / "m.pt", ModelConfig("lstm", hidden_size=4), [0, 1]).seeds == [0, 1]
    with pytest.raises(DataError, match=r"m\.pt: trained with other params than params\.yaml; run `dvc repro`"):
        load_checkpoint(tmp_path / "m.pt", cfg, seeds)


def test_history_frame_has_medians_spread_and_every_seeds_curve():
    history = {"train_loss": torch.tensor([[1.0, 3.0, 2.0], [0.5, 0.1, 0.3]], dtype=torch.float64),
               "test_loss": torch.tensor([[4.0, 6.0, 5.0], [2.0, 1.0, 3.0]], dtype=torch.float64)}
    frame = FitResult(history, None).seed_frame([7, 8, 9], per_seed=("test_loss",), spread=("test_loss",),
                                                index="iteration", every=100)
    assert list(frame.columns) == ["iteration", "train_loss", "test_loss", "test_loss_min", "test_loss_max",
                                   "test_loss_seed7", "test_loss_seed8", "test_loss_seed9"]
    assert frame.iteration.tolist() == [100, 200]
    assert frame.train_loss.tolist() == [2.0, 0.3] and frame.test_loss.tolist() == [5.0, 2.0]
    assert frame.test_loss_min.tolist() == [4.0, 1.0] and frame.test_loss_max.tolist() == [6.0, 3.0]
    assert frame.test_loss_seed8.tolist() == [6.0, 1.0]


def test_progress_in_a_log_prints_about_ten_lines():
    stream = io.StringIO()
    progress = Progress(150, "gru", stream=stream)
    for epoch in range(1, 151):
        progress.update(epoch, train=0.1, test=0.2)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1] == "gru: 150/150 train=0.1 test=0.2"
