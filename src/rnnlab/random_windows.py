"""Experiment R (text 002): random windows of a clean sine, tiny initialisation.

Each iteration draws ``start = randint(start_max)`` and trains on one 49-step window of
``sin(linspace(start, start + span, steps))`` (input data[:-1], target data[1:]), with the
hidden state carried from one iteration to the next (detached). The recurrent parameters start
at N(0, init_std). Every ``iterations_per_epoch`` iterations the model runs free over a fixed
set of windows, from their first value and the state training left.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from rnnlab.engine import Batch
from rnnlab.models import ModelConfig, build_stack, config_for, parameter_count
from rnnlab.params import Params, RandomWindows
from rnnlab.progress import OnEpoch, Progress, chain
from rnnlab.training import FitResult, fit

log = logging.getLogger(__name__)


def window(start: float, cfg: RandomWindows) -> Tensor:
    """sin(linspace(start, start + span, steps)) as float32, text 002's ``data``."""
    return torch.tensor(np.sin(np.linspace(start, start + cfg.span, cfg.steps))).float()


class RandomWindowRegime:
    """Text 002's loop: one random window per iteration, the state carried across them."""

    carries_state = True

    def __init__(self, cfg: RandomWindows, iterations: int):
        self.cfg = cfg
        # all starts drawn up front from the seeded generator; each epoch takes the next slice
        starts = np.random.RandomState(cfg.seed).randint(cfg.start_max, size=iterations)
        self.windows = {s: window(s, cfg) for s in range(cfg.start_max)}
        self.starts, self.position = starts.tolist(), 0
        tests = held_out_windows(cfg)                                             # (B, steps)
        self.test_first, self.test_truth = tests[:, 0], tests[:, 1:]

    def steps_per_epoch(self) -> int:
        return self.cfg.iterations_per_epoch

    def batches(self):
        chunk = self.starts[self.position : self.position + self.cfg.iterations_per_epoch]
        self.position += len(chunk)
        for start in chunk:
            data = self.windows[start].view(1, 1, -1, 1)                      # (1, B=1, steps, 1)
            yield data[:, :, :-1], data[:, :, 1:]

    def step(self, model, batch, state):
        x, y = batch
        loss, _, state = model.train_step(Batch(x, y), state)
        return {"loss": loss}, state

    def evaluate(self, model, state):
        preds = free_run(model, self.test_first, state, self.test_truth.shape[1])  # (R, B, steps-1)
        return {"test_rollout": ((preds - self.test_truth) ** 2).mean((1, 2))}


@torch.inference_mode()
def free_run(model, firsts: Tensor, state, steps: int) -> Tensor:
    """Text 002's test: from each window's first value and the trained state, feed back."""
    batch = len(firsts)
    if isinstance(state, tuple):
        state = tuple(s.expand(-1, -1, batch, -1) for s in state)
    elif state is not None:
        state = state.expand(-1, -1, batch, -1)                             # (R, L, B, H)
    preds = model.rollout(firsts.view(1, batch, 1, 1), state, steps)        # (R, B, steps, 1)
    return preds[..., 0]


def held_out_windows(cfg: RandomWindows) -> Tensor:
    return torch.stack([window(s, cfg) for s in cfg.test_starts])             # (B, steps)


def held_out_free_runs(model, state, cfg: RandomWindows) -> tuple[Tensor, Tensor]:
    """Free runs over the test windows: predictions (R, B, steps-1) and the truth (B, steps-1)."""
    tests = held_out_windows(cfg)
    return free_run(model, tests[:, 0], state, tests.shape[1] - 1), tests[:, 1:]


def summary(preds: Tensor, truth: Tensor, history: pd.DataFrame) -> dict[str, float]:
    """Median over seeds of the free-run MSE and its range. (The lowest test rollout over the
    epochs is not here: it is chosen on the test range, an oracle; the history csv has the curve.)"""
    per_seed = ((preds - truth) ** 2).mean((1, 2)).double().numpy()
    return {"rollout_mse": float(np.median(per_seed)), "rollout_mse_min": float(per_seed.min()),
            "rollout_mse_max": float(per_seed.max()), "train_loss": float(history.train_loss.iloc[-1])}


def free_run_frame(truth: Tensor, cfg: RandomWindows) -> pd.DataFrame:
    """Long format for the plot: one row per (test start, step) with its x and true value."""
    steps = truth.shape[1]
    xs = np.stack([np.linspace(s, s + cfg.span, cfg.steps)[1:] for s in cfg.test_starts])
    return pd.DataFrame({"start": np.repeat(cfg.test_starts, steps), "x": xs.reshape(-1),
                         "truth": truth.reshape(-1).double().numpy()})


def model_config(p: Params, kind: str) -> ModelConfig:
    return config_for(kind, p.random_windows.model, "random_windows", recurrent_only=True,
                      init_std=p.random_windows.init_std)


def train(p: Params, kind: str, on_epoch: OnEpoch | None = None):
    """-> (model, regime, FitResult, seconds); ``on_epoch`` (e.g. a ``LiveHistory``'s) sees
    every epoch of ``iterations_per_epoch`` iterations after the progress bar."""
    cfg, r = model_config(p, kind), p.random_windows
    regime = RandomWindowRegime(r, r.train.epochs * r.iterations_per_epoch)
    model = build_stack(cfg, list(p.seeds))
    log.info("%s: %d iterations of one %d-step window, %d parameters, init N(0, %g), seeds %s",
             kind, len(regime.starts), r.steps - 1, parameter_count(cfg), r.init_std, list(p.seeds))
    progress = Progress(r.train.epochs * r.iterations_per_epoch, f"random {kind}")
    result = fit(model, regime, r.train,
                 chain(progress.fit_callback("test_rollout", every=r.iterations_per_epoch), on_epoch))
    seconds = progress.close()
    last = {k: float(np.median(v[-1].numpy())) for k, v in result.history.items()}
    log.info("%s: final train loss %.4g, %d-step free-run MSE %.4g (medians over %d seeds), %.1fs",
             kind, last["train_loss"], r.steps - 1, last["test_rollout"], len(list(p.seeds)), seconds)
    return model, regime, result, seconds


def history_frame(result: FitResult, seeds: list[int], iterations_per_epoch: int) -> pd.DataFrame:
    """One row per ``iterations_per_epoch`` iterations: medians over seeds and each seed's rollout."""
    return result.seed_frame(seeds, per_seed=("test_rollout",), index="iteration", every=iterations_per_epoch)
