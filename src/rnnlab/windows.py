"""Experiment W (text 001): sliding windows, stacked layers, many-to-one.

``data = sin(linspace(0, 100, 500)) + N(0, 0.1)``; the first 80% train. Every window of
``time_step`` values predicts the value after it; training is full-batch Adam. The recurrent
models read a window as a sequence and answer from their last step; the MLP reads it as
``time_step`` features at once, so it sees the same context in a single step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from rnnlab import evaluation
from rnnlab.engine import Batch
from rnnlab.errors import ParamsError
from rnnlab.models import MODELS, ModelConfig, build_stack, config_for, parameter_count
from rnnlab.params import Params
from rnnlab.progress import OnEpoch, Progress, chain
from rnnlab.training import FitResult, fit

log = logging.getLogger(__name__)


def sliding_windows(values: np.ndarray, time_step: int) -> tuple[Tensor, Tensor]:
    """Text 001's ``create_dataset``: X[i] = values[i : i+time_step], Y[i] = values[i+time_step].

    ::

        values : v0 v1 ... v9 v10 v11 ...      time_step 10, windows overlap by 9
        X[0]   : v0 .. v9      -> Y[0] = v10
        X[1]   :    v1 .. v10  -> Y[1] = v11

    Like the seed, ``range(len - time_step - 1)`` leaves out the last window that would fit.
    """
    count = len(values) - time_step - 1
    if count <= 0:
        raise ParamsError(f"windows.time_step {time_step} leaves no window in {len(values)} points")
    x = np.stack([values[i : i + time_step] for i in range(count)])
    y = values[time_step : time_step + count]
    return torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(y))   # (N, time_step), (N,)


def as_input(windows: Tensor, recurrent: bool) -> Tensor:
    """(N, time_step) -> (1, N, time_step, 1) as a sequence, or (1, N, 1, time_step) as features."""
    return windows.view(1, *windows.shape, 1) if recurrent else windows.view(1, windows.shape[0], 1, -1)


@dataclass(frozen=True)
class FullBatchWindows:
    """Text 001: every training window in one batch, every epoch; no state carried."""

    x: Tensor        # (1, N, T, I) in the model's layout
    y: Tensor        # (N,)
    test_x: Tensor   # (1, N_test, T, I)
    test_y: Tensor   # (N_test,)
    last_window: Tensor  # the training series' last time_step values: the free run starts here
    test: Tensor         # the test series the free run predicts
    recurrent: bool
    boundary: int        # index of the first test value
    carries_state: bool = False

    def steps_per_epoch(self) -> int:
        return 1

    def batches(self):
        return [(self.x, self.y)]

    def step(self, model, batch, state):
        x, y = batch                                          # (1, N, T, I), (N,)
        loss, _, _ = model.train_step(Batch(x, y, last_only=True))
        return {"loss": loss}, None

    def evaluate(self, model, state):
        # one step ahead only: the free run costs a hundred forward passes, evaluate_windows does it once
        with torch.inference_mode():
            one_step = model(self.test_x)[0][:, :, -1, 0]      # (R, N_test)
        return {"test_loss": evaluation.mse(one_step, self.test_y)}


@torch.inference_mode()
def testing_predictions(model, windows: FullBatchWindows) -> dict[str, Tensor]:
    """One step ahead on the test windows (the text's test), (R, N_test), and the free run
    over the whole test range, (R, len(test))."""
    one_step = model(windows.test_x)[0][:, :, -1, 0]
    return {"one_step": one_step, "free": window_rollout(model, windows.last_window, len(windows.test), windows.recurrent)}


def summary(preds: dict[str, Tensor], windows: FullBatchWindows) -> dict[str, float]:
    """Medians over seeds, and the range of the one-step error."""
    one_step = evaluation.mse(preds["one_step"], windows.test_y).double().numpy()
    free = evaluation.mse(preds["free"], windows.test).double().numpy()
    return {"one_step_mse": float(np.median(one_step)), "one_step_mse_min": float(one_step.min()),
            "one_step_mse_max": float(one_step.max()), "rollout_mse": float(np.median(free)),
            "rollout_mse_min": float(free.min()), "rollout_mse_max": float(free.max())}


@torch.inference_mode()
def window_rollout(model, last_window: Tensor, steps: int, recurrent: bool) -> Tensor:
    """Free run of a window model: predict, slide the window over the prediction, repeat.

    ::

        window : v[-10] .. v[-1]          -> p1
                 v[-9]  .. v[-1] p1       -> p2          -> (R, steps)
    """
    window = last_window.reshape(1, -1).expand(model.replicas, -1)     # (R, time_step)
    preds = []
    for _ in range(steps):
        y = model(as_input(window, recurrent).squeeze(0).unsqueeze(1))[0][:, 0, -1, 0]  # (R,)
        preds.append(y)
        window = torch.cat([window[:, 1:], y.unsqueeze(1)], 1)
    return torch.stack(preds, 1)


def model_config(p: Params, kind: str) -> ModelConfig:
    recurrent = kind in MODELS and MODELS[kind].recurrent
    return config_for(kind, p.windows.model, "windows", input_size=1 if recurrent else p.windows.time_step)


def regime(p: Params, values: np.ndarray, kind: str) -> FullBatchWindows:
    """Text 001's data layout for one architecture; ``values`` as read back from the csv."""
    values = torch.from_numpy(values.astype(np.float32))
    boundary = int(len(values) * p.windows.data.train_fraction)
    train, test = values[:boundary], values[boundary:]
    recurrent = MODELS[kind].recurrent if kind in MODELS else True
    x, y = sliding_windows(train.numpy(), p.windows.time_step)
    test_x, test_y = sliding_windows(test.numpy(), p.windows.time_step)
    return FullBatchWindows(as_input(x, recurrent), y, as_input(test_x, recurrent), test_y,
                            train[-p.windows.time_step :], test, recurrent, boundary)


def train(p: Params, values: np.ndarray, kind: str, on_epoch: OnEpoch | None = None):
    """Train one architecture, one replica per seed -> (model, regime, FitResult, seconds);
    ``on_epoch`` (e.g. a ``LiveHistory``'s) sees every epoch after the progress bar."""
    cfg = model_config(p, kind)
    windows = regime(p, values, kind)
    model = build_stack(cfg, list(p.seeds))  # text 001 sets no torch seed; we do
    log.info("%s: %d training windows of %d, %d parameters, seeds %s",
             kind, windows.x.shape[1], p.windows.time_step, parameter_count(cfg), list(p.seeds))
    progress = Progress(p.windows.train.epochs, f"windows {kind}")
    result = fit(model, windows, p.windows.train, chain(progress.fit_callback("test_loss"), on_epoch))
    seconds = progress.close()
    last = {k: float(np.median(v[-1].numpy())) for k, v in result.history.items()}
    log.info("%s: final train loss %.4g, one-step test MSE %.4g (medians over %d seeds), %.1fs",
             kind, last["train_loss"], last["test_loss"], len(list(p.seeds)), seconds)
    return model, windows, result, seconds


def history_frame(result: FitResult, seeds: list[int]) -> pd.DataFrame:
    """One row per epoch: medians over seeds, and every seed's one-step test loss."""
    return result.seed_frame(seeds, per_seed=("test_loss",))
