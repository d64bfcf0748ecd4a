"""Experiment S (seeds 003 and 000): next-step prediction of a noisy sine.

The stages call these functions; they hold the experiment's recipe, in the seed's order:
read the csv, split 80/20, cut non-overlapping windows, *then* seed and build the models,
train statefully, judge each epoch by a free-running rollout over the test range.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from rnnlab import data, evaluation
from rnnlab.errors import ParamsError
from rnnlab.models import ModelConfig, build_stack, parameter_count
from rnnlab.params import Params
from rnnlab.progress import Progress
from rnnlab.training import FitResult, StatefulWindows, fit

log = logging.getLogger(__name__)


def model_config(p: Params, kind: str) -> ModelConfig:
    arch = p.sine.model
    try:
        return ModelConfig(kind, hidden_size=arch.hidden_size, num_layers=arch.num_layers, mlp_widths=arch.mlp_widths)
    except ParamsError as exc:
        raise ParamsError(f"sine.models: {exc}") from None


def seeds(p: Params) -> list[int]:
    return [p.seed]


def train(p: Params, values: np.ndarray, kind: str):
    """Train one architecture, one replica per seed -> (model, FitResult, seconds)."""
    split = data.split_series(values, p.sine.data.train_fraction)
    windows = data.stateful_windows(split.train, p.seq_len)
    cfg = model_config(p, kind)
    model = build_stack(cfg, seeds(p))  # seeded per replica, after the data are cut (seed 003)
    log.info(
        "%s: %d training windows of %d steps, %d test points, %d parameters, seeds %s",
        kind, len(windows.inputs), p.seq_len, len(split.test), parameter_count(cfg), seeds(p),
    )
    progress = Progress(p.sine.train.epochs, kind)

    def on_epoch(epoch: int, row: dict) -> None:
        progress.update(epoch, train=row["train_loss"].median().item(), test=row["test_loss"].median().item())

    result = fit(model, StatefulWindows(windows, split.test), p.sine.train, on_epoch)
    seconds = progress.close()
    last = {k: v[-1].median().item() for k, v in result.history.items()}
    log.info("%s: final train loss %.4f, rollout test MSE %.4f, %.1fs", kind, last["train_loss"], last["test_loss"], seconds)
    return model, result, seconds


def history_frame(result: FitResult, replica_seeds: list[int]) -> pd.DataFrame:
    """Long format, one row per (epoch, seed): ``epoch, seed, train_loss, test_loss``."""
    epochs, replicas = result.history["train_loss"].shape
    frame = pd.DataFrame({
        "epoch": np.repeat(np.arange(1, epochs + 1), replicas),
        "seed": np.tile(replica_seeds, epochs),
    })
    for column, values in result.history.items():
        frame[column] = values.reshape(-1).numpy()
    return frame


def reference_predictions(p: Params, values: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Rollout and one-step predictions of test[1:] from the data alone (no training)."""
    split = data.split_series(values, p.sine.data.train_fraction)
    boundary, steps = split.boundary, len(split.test) - 1
    train = values[:boundary]
    clean = np.sin(data.sine_grid(p.sine.data))[boundary + 1 :]
    coef = evaluation.linear_ar_fit(train, p.seq_len)
    zero = np.zeros(steps)
    return {
        # the noiseless sine: its error is the noise itself, the floor no model can beat
        "clean_sine": {"rollout": clean, "one_step": clean},
        "zero": {"rollout": zero, "one_step": zero},
        "linear_ar": {
            "rollout": evaluation.linear_ar_rollout(coef, values[: boundary + 1], steps),
            "one_step": evaluation.linear_ar_one_step(coef, values, boundary + 1),
        },
    }


def evaluate(p: Params, values: np.ndarray, model, state) -> dict[str, torch.Tensor]:
    """Rollout (the seed's headline metric) and teacher-forced predictions of test[1:]."""
    split = data.split_series(values, p.sine.data.train_fraction)
    steps = len(split.test) - 1
    return {
        "rollout": evaluation.rollout(model, split.test[0], state, steps),  # (R, 199)
        "one_step": evaluation.one_step(model, split.test[:-1], state),     # (R, 199)
    }


def replica_metrics(history: pd.DataFrame, preds: dict[str, torch.Tensor], test: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-replica metrics, each (R,): what the seed prints, plus the teacher-forced error."""
    last_epoch = history[history.epoch == history.epoch.max()]
    return {
        "train_loss": last_epoch.train_loss.to_numpy(),
        "rollout_mse": evaluation.mse(preds["rollout"], test[1:]).double().numpy(),
        "one_step_mse": evaluation.mse(preds["one_step"], test[1:]).double().numpy(),
    }


def reference_metrics(p: Params, values: np.ndarray) -> dict[str, dict[str, float]]:
    test = values[int(p.sine.data.train_fraction * len(values)) + 1 :]
    return {
        name: {f"{kind}_mse": float(np.mean((preds[kind] - test) ** 2)) for kind in ("rollout", "one_step")}
        for name, preds in reference_predictions(p, values).items()
    }
