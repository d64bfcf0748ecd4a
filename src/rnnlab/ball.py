"""Experiment B (seed 004): predict a moving ball's next position from its history.

A row of ``ball.csv`` is one ball moving at a constant integer speed, e.g. ``1,3,5,7,9``.
The model reads every position but the last (a variable-length sequence, packed) and
predicts the last one from its final hidden state (many-to-one).
"""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab import models
from rnnlab.ball_data import Shard, load_split
from rnnlab.engine import Batch, Epoch
from rnnlab.models import ModelConfig, StackedRecurrent, build_reference, build_stack, config_for, parameter_count
from rnnlab.params import MONITORS, Params
from rnnlab.progress import OnEpoch, Progress, chain
from rnnlab.training import EarlyStopping, FitResult, fit

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------
# The model's view: all positions but the last, packed; the last one is the target
# ---------------------------------------------------------------------------------------


def split_inputs(shard: Shard, begin: int | None = None, end: int | None = None):
    """Seed 004's ``split_batch_xy``: (x (B, T, 1), input lengths (B,), y (B, 1))."""
    padded, lengths = shard[0][begin:end], shard[1][begin:end] - 1
    y = padded.gather(1, lengths.reshape(-1, 1))             # (B, 1): the position after the inputs
    return padded.reshape(*padded.shape, 1), lengths, y


def pack(x: Tensor, lengths: Tensor):
    """All positions but the last, packed: the padding and the target are never fed in.

    ::

        x       : p0 p1 p2 p3 p4 | 0 0     lengths = 4
        packed  : p0 p1 p2 p3
    """
    return pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)


def predict_packed(model: nn.Module, packed, lengths: Tensor) -> Tensor:
    """The reference model's output at each sequence's last real step, (B, 1) (seed 004's forward).

    ::

        output  : h0 h1 h2 h3  -> head(h3) = predicted p4
    """
    output, _ = model.rnn(packed)
    unpacked, _ = pad_packed_sequence(output, batch_first=True)              # (B, T', H)
    index = (lengths - 1).reshape(-1, 1, 1).repeat(1, 1, unpacked.shape[2])  # (B, 1, H)
    last = unpacked.gather(1, index)                                         # (B, 1, H)
    return model.head(last.reshape(last.shape[0], last.shape[2]))            # (B, 1)


def predict_next(model: nn.Module, x: Tensor, lengths: Tensor) -> Tensor:
    """The prediction after each row's last input, (B, 1): x (B, T, 1) padded, lengths (B,)."""
    if isinstance(model, StackedRecurrent):  # the compiled engine's one-replica stack
        last = model.engine().last_outputs(x.unsqueeze(0), lengths)          # (1, B, H)
        # the stack's own head on the last steps alone: the same numbers as on every step
        return StackedRecurrent._head(model.weights(), last.unsqueeze(2))[0, :, 0]  # (B, 1)
    return predict_packed(model, pack(x, lengths), lengths)


def with_prefixes(shard: Shard, min_history: int) -> Shard:
    """Every row and every prefix of it with at least ``min_history`` inputs before its target.

    A row 1,3,5,7,9 with min_history 2 gives 1,3,5 / 1,3,5,7 / 1,3,5,7,9: the model then
    sees short histories too, which whole rows (4 to 9 inputs) never show it.
    """
    padded, lengths = shard
    rows, sizes = [], []
    for row, length in zip(padded, lengths.tolist()):
        for size in range(min_history + 1, length + 1):
            rows.append(torch.cat([row[:size], row.new_zeros(padded.shape[1] - size)]))
            sizes.append(size)
    return torch.stack(rows), torch.tensor(sizes)


def accuracy(actual: Tensor, predicted: Tensor) -> float:
    """Seed 004's accuracy: 1 - mean(|actual - predicted| / (|actual| + 1e-4)).

    On normalised positions; a ball ending at position 0 makes its term ~ |error| * 10^4,
    so the ~1% of such rows dominate the mean. Kept for comparability with the text.
    """
    return 1 - relative_errors(actual, predicted).mean().item()


