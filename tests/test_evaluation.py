"""Rollouts, teacher-forced predictions and the reference predictors."""

import numpy as np
import pytest
import torch

from rnnlab import evaluation
from rnnlab.models import MODELS, ModelConfig, build_reference, build_stack


@pytest.mark.parametrize("kind", list(MODELS))
def test_rollout_feeds_each_prediction_back_like_the_seed(kind):
    cfg = ModelConfig(kind, hidden_size=6)
    stack = build_stack(cfg, [0])
    state = stack.initial_state(1)
    preds = evaluation.rollout(stack, torch.tensor(0.3), state, steps=12)

    # text 003's test_gru(): one step at a time through the PyTorch module
    ref = build_reference(cfg, 0)
    x, h, expected = torch.tensor([[[0.3]]]), None, []
    with torch.no_grad():
        for _ in range(12):
            x, h = ref(x, h)
            expected.append(x.item())
    torch.testing.assert_close(preds[0], torch.tensor(expected), atol=1e-6, rtol=0)


def test_rollout_starts_from_the_given_state():
    stack = build_stack(ModelConfig("gru", hidden_size=4), [0])
    zero = evaluation.rollout(stack, torch.tensor(0.1), stack.initial_state(1), 3)
    other = evaluation.rollout(stack, torch.tensor(0.1), torch.ones(1, 1, 1, 4), 3)
    assert not torch.equal(zero, other)


def test_one_step_predicts_from_true_inputs():
    cfg = ModelConfig("lstm", hidden_size=4)
    stack = build_stack(cfg, [0, 1])
    inputs = torch.linspace(-1, 1, 9)
    preds = evaluation.one_step(stack, inputs, None)
    with torch.no_grad():
        expected, _ = build_reference(cfg, 1)(inputs.view(1, 9, 1))
    torch.testing.assert_close(preds[1], expected.view(9), atol=1e-6, rtol=0)


def test_mse_is_per_replica_and_matches_numpy():
    pred = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    target = torch.tensor([1.0, 1.0, 1.0])
    np.testing.assert_allclose(evaluation.mse(pred, target).numpy(), [np.mean([0, 1, 4]), 1.0])


def test_scores_are_the_forecasters_measures_per_replica():
    pred = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    truth = torch.tensor([1.0, 1.0, 1.0, 1.0])
    got = evaluation.scores(pred, truth, naive_scale=2.0)
    np.testing.assert_allclose(got["mse"].numpy(), [(0 + 1 + 4 + 9) / 4, 1.0])
    np.testing.assert_allclose(got["mae"].numpy(), [(0 + 1 + 2 + 3) / 4, 1.0])
    np.testing.assert_allclose(got["rmse"].numpy(), np.sqrt([3.5, 1.0]))
    np.testing.assert_allclose(got["mase"].numpy(), [1.5 / 2, 0.5])


def test_scores_of_a_backtest_average_over_origins_and_steps():
    pred = torch.zeros(3, 2, 5)                                   # 3 replicas, 2 origins, 5 steps
    truth = torch.arange(10.0).view(2, 5)
    assert evaluation.scores(pred, truth, 1.0)["mae"].tolist() == [4.5, 4.5, 4.5]


def test_the_mase_scale_is_the_mean_absolute_step_of_the_training_part():
    assert evaluation.naive_scale(np.array([0.0, 1.0, 3.0, 2.0])) == pytest.approx(4 / 3)


def test_backtest_from_offset_zero_is_the_rollout_cut_to_the_horizon():
    stack = build_stack(ModelConfig("gru", hidden_size=6), [0, 1])
    test = torch.linspace(-1, 1, 30)
    state = stack.initial_state(1)
    runs = evaluation.backtest(stack, test, state, offsets=(0, 7), horizon=5)
    assert runs.shape == (2, 2, 5)
    assert torch.equal(runs[:, 0], evaluation.rollout(stack, test[0], state, 5))


def test_backtest_reads_the_test_range_up_to_its_origin_before_running_free():
    stack = build_stack(ModelConfig("lstm", hidden_size=6), [0])
    test = torch.linspace(-1, 1, 30)
    state = stack.initial_state(1)
    _, warm = stack(test[:7].view(1, 1, -1, 1), state)
    expected = evaluation.rollout(stack, test[7], warm, 5)
    torch.testing.assert_close(evaluation.backtest(stack, test, state, (7,), 5)[:, 0], expected, rtol=0, atol=0)
