"""Training: one loop for every regime of the seed texts, no file I/O, no plotting.

A *regime* says what one epoch feeds the model and how an epoch is judged; ``fit`` owns
everything else (optimizer, state carrying, loss bookkeeping, progress). Models are replica
stacks (``models.py``), so every loss here is a vector with one entry per replica.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import reduce
from typing import Protocol

import torch
from torch import Tensor

from rnnlab.data import Windows
from rnnlab.evaluation import mse, rollout
from rnnlab.models import detach_state
from rnnlab.params import Training

OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


class Regime(Protocol):
    carries_state: bool  # does the state left by one batch start the next (and next epoch)?

    def batches(self) -> Iterable[tuple[Tensor, Tensor]]:
        """One epoch of (input, target), each (1, B, T, I): shared by all replicas."""

    def loss(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-replica loss, (R,)."""

    def evaluate(self, model, state) -> dict[str, Tensor]:
        """Per-replica metrics after an epoch, each (R,)."""


@dataclass(frozen=True)
class StatefulWindows:
    """Seed 003: non-overlapping windows in order, batch 1, state carried, rollout test.

    ::

        epoch e : window 0 -> window 1 -> ... -> window N-1 -> rollout over the test range
        state   : h after window k (detached) is h0 of window k+1, also across epochs
        test    : from test[0] and the state left by window N-1, 199 predictions fed back
    """

    windows: Windows
    test: Tensor  # (N_test,)
    carries_state: bool = True

    def batches(self):
        inputs = self.windows.inputs.unsqueeze(1).unsqueeze(0)    # (1, N, B=1, T, 1)
        targets = self.windows.targets.unsqueeze(1).unsqueeze(0)  # (1, N, B=1, T, 1)
        return zip(inputs.unbind(1), targets.unbind(1))

    def loss(self, pred, target):
        return ((pred - target) ** 2).mean((1, 2, 3))

    def evaluate(self, model, state):
        preds = rollout(model, self.test[0], state, len(self.test) - 1)
        return {"test_loss": mse(preds, self.test[1:])}


@dataclass
class FitResult:
    history: dict[str, Tensor]  # column -> (epochs, R); "train_loss" plus the regime's metrics
    state: object               # the state left by the last batch (None for the MLP)


def fit(model, regime: Regime, cfg: Training, on_epoch: Callable[[int, dict], None] | None = None) -> FitResult:
    """Train every replica of ``model`` in place; return the per-epoch history.

    The epoch train loss is the mean of the per-batch losses, summed in float64 in batch
    order like the seed's ``loss += loss.item()``, so it matches the text to the last digit.
    """
    optimizer = OPTIMIZERS[cfg.optimizer](model.parameters(), lr=cfg.lr)
    state = None
    columns: dict[str, list[Tensor]] = {}
    for epoch in range(cfg.epochs):
        model.train()
        batch_losses = []
        for inputs, targets in regime.batches():
            carried = detach_state(state) if regime.carries_state else None
            pred, state = model(inputs, carried)
            loss = regime.loss(pred, targets)                 # (R,)
            optimizer.zero_grad()
            loss.sum().backward()  # replicas share no parameter: each gets its own gradient
            optimizer.step()
            batch_losses.append(loss.detach())
        row = {"train_loss": _sequential_mean(batch_losses)}
        row.update(regime.evaluate(model, state if regime.carries_state else None))
        for key, value in row.items():
            columns.setdefault(key, []).append(value.double())
        if on_epoch is not None:
            on_epoch(epoch, row)
    history = {key: torch.stack(values) for key, values in columns.items()}
    return FitResult(history=history, state=detach_state(state))


def _sequential_mean(losses: list[Tensor]) -> Tensor:
    """Mean over batches per replica, accumulated left to right in float64."""
    per_replica = zip(*torch.stack(losses).tolist())                # R sequences of floats
    return torch.tensor([reduce(operator.add, seq, 0.0) / len(losses) for seq in per_replica], dtype=torch.float64)