def relative_errors(actual: Tensor, predicted: Tensor) -> Tensor:
    return (actual - predicted).abs() / (actual.abs() + 0.0001)


def minibatch_accuracies(actual: Tensor, predicted: Tensor, starts: np.ndarray) -> Tensor:
    """``accuracy`` of every minibatch (rows ``starts[s]:starts[s + 1]``), (S,) in float64.

    Minibatches of one size are one row each of a (S, B) mean: PyTorch reduces each row as it
    reduces one minibatch alone, so the numbers are the same (``test_ball`` holds them to it)."""
    sizes = np.diff(starts)
    if (sizes == sizes[0]).all():
        means = relative_errors(actual, predicted).view(len(sizes), -1).mean(dim=1)
        return 1 - means.double()
    return torch.tensor([accuracy(actual[a:b], predicted[a:b]) for a, b in itertools.pairwise(starts)],
                        dtype=torch.float64)


class Minibatches:
    """Seed 004's training epoch: each training shard in order, cut into minibatches.

    In shard order (the seed's) every minibatch is the same each epoch, so each is cut and
    packed once; packing only reorders the input data, so this changes no number. With a
    ``shuffle`` generator, the rows of all training shards are reshuffled every epoch.
    ``packed`` feeds a plain PyTorch module (the torch engine); otherwise a stack gets the
    padded batch and the lengths (the compiled engine stops each row at its last input), and
    with plain SGD ``fit`` runs each epoch as one ``sgd_epoch`` call.
    """

    carries_state = False

    def __init__(self, training: list[Shard], validating: list[Shard], batch_size: int,
                 shuffle: torch.Generator | None = None, packed: bool = True):
        self.validating, self.batch_size, self.shuffle, self.packed = validating, batch_size, shuffle, packed
        self.compiled_epochs = not packed
        if shuffle is None:
            self.fixed = [self._prepare(split_inputs(shard, begin, begin + batch_size))
                          for shard in training for begin in range(0, len(shard[1]), batch_size)]
            self.fixed_epoch = None if packed else Epoch.of(self.fixed)
        else:
            width = max(shard[0].shape[1] for shard in training)
            self.pool = (torch.cat([nn.functional.pad(p, (0, width - p.shape[1])) for p, _ in training]),
                         torch.cat([lengths for _, lengths in training]))
        # the compiled engine validates every shard in one pass: the shards end to end
        self.validating_rows = None if packed else Epoch.of([split_inputs(shard) for shard in validating])

    def _prepare(self, batch):
        x, lengths, y = batch
        return (pack(x, lengths) if self.packed else x), lengths, y

    def steps_per_epoch(self) -> int:
        if self.shuffle is None:
            return len(self.fixed)
        return -(-len(self.pool[1]) // self.batch_size)

    def batches(self):
        if self.shuffle is None:
            yield from self.fixed
            return
        order = torch.randperm(len(self.pool[1]), generator=self.shuffle)
        for begin in range(0, len(order), self.batch_size):
            index = order[begin : begin + self.batch_size]
            yield self._prepare(split_inputs((self.pool[0][index], self.pool[1][index])))

    def step(self, model, batch, state):
        inputs, lengths, y = batch
        if self.packed:
            predicted = predict_packed(model, inputs, lengths)
            loss = nn.functional.mse_loss(predicted, y).view(1)
        else:
            loss, predicted, _ = model.train_step(Batch(inputs.unsqueeze(0), y, lengths, last_only=True))
            predicted = predicted[0]                                         # (B, 1)
        # a Python float like the seed's, kept in float64: early stopping compares these exactly
        return {"loss": loss, "accuracy": torch.tensor([accuracy(y, predicted.detach())], dtype=torch.float64)}, None

    def sgd_epoch(self, model, lr: float):
        """The whole epoch in one kernel call (plain SGD at ``lr``): ``step``'s metrics per minibatch,
        {name: (S, 1)}, and the largest gradient norm (1,)."""
        epoch = self.fixed_epoch if self.shuffle is None else Epoch.of(list(self.batches()))
        losses, predicted, grad_norm = model.engine().sgd_epoch(epoch, lr)
        accuracies = minibatch_accuracies(torch.from_numpy(epoch.target), predicted[0], epoch.starts)
        return {"loss": losses, "accuracy": accuracies.unsqueeze(1)}, grad_norm

    def evaluate(self, model, state):
        if self.packed:
            return {f"val_{k}": v for k, v in score(model, self.validating).items()}
        return {f"val_{k}": v for k, v in score_rows(model, self.validating_rows).items()}


@torch.inference_mode()
def score(model: nn.Module, shards: list[Shard]) -> dict[str, Tensor]:
    """Seed-formula accuracy (mean over shards, as the seed averages) and the MAE in positions.

    The MAE is in normalised units here; ``scale`` it to read ball positions.
    """
    model.eval()
    accuracies, errors = [], []
    for shard in shards:
        x, lengths, y = split_inputs(shard)
        predicted = predict_next(model, x, lengths)
        accuracies.append(accuracy(y, predicted))
        errors.append((predicted - y).abs().flatten())
    mean_accuracy = torch.tensor([sum(accuracies) / len(accuracies)], dtype=torch.float64)  # no float32 rounding
    return {"accuracy": mean_accuracy, "mae": torch.cat(errors).mean().view(1)}


@torch.inference_mode()
def score_rows(stack: StackedRecurrent, shards: Epoch) -> dict[str, Tensor]:
    """``score`` of a one-replica stack on shards laid end to end (``Epoch.of`` their
    ``split_inputs``), the same numbers in one kernel call and a few tensor operations."""
    stack.eval()
    x, lengths, y = (torch.from_numpy(a) for a in (shards.x, shards.lengths, shards.target))
    predicted = predict_next(stack, x, lengths)
    accuracies = minibatch_accuracies(y, predicted, shards.starts).tolist()
    mean_accuracy = torch.tensor([sum(accuracies) / len(accuracies)], dtype=torch.float64)
    return {"accuracy": mean_accuracy, "mae": (predicted - y).abs().flatten().mean().view(1)}


@torch.inference_mode()
def predict_positions(model: nn.Module, shards: list[Shard], scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Every (actual, predicted) next position of the shards, in ball positions."""
    model.eval()
    actual, predicted = [], []
    for shard in shards:
        x, lengths, y = split_inputs(shard)
        actual.append(y.flatten() * scale)
        predicted.append(predict_next(model, x, lengths).flatten() * scale)
    return torch.cat(actual).double().numpy(), torch.cat(predicted).double().numpy()


def position_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Honest metrics in ball positions."""
    error = np.abs(predicted - actual)
    return {
        "mae": float(error.mean()),
        "max_abs_error": float(error.max()),
        "rounds_correct": float(np.mean(np.round(predicted) == np.round(actual))),
    }


@torch.inference_mode()
def predict_history(model: nn.Module, history: list[int], scale: float) -> float:
    """The next position after ``history`` (every position is an input), in ball positions."""
    model.eval()
    x = torch.tensor(history, dtype=torch.float) / scale
    return predict_next(model, x.reshape(1, -1, 1), torch.tensor([len(history)])).item() * scale


# ---------------------------------------------------------------------------------------
# The experiment, as the stages run it
# ---------------------------------------------------------------------------------------


def model_config(p: Params, kind: str) -> ModelConfig:
    # the MLP reads one position at a time and has no state: it cannot read a history
    return config_for(kind, p.ball.model, "ball", recurrent_only=True)


def train(p: Params, shards: str | Path, kind: str, on_epoch: OnEpoch | None = None):
    """Seed 004's ``train`` (or the params' improved recipe) -> (model, FitResult, seconds);
    ``on_epoch`` (e.g. a ``LiveHistory``'s) sees every epoch after the progress bar."""
    cfg, recipe = model_config(p, kind), p.ball.train
    training = load_split(shards, "training")
    if recipe.min_history is not None:
        training = [with_prefixes(shard, recipe.min_history) for shard in training]
    shuffle = torch.Generator().manual_seed(recipe.seed) if recipe.shuffle else None
    compiled = recipe.engine == "compiled"
    regime = Minibatches(training, load_split(shards, "validating"), recipe.batch_size, shuffle, packed=not compiled)
    # seed 004: manual_seed(0), then RNN, then Linear; a stack of one draws the same numbers
    model = build_stack(cfg, [recipe.seed]) if compiled else build_reference(cfg, seed=recipe.seed)
    log.info("%s: %d training rows in %d minibatches, %d parameters, at most %d epochs",
             kind, sum(len(s[1]) for s in training), regime.steps_per_epoch(), parameter_count(cfg), recipe.epochs)
    stopping = EarlyStopping(recipe.monitor, recipe.patience, MONITORS[recipe.monitor])
    progress = Progress(recipe.epochs, f"ball {kind}", patience=recipe.patience)

    def show(epoch: int, row: dict) -> None:
        # fit() shows an epoch before the stopping rule judges it: best is the best before this one
        progress.update(epoch, best=stopping.best_epoch, train_acc=row["train_accuracy"].item(),
                        val_acc=row["val_accuracy"].item(), val_mae=row["val_mae"].item() * p.ball.prepare.scale)

    result = fit(model, regime, recipe, chain(show, on_epoch), stopping)
    seconds = progress.close()
    if result.best_epoch == 0:
        # Seed 004 starts its record at accuracy 0 and never saves a model that does not beat
        # it; its script would then fail to reload model.pt. We keep the last epoch's weights.
        log.warning("%s: %s never beat its starting record in %d epochs; keeping the last epoch's weights",
                    kind, recipe.monitor, len(result.history["train_loss"]))
    log.info("%s: stopped after %d epochs, best %s %.4f at epoch %d, %.0fs (%s engine)",
             kind, len(result.history["train_loss"]), recipe.monitor, stopping.best, result.best_epoch, seconds,
             recipe.engine)
    if compiled:  # checkpoints, evaluation and predict-ball read the plain PyTorch module
        model = as_reference(model)
    return model, result, seconds


def warm_up() -> float:
    """``models.warm_up`` and the one kernel it does not load, the compiled engine's whole SGD
    epoch (~50 ms from numba's cache, ~20 s to compile), so that a timed training pays neither.
    Returns the seconds it took."""
    seconds = models.warm_up()
    start = time.perf_counter()
    with torch.random.fork_rng():
        stack = build_stack(ModelConfig("rnn", hidden_size=2), [0])
    stack.engine().sgd_epoch(Epoch.of([(torch.zeros(1, 2, 1), torch.tensor([1]), torch.zeros(1, 1))]), lr=0.1)
    return seconds + time.perf_counter() - start


def as_reference(stack) -> nn.Module:
    """A one-replica stack's weights in its plain PyTorch module."""
    with torch.random.fork_rng():  # building draws an initialisation we overwrite at once
        model = build_reference(stack.cfg)
    model.load_state_dict(stack.reference_state_dicts()[0])
    return model


def history_frame(result: FitResult, scale: float) -> pd.DataFrame:
    """One row per epoch: accuracies by the seed's formula and the validation MAE in positions."""
    h = {k: v[:, 0].numpy() for k, v in result.history.items()}
    return pd.DataFrame({
        "epoch": np.arange(1, len(h["train_loss"]) + 1),
        "train_accuracy": h["train_accuracy"],
        "val_accuracy": h["val_accuracy"],
        "train_loss": h["train_loss"],
        "val_mae": h["val_mae"] * scale,
        "grad_norm": h["train_grad_norm"],
    })
