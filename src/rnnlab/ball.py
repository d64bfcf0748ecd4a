"""Experiment B (text 004): predict a moving ball's next position from its history.

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

from rnnlab import models, provenance
from rnnlab.ball_data import Shard, load_split
from rnnlab.checkpoints import Checkpoint
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
    """Text 004's ``split_batch_xy``: (x (B, T, 1), input lengths (B,), y (B, 1))."""
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
    """The reference model's output at each sequence's last real step, (B, 1) (text 004's forward).

    ::

        output  : h0 h1 h2 h3  -> head(h3) = predicted p4
    """
    output, _ = model.rnn(packed)
    unpacked, _ = pad_packed_sequence(output, batch_first=True)              # (B, T', H)
    index = (lengths - 1).reshape(-1, 1, 1).repeat(1, 1, unpacked.shape[2])  # (B, 1, H)
    last = unpacked.gather(1, index)                                         # (B, 1, H)
    return model.head(last.reshape(last.shape[0], last.shape[2]))            # (B, 1)


def predict_next(model: nn.Module, x: Tensor, lengths: Tensor) -> Tensor:
    """The prediction after each row's last input, (B, 1): x (B, T, 1) padded, lengths (B,);
    ``model`` is a plain module or a one-replica stack (``predict_replicas`` reads them all)."""
    if isinstance(model, StackedRecurrent):  # the compiled engine's one-replica stack
        if model.replicas != 1:
            raise ValueError(f"a stack of {model.replicas} replicas predicts with predict_replicas")
        return predict_replicas(model, x, lengths)[0]
    return predict_packed(model, pack(x, lengths), lengths)


