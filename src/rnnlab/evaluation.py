"""Evaluation: free-running rollouts, teacher-forced predictions, backtests and error measures.

Everything here runs under ``torch.inference_mode()`` and returns plain tensors or floats.
Models are the replica stacks of ``models.py``: predictions come back as ``(R, steps)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error per replica: pred (R, N), target (N,) -> (R,)."""
    return ((pred - target) ** 2).mean(-1)


@torch.inference_mode()
def rollout(model, first: Tensor, state, steps: int) -> Tensor:
    """Feed each prediction back as the next input, starting from ``first``.

    ::

        input : x0    y1    y2   ...  y_{steps-1}
        output: y1    y2    y3   ...  y_steps        (R, steps)

    ``state`` is the state to start from (the one left by training, text 003), or None.
    """
    model.eval()
    preds = model.rollout(first.reshape(1, 1, 1, 1), state, steps)  # (R, B=1, steps, O=1)
    return preds.view(model.replicas, steps)


@torch.inference_mode()
def one_step(model, inputs: Tensor, state) -> Tensor:
    """Teacher-forced predictions: every input is the true value, (T,) -> (R, T)."""
    model.eval()
    y, _ = model(inputs.view(1, 1, -1, 1), state)                     # (R, 1, T, 1)
    return y.view(model.replicas, -1)


@torch.inference_mode()
def warm(model, inputs: Tensor, state):
    """The state after reading ``inputs`` (N,) teacher-forced from ``state``; ``state`` itself when
    there is nothing to read (the MLP's is None either way)."""
    if len(inputs) == 0:
        return state
    model.eval()
    return model(inputs.view(1, 1, -1, 1), state)[1]


@torch.inference_mode()
def backtest(model, test: Tensor, state, offsets: tuple[int, ...], horizon: int) -> Tensor:
    """Rollouts of ``horizon`` steps from several points of the test range -> (R, origins, horizon).

    From offset k the model first reads test[:k] teacher-forced, starting from ``state`` (the
    state training left, as for the texts' rollout), then runs free from test[k]. Offset 0 is the
    texts' rollout, cut to the horizon.
    """
    model.eval()
    runs = []
    for k in offsets:
        warm = state if k == 0 else model(test[:k].view(1, 1, -1, 1), state)[1]
        runs.append(model.rollout(test[k].reshape(1, 1, 1, 1), warm, horizon).view(model.replicas, horizon))
    return torch.stack(runs, 1)


# ---------------------------------------------------------------------------------------
# Error measures: the texts' MSE and what a forecaster expects beside it.
# ---------------------------------------------------------------------------------------


def scores(pred: Tensor, truth: Tensor, naive_scale: float) -> dict[str, Tensor]:
    """A forecaster's error measures, reduced over ``truth``'s dimensions: pred (R, *truth.shape).

    MSE (the texts', computed as they do: in the predictions' dtype), MAE, RMSE, and MASE: the MAE
    over the in-sample one-step naive forecast's (``naive_scale``), so 1.0 means "no better than
    repeating the last value".
    """
    error = pred - truth
    dims = tuple(range(pred.dim() - truth.dim(), pred.dim()))
    mse_ = (error**2).mean(dims)
    mae = error.abs().mean(dims)
    return {"mse": mse_, "mae": mae, "rmse": mse_.sqrt(), "mase": mae / naive_scale}


def naive_scale(train: np.ndarray) -> float:
    """Mean absolute one-step change of the training part: the MASE denominator."""
    return float(np.abs(np.diff(train)).mean())
