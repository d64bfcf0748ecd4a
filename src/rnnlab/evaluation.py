"""Evaluation: free-running rollouts, teacher-forced predictions, and reference predictors.

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

    ``state`` is the state to start from (the one left by training, seed 003), or None.
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


# ---------------------------------------------------------------------------------------
# Reference predictors: what the numbers mean. They see the data only, no training.
# ---------------------------------------------------------------------------------------


def linear_ar_fit(train: np.ndarray, lags: int) -> np.ndarray:
    """Least-squares coefficients of x_t ~ sum_k a_k x_{t-lags+k}, no intercept."""
    windows = np.lib.stride_tricks.sliding_window_view(train, lags + 1)  # (N-lags, lags+1)
    coef, *_ = np.linalg.lstsq(windows[:, :-1], windows[:, -1], rcond=None)
    return coef


def linear_ar_rollout(coef: np.ndarray, history: np.ndarray, steps: int) -> np.ndarray:
    """Free-running forecast from the last ``len(coef)`` values of ``history``."""
    lags = len(coef)
    buffer = list(history[-lags:])
    for _ in range(steps):
        buffer.append(float(np.dot(buffer[-lags:], coef)))
    return np.array(buffer[lags:])


def linear_ar_one_step(coef: np.ndarray, series: np.ndarray, start: int) -> np.ndarray:
    """Teacher-forced forecasts of ``series[start:]`` from the true preceding values."""
    lags = len(coef)
    windows = np.lib.stride_tricks.sliding_window_view(series[start - lags : -1], lags)
    return windows @ coef