def predict_replicas(stack: StackedRecurrent, x: Tensor, lengths: Tensor) -> Tensor:
    """Every replica's prediction after each row's last input, (R, B, 1), in one kernel call."""
    last = stack.engine().last_outputs(x.unsqueeze(0), lengths)               # (R, B, H)
    # the stack's own head on the last steps alone: the same numbers as on every step. One replica
    # at a time, each copied out: a batched matmul of R replicas rounds a replica's numbers unlike
    # one of that replica alone, and a seed must judge its epochs as training it alone does.
    weights = stack.weights()
    heads = []
    for r in range(stack.replicas):
        head = {k: weights[k][r : r + 1].clone() for k in ("head.weight", "head.bias")}
        heads.append(StackedRecurrent._head(head, last[r : r + 1].clone().unsqueeze(2))[0, :, 0])  # (B, 1)
    return torch.stack(heads)                                                 # (R, B, 1)


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
    """Text 004's accuracy: 1 - mean(|actual - predicted| / (|actual| + 1e-4)).

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
    """Text 004's training epoch: each training shard in order, cut into minibatches.

    In shard order (text 004's) every minibatch is the same each epoch, so each is cut and
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
            loss, predicted, _ = model.train_step(Batch(inputs.unsqueeze(0), y, lengths, last_only=True))  # (R, B, 1)
        predicted = predicted.detach().reshape(-1, *y.shape)                 # (R, B, 1); R = 1 for a module
        # a Python float like text 004's, kept in float64: early stopping compares these exactly
        accuracies = [accuracy(y, replica) for replica in predicted]
        return {"loss": loss, "accuracy": torch.tensor(accuracies, dtype=torch.float64)}, None

    def sgd_epoch(self, model, lr: float):
        """The whole epoch in one kernel call (plain SGD at ``lr``): ``step``'s metrics per minibatch
        and replica, {name: (S, R)}, and each replica's largest gradient norm (R,)."""
        epoch = self.fixed_epoch if self.shuffle is None else Epoch.of(list(self.batches()))
        losses, predicted, grad_norm = model.engine().sgd_epoch(epoch, lr)   # predicted (R, rows, 1)
        target = torch.from_numpy(epoch.target)
        accuracies = torch.stack([minibatch_accuracies(target, replica, epoch.starts) for replica in predicted], dim=1)
        return {"loss": losses, "accuracy": accuracies}, grad_norm              # (S, R) each

    def evaluate(self, model, state):
        if self.packed:
            return {f"val_{k}": v for k, v in score(model, self.validating).items()}
        return {f"val_{k}": v for k, v in score_rows(model, self.validating_rows).items()}


@torch.inference_mode()
def score(model: nn.Module, shards: list[Shard]) -> dict[str, Tensor]:
    """Text 004's accuracy (mean over shards, as text 004 averages) and the MAE in positions.

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
    """``score`` of every replica of a stack, (R,) each, on shards laid end to end (``Epoch.of``
    their ``split_inputs``): each replica's numbers in one kernel call and a few tensor operations."""
    stack.eval()
    x, lengths, y = (torch.from_numpy(a) for a in (shards.x, shards.lengths, shards.target))
    accuracies, maes = [], []
    for predicted in predict_replicas(stack, x, lengths):                    # (B, 1) per replica
        per_shard = minibatch_accuracies(y, predicted, shards.starts).tolist()
        accuracies.append(sum(per_shard) / len(per_shard))
        maes.append((predicted - y).abs().flatten().mean())
    return {"accuracy": torch.tensor(accuracies, dtype=torch.float64), "mae": torch.stack(maes)}


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
    """Text 004's ``train`` (or the params' improved recipe), one replica per seed of
    ``ball.train.seeds`` -> (one plain PyTorch module per seed, FitResult, seconds);
    ``on_epoch`` (e.g. a ``LiveHistory``'s) sees every epoch after the progress bar.

    The replicas train together (one batched pass) and each stops by its own patience
    (``EarlyStopping``): replica k is the run ``seeds: [k]`` would make, except that every
    replica sees the minibatch order of the first seed when ``shuffle`` is on."""
    cfg, recipe = model_config(p, kind), p.ball.train
    seeds = list(recipe.seeds)
    training = load_split(shards, "training")
    if recipe.min_history is not None:
        training = [with_prefixes(shard, recipe.min_history) for shard in training]
    shuffle = torch.Generator().manual_seed(seeds[0]) if recipe.shuffle else None
    compiled = recipe.engine == "compiled"
    if not compiled and len(seeds) > 1:  # params refuse it too; a caller's replace() skips that check
        raise ValueError(f"the torch engine trains one seed (text 004's loop), got {seeds}")
    regime = Minibatches(training, load_split(shards, "validating"), recipe.batch_size, shuffle, packed=not compiled)
    # text 004: manual_seed(0), then RNN, then Linear; each replica of a stack draws the same numbers
    model = build_stack(cfg, seeds) if compiled else build_reference(cfg, seed=seeds[0])  # params: torch = one seed
    log.info("%s: %d training rows in %d minibatches, %d parameters, at most %d epochs, %s",
             kind, sum(len(s[1]) for s in training), regime.steps_per_epoch(), parameter_count(cfg), recipe.epochs,
             f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds}")
    stopping = EarlyStopping(recipe.monitor, recipe.patience, MONITORS[recipe.monitor])
    progress = Progress(recipe.epochs, f"ball {kind}", patience=recipe.patience)

    def show(epoch: int, row: dict) -> None:
        # fit() shows an epoch before the stopping rule judges it: best is the best before this one;
        # with several seeds, the values are medians and the horizon is the last replica's
        medians = {k: float(row[k].median()) for k in ("train_accuracy", "val_accuracy", "val_mae")}
        progress.update(epoch, best=stopping.running_best_epoch(), train_acc=medians["train_accuracy"],
                        val_acc=medians["val_accuracy"], val_mae=medians["val_mae"] * p.ball.prepare.scale)

    result = fit(model, regime, recipe, chain(show, on_epoch), stopping)
    seconds = progress.close()
    for r, seed in enumerate(seeds):
        which = kind if len(seeds) == 1 else f"{kind} seed {seed}"
        if result.best_epochs[r] == 0:
            # Text 004 starts its record at accuracy 0 and never saves a model that does not beat
            # it; its script would then fail to reload model.pt. We keep its last epoch's weights.
            log.warning("%s: %s never beat its starting record in %d epochs; keeping the last epoch's weights",
                        which, recipe.monitor, result.stop_epochs[r])
        log.info("%s: stopped after %d epochs, best %s %.4f at epoch %d, %.0fs (%s engine)",
                 which, result.stop_epochs[r], recipe.monitor, stopping.bests[r], result.best_epochs[r], seconds,
                 recipe.engine)
    # checkpoints, evaluation and predict-ball read plain PyTorch modules
    replicas = as_references(model) if compiled else [model]
    return replicas, result, seconds


def checkpoint(cfg: ModelConfig, replicas: list[nn.Module], seeds: list[int], result: FitResult,
               scale: float, trained_on: dict | None = None) -> Checkpoint:
    """Every replica's weights, stacked in seed order, and each one's stop and best epoch
    (plain numbers for one seed, as before seeds were a list; one per seed otherwise), and what
    it trained on (``provenance.ball``)."""
    weights = {name: torch.stack([r.state_dict()[name].detach() for r in replicas]) for name in replicas[0].state_dict()}
    epochs, best = result.stop_epochs, result.best_epochs
    if len(seeds) == 1:
        epochs, best = epochs[0], best[0]
    extra = {"scale": scale, "epochs": epochs, "best_epoch": best}
    if trained_on is not None:
        extra[provenance.KEY] = trained_on
    return Checkpoint(cfg, list(seeds), weights, None, extra)


def per_replica(value, replicas: int) -> list:
    """A checkpoint's ``epochs`` or ``best_epoch``: one per replica, whether stored as a list or a number."""
    return list(value) if isinstance(value, list) else [value] * replicas


def warm_up_kernels(part: str | None = None) -> float:
    """``models.warm_up`` and the one kernel it does not load, the compiled engine's whole SGD
    epoch (~50 ms from numba's cache, seconds to compile), so that a timed training pays neither.
    ``part``: as ``models.warm_up``'s (the SGD epoch goes with the one-layer step). Returns the seconds it took."""
    seconds = models.warm_up(part)
    if part == "rest":
        return seconds
    start = time.perf_counter()
    with torch.random.fork_rng():
        stack = build_stack(ModelConfig("rnn", hidden_size=2), [0])
    stack.engine().sgd_epoch(Epoch.of([(torch.zeros(1, 2, 1), torch.tensor([1]), torch.zeros(1, 1))]), lr=0.1)
    return seconds + time.perf_counter() - start


def as_references(stack) -> list[nn.Module]:
    """Each replica of a stack in its plain PyTorch module, in seed order."""
    models = []
    for state in stack.reference_state_dicts():
        with torch.random.fork_rng():  # building draws an initialisation we overwrite at once
            model = build_reference(stack.cfg)
        model.load_state_dict(state)
        models.append(model)
    return models


HISTORY_PER_SEED = ("train_accuracy", "val_accuracy", "val_mae")  # the curves the seed band is drawn from


def history_frame(result: FitResult, scale: float, seeds: list[int] | None = None) -> pd.DataFrame:
    """One row per epoch: accuracies by text 004's formula and the validation MAE in positions.

    One seed: that run's numbers. Several: the median over the seeds still training in every
    column, and each seed's own ``val_mae_seed3`` (...) curves, empty (NaN) after that seed's
    stop epoch: the epochs it trained on only because other seeds had not stopped are no part
    of its run (``seeds: [3]`` alone would have ended there), so they are not in its curve, nor
    in the median. During training (no stop epochs yet) every seed's curve runs to the last epoch."""
    values = {k: v.numpy().copy() for k, v in result.history.items()}           # (epochs, R) each
    replicas = values["train_loss"].shape[1]
    seeds = seeds if seeds is not None else list(range(replicas))
    if result.stop_epochs is not None:
        for r, stop in enumerate(result.stop_epochs):
            for column in values.values():
                column[stop:, r] = np.nan                                       # epochs after its own stop
    middle = (lambda v: v[:, 0]) if replicas == 1 else (lambda v: np.nanmedian(v, axis=1))
    frame = pd.DataFrame({
        "epoch": np.arange(1, len(values["train_loss"]) + 1),
        "train_accuracy": middle(values["train_accuracy"]),
        "val_accuracy": middle(values["val_accuracy"]),
        "train_loss": middle(values["train_loss"]),
        "val_mae": middle(values["val_mae"]) * scale,
        "grad_norm": middle(values["train_grad_norm"]),
    })
    if replicas > 1:
        for column in HISTORY_PER_SEED:
            unit = scale if column == "val_mae" else 1.0
            for r, seed in enumerate(seeds):
                frame[f"{column}_seed{seed}"] = values[column][:, r] * unit
    return frame


# ---------------------------------------------------------------------------------------
# Test metrics: every seed's, and their median and range
# ---------------------------------------------------------------------------------------

HEADLINE = ("test_accuracy", "mae")  # the numbers whose range over seeds metrics/ball.json gives


def testing_metrics(model: nn.Module, testing: list[Shard], scale: float) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """One replica's test numbers (accuracy by text 004's formula, errors in positions) and its
    (actual, predicted) positions."""
    actual, predicted = predict_positions(model, testing, scale)
    return {"test_accuracy": score(model, testing)["accuracy"].item(), **position_metrics(actual, predicted)}, actual, predicted


def _median(values: list):
    m = np.median(values)
    return int(m) if all(isinstance(v, int) for v in values) and float(m).is_integer() else float(m)


def metrics_files(per_seed: dict[str, dict[int, dict]]) -> tuple[dict, dict]:
    """(metrics/ball.json, metrics/ball_detail.json) from every model's per-seed metrics.

    One seed: ball.json holds that run's numbers, as it did before seeds were a list. Several:
    the same keys hold the median over seeds, and ``test_accuracy_min`` / ``_max``, ``mae_min``
    / ``_max`` their range (so ``dvc exp show`` stays narrow). The detail holds every seed's
    numbers and their median, min and max."""
    headline, detail = {}, {}
    for kind, seeds in per_seed.items():
        rows = list(seeds.values())
        names = list(rows[0])
        summary = {
            "median": {n: _median([r[n] for r in rows]) for n in names},
            "min": {n: min(r[n] for r in rows) for n in names},
            "max": {n: max(r[n] for r in rows) for n in names},
        }
        detail[kind] = {**summary, "seeds": {str(seed): row for seed, row in seeds.items()}}
        if len(rows) == 1:
            headline[kind] = dict(rows[0])
            continue
        headline[kind] = {}
        for n in names:
            headline[kind][n] = summary["median"][n]
            if n in HEADLINE:
                headline[kind][f"{n}_min"], headline[kind][f"{n}_max"] = summary["min"][n], summary["max"][n]
    return headline, detail
