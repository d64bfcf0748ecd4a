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
from rnnlab.models import ModelConfig, build_stack, config_for, parameter_count
from rnnlab.params import Params
from rnnlab.progress import OnEpoch, Progress, chain
from rnnlab.training import FitResult, StatefulWindows, fit

log = logging.getLogger(__name__)


def model_config(p: Params, kind: str) -> ModelConfig:
    return config_for(kind, p.sine.model, "sine")


def train(p: Params, values: np.ndarray, kind: str, on_epoch: OnEpoch | None = None):
    """Train one architecture, one replica per seed -> (model, FitResult, seconds);
    ``on_epoch`` (e.g. a ``LiveHistory``'s) sees every epoch after the progress bar."""
    split = data.split_series(values, p.sine.data.train_fraction)
    windows = data.stateful_windows(split.train, p.seq_len)
    cfg = model_config(p, kind)
    model = build_stack(cfg, list(p.seeds))  # seeded per replica, after the data are cut (seed 003)
    log.info(
        "%s: %d training windows of %d steps, %d test points, %d parameters, seeds %s",
        kind, len(windows.inputs), p.seq_len, len(split.test), parameter_count(cfg), list(p.seeds),
    )
    progress = Progress(p.sine.train.epochs, f"sine {kind}")
    result = fit(model, StatefulWindows(windows, split.test), p.sine.train,
                 chain(progress.fit_callback("test_loss"), on_epoch))
    seconds = progress.close()
    last = {k: float(np.median(v[-1].numpy())) for k, v in result.history.items()}
    log.info("%s: final train loss %.4f, rollout test MSE %.4f (medians over %d seeds), %.1fs",
             kind, last["train_loss"], last["test_loss"], len(list(p.seeds)), seconds)
    return model, result, seconds


def history_frame(result: FitResult, seeds: list[int]) -> pd.DataFrame:
    """Per epoch: medians over seeds, the rollout's spread, every seed's train and test curves."""
    return result.seed_frame(seeds, per_seed=("train_loss", "test_loss"), spread=("test_loss",))


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


LAST_EPOCHS = 10  # the final rollout value jumps from epoch to epoch; also report a mean


def seed_metrics(history: pd.DataFrame, preds: dict[str, torch.Tensor], test: torch.Tensor,
                 replica_seeds: list[int]) -> dict[int, dict[str, float]]:
    """Each seed's metrics: what the text prints, the rollout's best and recent values, one-step."""
    rollout = evaluation.mse(preds["rollout"], test[1:]).double().numpy()
    one_step = evaluation.mse(preds["one_step"], test[1:]).double().numpy()
    result = {}
    for r, seed in enumerate(replica_seeds):
        curve = history[f"test_loss_seed{seed}"].to_numpy()
        result[seed] = {
            "train_loss": float(history[f"train_loss_seed{seed}"].iloc[-1]),
            "rollout_mse": float(rollout[r]),                        # the final epoch: the texts' number
            "rollout_mse_best": float(curve.min()),                   # the best epoch's
            "rollout_mse_last10": float(curve[-LAST_EPOCHS:].mean()),  # mean of the last 10 epochs
            "one_step_mse": float(one_step[r]),
        }
    return result


def summary(per_seed: dict[int, dict[str, float]]) -> dict[str, float]:
    """Median over seeds of every metric, and the min and max of the rollout MSE."""
    names = next(iter(per_seed.values()))
    result = {name: float(np.median([m[name] for m in per_seed.values()])) for name in names}
    rollouts = [m["rollout_mse"] for m in per_seed.values()]
    result["rollout_mse_min"], result["rollout_mse_max"] = float(min(rollouts)), float(max(rollouts))
    return result


def reference_metrics(p: Params, values: np.ndarray) -> dict[str, dict[str, float]]:
    test = values[int(p.sine.data.train_fraction * len(values)) + 1 :]
    return {
        name: {f"{kind}_mse": float(np.mean((preds[kind] - test) ** 2)) for kind in ("rollout", "one_step")}
        for name, preds in reference_predictions(p, values).items()
    }
