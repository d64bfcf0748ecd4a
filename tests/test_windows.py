"""Experiments W (text 001, sliding windows) and R (text 002, random windows, tiny init)."""

import dataclasses

import numpy as np
import pytest
import torch

from rnnlab import data, params, random_windows, windows
from rnnlab.models import build_stack


@pytest.fixture
def p(root):
    return params.load(root / "params.yaml")


def test_windows_series_is_text_001s():
    np.random.seed(0)
    expected = (np.sin(np.linspace(0, 100, 500)) + np.random.normal(0, 0.1, 500)).astype(np.float32)
    cfg = params.WindowsData(points=500, x_max=100, noise=0.1, seed=0, train_fraction=0.8)
    assert np.array_equal(data.windows_series(cfg), expected)


def test_sliding_windows_match_a_hand_built_example():
    x, y = windows.sliding_windows(np.arange(8, dtype=np.float32), time_step=3)
    # text 001's range(len - time_step - 1): 8 - 3 - 1 = 4 windows (the last one that fits is left out)
    assert x.tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]]
    assert y.tolist() == [3, 4, 5, 6]


def test_default_windows_count():
    x, _ = windows.sliding_windows(np.zeros(400, dtype=np.float32), 10)
    assert x.shape == (389, 10)


def test_recurrent_models_read_a_window_as_a_sequence_the_mlp_as_features():
    w = torch.arange(6.0).view(2, 3)
    assert windows.as_input(w, recurrent=True).shape == (1, 2, 3, 1)
    assert windows.as_input(w, recurrent=False).shape == (1, 2, 1, 3)


def short(p, **train):
    return dataclasses.replace(p, seeds=(0, 1), windows=dataclasses.replace(
        p.windows, train=dataclasses.replace(p.windows.train, **train)))


@pytest.mark.parametrize("kind", ["mlp", "gru"])
def test_windows_train_and_evaluate_end_to_end(p, kind):
    p = short(p, epochs=20)
    values = data.windows_series(p.windows.data).astype(np.float64)
    model, regime, result, _ = windows.train(p, values, kind)
    losses = result.history["train_loss"][:, 0]
    assert losses[-1] < 0.5 * losses[0], f"{kind}: {losses[0]:.4f} -> {losses[-1]:.4f}"
    preds = windows.testing_predictions(model, regime)
    assert preds["one_step"].shape == (2, 89) and preds["free"].shape == (2, 100)
    summary = windows.summary(preds, regime)
    assert summary["one_step_mse_min"] <= summary["one_step_mse"] <= summary["one_step_mse_max"]


def test_window_free_run_slides_over_its_own_predictions():
    class LastValuePlusOne(torch.nn.Module):  # predicts window[-1] + 1
        replicas = 1

        def forward(self, x, state=None):
            return x + 1, None

    preds = windows.window_rollout(LastValuePlusOne(), torch.tensor([0.0, 5.0]), steps=3, recurrent=True)
    assert preds.tolist() == [[6.0, 7.0, 8.0]]


def test_random_windows_use_a_tiny_initialisation_of_the_recurrent_layer_only(p):
    model = build_stack(random_windows.model_config(p, "rnn"), [0, 1])
    weights = model.weights()
    recurrent = torch.cat([w.flatten() for n, w in weights.items() if n.startswith("rnn.")])
    assert 0.0005 < recurrent.std() < 0.0015 and recurrent.abs().max() < 0.006
    assert weights["head.weight"].abs().max() > 0.05  # the Linear keeps PyTorch's default init


def test_random_starts_come_from_the_seeded_generator_and_continue_across_epochs(p):
    cfg = dataclasses.replace(p.random_windows, iterations_per_epoch=4)
    regime = random_windows.RandomWindowRegime(cfg, iterations=8)
    assert regime.starts == np.random.RandomState(cfg.seed).randint(10, size=8).tolist()
    first = [x[0, 0, 0, 0].item() for x, _ in regime.batches()]
    second = [x[0, 0, 0, 0].item() for x, _ in regime.batches()]
    assert first == pytest.approx([np.sin(s) for s in regime.starts[:4]], abs=1e-6)
    assert second == pytest.approx([np.sin(s) for s in regime.starts[4:]], abs=1e-6)
    x, y = next(iter(random_windows.RandomWindowRegime(cfg, 1).batches()))
    assert x.shape == y.shape == (1, 1, 49, 1) and torch.equal(x[0, 0, 1:], y[0, 0, :-1])


def test_random_windows_train_end_to_end(p):
    p = dataclasses.replace(p, seeds=(0, 1), random_windows=dataclasses.replace(
        p.random_windows, iterations_per_epoch=50, train=dataclasses.replace(p.random_windows.train, epochs=4)))
    model, regime, result, _ = random_windows.train(p, "gru")
    assert result.history["train_loss"].shape == (4, 2) and regime.carries_state
    preds, truth = random_windows.held_out_free_runs(model, result.state, p.random_windows)
    assert preds.shape == (2, 10, 49) and truth.shape == (10, 49)
    losses = result.history["train_loss"][:, 0]
    assert losses[-1] < losses[0], f"{losses[0]:.4f} -> {losses[-1]:.4f}"
