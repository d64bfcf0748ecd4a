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

    # the seed's test_gru(): one step at a time through the PyTorch module
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


def test_linear_ar_recovers_an_exact_autoregression():
    # x_t = 1.6 x_{t-1} - 0.9 x_{t-2}: a damped oscillation that two lags describe exactly
    series = [1.0, 0.5]
    for _ in range(200):
        series.append(1.6 * series[-1] - 0.9 * series[-2])
    series = np.array(series)
    coef = evaluation.linear_ar_fit(series[:150], lags=2)
    np.testing.assert_allclose(coef, [-0.9, 1.6], atol=1e-9)
    np.testing.assert_allclose(evaluation.linear_ar_rollout(coef, series[:150], 20), series[150:170], atol=1e-9)
    np.testing.assert_allclose(evaluation.linear_ar_one_step(coef, series, 150), series[150:], atol=1e-9)
