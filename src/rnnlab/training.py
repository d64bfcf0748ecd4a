"""Training: one loop for every regime of the seed texts, no file I/O, no plotting.

A *regime* says what one epoch feeds the model and how an epoch is judged; ``fit`` owns
everything else (optimizer, state carrying, loss bookkeeping, progress). Models are replica
stacks (``models.py``), so every loss here is a vector with one entry per replica.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import reduce
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from rnnlab import kernels
from rnnlab.data import WindowPairs
from rnnlab.engine import Batch
from rnnlab.errors import DivergedError
from rnnlab.evaluation import mse, rollout, warm
from rnnlab.models import detach_state


class _Optimizer:
    """What ``fit`` needs of an optimizer: one parameter group (what ``one_cycle`` sets),
    ``zero_grad`` and ``step``. Not a ``torch.optim.Optimizer``: building one of those imports
    ``torch._dynamo``, 0.7-2 s in every training process."""

    def __init__(self, params, **group):
        self.params = list(params)
        self.param_groups = [group]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


class CompiledAdam(_Optimizer):
    """``torch.optim.Adam`` at its defaults (betas 0.9/0.999, eps 1e-8, no weight decay, no
    amsgrad), its update as one compiled loop per parameter (``kernels.adam_step``).

    PyTorch's single-tensor Adam is about ten element-wise operations per step; on the lab's
    flat parameters of a few thousand numbers their dispatch is most of a training step's cost.
    Same formula, in float64 and rounded once per element: values differ from PyTorch's in the
    last bits only. ``param_groups`` has PyTorch's keys, so ``one_cycle`` drives it like Adam.
    """

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr=lr, betas=betas, eps=eps)
        self.state = {p: {"step": 0, "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
                      for p in self.params}

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        beta1, beta2 = group["betas"]
        for p in self.params:
            if p.grad is None:
                continue
            state = self.state[p]
            state["step"] += 1
            flat = [t.view(-1).numpy() for t in (p, p.grad, state["exp_avg"], state["exp_avg_sq"])]
            kernels.adam_step(*flat, group["lr"], beta1, beta2, group["eps"], state["step"])


class PlainSGD(_Optimizer):
    """``torch.optim.SGD`` (no weight decay, dampening or Nesterov): the same PyTorch tensor
    operations in the same order, so the same numbers bit for bit (the ball's torch engine is
    held to text 004's loop by ``benchmarks/bench_ball.py``)."""

    def __init__(self, params, lr: float, momentum: float = 0.0):
        super().__init__(params, lr=lr, momentum=momentum)
        self.momentum_buffers: list[Tensor | None] = [None] * len(self.params)

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = p.grad
            if group["momentum"] != 0:  # only when a one-cycle schedule cycles it
                buffer = self.momentum_buffers[i]
                if buffer is None:
                    buffer = self.momentum_buffers[i] = grad.detach().clone()
                else:
                    buffer.mul_(group["momentum"]).add_(grad, alpha=1)
                grad = buffer
            p.add_(grad, alpha=-group["lr"])


@functools.cache
def sgd_rounds_like_torch(dtype: torch.dtype) -> bool:
    """Does ``kernels.sgd_step`` give ``PlainSGD.step``'s numbers bit for bit on this machine?

    PyTorch's ``p.add_(g, alpha=-lr)`` rounds g * alpha + p once where its CPU code uses FMA
    instructions (AVX2 and up, its scalar tail included on this build) and twice where it
    does not; the kernel rounds once. Checked once per process, on values where the two
    roundings differ, 95 of them: PyTorch's vector body and its scalar tail (up to 31) both see some."""
    g = torch.Generator().manual_seed(0)
    param, grad = torch.randn(4096, generator=g, dtype=dtype), torch.randn(4096, generator=g, dtype=dtype) * 1e-3
    alpha = torch.tensor(-0.1, dtype=dtype)
    twice = param + grad * alpha
    once = (param.double() + grad.double() * alpha.double()).to(dtype)  # exact product: one rounding, nearly always
    differ = (twice != once).nonzero().flatten()
    pick = differ[torch.arange(95) % len(differ)] if len(differ) else torch.arange(95)  # float64: none to find
    theirs, ours = param[pick].clone(), param[pick].clone()
    theirs.add_(grad[pick], alpha=-0.1)
    kernels.sgd_step(ours.numpy(), grad[pick].numpy(), 0.1)
    return bool(torch.equal(theirs, ours))


def one_cycle(optimizer_name: str, lr: float, total_steps: int) -> list[dict]:
    """PyTorch's ``OneCycleLR`` (warm up to ``lr``, anneal to ~0, momentum cycled the other
    way) as the hyper-parameters of every step, read off the scheduler driving a stand-in
    PyTorch optimizer of the same kind, so that any optimizer can follow it exactly."""
    stand_in = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[optimizer_name]([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(stand_in, max_lr=lr, total_steps=total_steps)
    group, steps = stand_in.param_groups[0], []
    for _ in range(total_steps):
        steps.append({k: group[k] for k in ("lr", "betas", "momentum") if k in group})
        stand_in.step()
        scheduler.step()
    return steps


OPTIMIZERS = {"adam": CompiledAdam, "sgd": PlainSGD}


class Regime(Protocol):
    """What one epoch feeds the model, and how an epoch is judged."""

    carries_state: bool  # does the state left by one batch start the next (and next epoch)?

    def batches(self) -> Iterable:
        """One epoch of batches, in order."""

    def steps_per_epoch(self) -> int:
        """How many batches ``batches()`` yields (without drawing any random number)."""

    def step(self, model, batch, state) -> tuple[dict[str, Tensor], object]:
        """One batch: per-replica metrics, each (R,), and the new state. The gradient of "loss"
        is either already in the parameters' ``.grad`` (a stack's compiled ``train_step``) or
        still to come: a loss that carries an autograd graph (a plain PyTorch module)."""

    def evaluate(self, model, state) -> dict[str, Tensor]:
        """Per-replica metrics after an epoch, each (R,)."""

    # Optional, for a regime whose ``compiled_epochs`` is true (see ``runs_whole_epochs``):
    # ``sgd_epoch(model, lr)`` runs every batch of the epoch with plain SGD at ``lr`` and returns
    # what ``step`` would have, per batch {name: (S, R)}, and the largest gradient norm (R,).


@dataclass(frozen=True)
class StatefulWindows:
    """Text 003: non-overlapping windows in order, batch 1, state carried, rollout test.

    ::

        epoch e : window 0 -> window 1 -> ... -> window N-1 -> rollout over the test range
        state   : h after window k (detached) is h0 of window k+1, also across epochs
        test    : from test[0] and the state left by window N-1, 199 predictions fed back

    With a ``validation`` slice (the training part's last points, never trained on), each epoch
    also rolls out over it, from its first point and the state left by window N-1 (``val_loss``),
    and the test rollout starts from that state warmed teacher-forced through the slice
    (``state_at_test_start``), so the test range still follows the data the model has read::

        series : windows 0 .. N-1 | validation v0 .. vK | test t0 .. t199
        val    : free run from v0, state of window N-1
        test   : free run from t0, state of window N-1 after reading v0 .. vK

    With ``sampling`` > 0 (scheduled sampling, Bengio et al. 2015), step t > 0 of a window reads
    the model's own prediction from step t - 1 instead of the true value with chance p_e, which
    rises linearly from 0 at the first epoch to ``sampling`` at the last (``epochs``; one epoch:
    ``sampling``). The window's inputs are realized by one forward pass from the window's initial
    state (``engine.sampled_inputs``), then trained on as fixed values (no gradient through the
    fed-back predictions), from that same state::

        true    : x0  x1  x2  x3  ...          coins (t > 0): .  H  T  H   (H: feed back, chance p_e)
        realized: x0  y1  x2  y3  ...          y_t: the prediction after step t - 1 of this pass

    Coins: replica r draws from ``np.random.default_rng(seeds[r])``, T - 1 uniforms per window in
    training order (step t fed back when its uniform < p_e), every epoch, so a replica's coins
    depend on its seed alone; none are drawn at ``sampling`` 0. ``train_fed_back`` logs the
    fraction of inputs that were predictions.
    """

    windows: WindowPairs
    test: Tensor  # (N_test,)
    carries_state: bool = True
    validation: Tensor | None = None  # (N_val,); None or empty: no validation slice (the texts')
    sampling: float = 0.0             # the chance of feeding back at the last epoch; 0: teacher forcing (the texts')
    epochs: int = 1                   # the sampling ramp's length
    seeds: tuple[int, ...] = ()       # one coin stream per replica, with sampling
    _coins: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # epoch and generators

    def __post_init__(self):
        if self.sampling > 0 and not self.seeds:
            raise ValueError("scheduled sampling needs the replicas' seeds (one coin stream each)")

    @property
    def validates(self) -> bool:
        return self.validation is not None and len(self.validation) > 0

    def steps_per_epoch(self) -> int:
        return len(self.windows.inputs)

    def batches(self):
        inputs = self.windows.inputs.unsqueeze(1).unsqueeze(0)    # (1, N, B=1, T, 1)
        targets = self.windows.targets.unsqueeze(1).unsqueeze(0)  # (1, N, B=1, T, 1)
        if self.sampling > 0:  # one call per epoch: the ramp moves on
            if not self._coins:
                self._coins.update(epoch=0, generators=[np.random.default_rng(seed) for seed in self.seeds])
            self._coins["epoch"] += 1
        return zip(inputs.unbind(1), targets.unbind(1))

    def chance(self, epoch: int) -> float:
        """Scheduled sampling's p_e at ``epoch`` (1-based): 0 at the first, ``sampling`` at the last."""
        return self.sampling * (epoch - 1) / (self.epochs - 1) if self.epochs > 1 else self.sampling

    def feed(self, steps: int) -> np.ndarray:
        """One window's coins, (R, B=1, T): step t > 0 is fed back where true."""
        p = self.chance(self._coins["epoch"])
        coins = np.zeros((len(self.seeds), 1, steps), np.bool_)
        for r, generator in enumerate(self._coins["generators"]):
            coins[r, 0, 1:] = generator.random(steps - 1) < p
        return coins

    def step(self, model, batch, state):
        inputs, targets = batch                                   # (1, B=1, T, 1) each
        if self.sampling <= 0:
            loss, _, state = model.train_step(Batch(inputs, targets), state)
            return {"loss": loss}, state
        feed = self.feed(inputs.shape[2])                          # (R, B=1, T)
        if feed.any():
            inputs, _ = model.engine().sampled_inputs(inputs, feed, state)  # (R, B=1, T, 1)
        loss, _, state = model.train_step(Batch(inputs, targets), state)
        fed_back = torch.from_numpy(feed.mean((1, 2))).to(loss.dtype)      # (R,)
        return {"loss": loss, "fed_back": fed_back}, state

    def state_at_test_start(self, model, state):
        """The state the test range starts from: ``state`` (left by the last window) after
        reading the validation slice teacher-forced; ``state`` itself without a slice."""
        return warm(model, self.validation, state) if self.validates else state

    def evaluate(self, model, state):
        preds = rollout(model, self.test[0], self.state_at_test_start(model, state), len(self.test) - 1)
        row = {"test_loss": mse(preds, self.test[1:])}
        if self.validates:
            preds = rollout(model, self.validation[0], state, len(self.validation) - 1)
            row["val_loss"] = mse(preds, self.validation[1:])
        return row


@dataclass
class EarlyStopping:
    """Keep the weights of the best epoch; stop when the best is more than ``patience`` epochs old.

    Text 004's rule: a strictly better ``monitor`` value saves the model; otherwise, once
    ``epoch - best_epoch > patience``, training stops. The best weights are restored at the end.

    Per replica: each replica of a stack keeps its own record, best epoch and stop epoch, as if
    it trained alone (replicas share no parameter). ``should_stop`` says stop once every replica
    has stopped; a replica that stopped earlier trains on with the others, but its record is
    frozen and ``restore`` gives it back its own best weights (or, if it never beat its starting
    record, the weights of its own stop epoch: what training it alone would have left).
    ::

        replica 0 : best 40 ... stop 141 | trains on, ignored | restored to epoch 40
        replica 1 : best 90 .............................. stop 191 -> fit ends, restored to 90
    """

    monitor: str
    patience: int
    mode: str = "max"
    bests: list[float] = field(init=False, default_factory=list)          # (R,) each replica's record
    best_epochs: list[int] = field(init=False, default_factory=list)      # (R,) 0: never beaten
    stop_epochs: list[int | None] = field(init=False, default_factory=list)  # (R,) None: still training
    kept: dict[int, object] = field(init=False, default_factory=dict)     # replica -> its weights to restore

    def _start(self) -> float:
        # text 004 starts its record at 0 accuracy; an error to minimise starts at infinity
        return 0.0 if self.mode == "max" else math.inf

    @property
    def best(self) -> float:
        """The record of the only replica (``bests`` for a stack of several)."""
        return self._only("bests", self._start())

    @property
    def best_epoch(self) -> int:
        """The best epoch of the only replica (``best_epochs`` for a stack of several)."""
        return self._only("best_epochs", 0)

    def _only(self, name: str, before):
        values = getattr(self, name)
        if len(values) > 1:
            raise ValueError(f"{len(values)} replicas have one value each; read {name}")
        return values[0] if values else before

    def running_best_epoch(self) -> int:
        """The latest best epoch of the replicas still training: training lasts at most
        ``patience + 1`` epochs more (a progress bar's horizon)."""
        running = [b for b, s in zip(self.best_epochs, self.stop_epochs) if s is None]
        return max(running, default=max(self.best_epochs, default=0))

    def should_stop(self, epoch: int, row: dict[str, Tensor], model) -> bool:
        values = row[self.monitor].reshape(-1).tolist()  # (R,) Python floats, compared exactly
        if not self.bests:
            self.bests, self.best_epochs = [self._start()] * len(values), [0] * len(values)
            self.stop_epochs = [None] * len(values)
        for r, value in enumerate(values):
            if self.stop_epochs[r] is not None:
                continue
            if value > self.bests[r] if self.mode == "max" else value < self.bests[r]:
                self.bests[r], self.best_epochs[r] = value, epoch
                self._keep(model, r)
            elif epoch - self.best_epochs[r] > self.patience:
                self.stop_epochs[r] = epoch
                if self.best_epochs[r] == 0:  # nothing saved: keep where it stopped, not where the others stop
                    self._keep(model, r)
        return all(s is not None for s in self.stop_epochs)

    def _keep(self, model, replica: int) -> None:
        if hasattr(model, "flat"):  # a stack: the replica's elements of the flat parameter
            mask = model._replica_index() == replica
            self.kept[replica] = (mask, model.flat.detach()[mask].clone())
        else:                       # a plain module is one replica
            self.kept[replica] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def restore(self, model) -> None:
        for kept in self.kept.values():
            if isinstance(kept, tuple):
                mask, values = kept
                with torch.no_grad():
                    model.flat[mask] = values
            else:
                model.load_state_dict(kept)


@dataclass
class FitResult:
    history: dict[str, Tensor]  # column -> (epochs, R): "train_<metric>" and the regime's metrics
    state: object               # the state left by the last batch (None without carried state)
    best_epochs: list[int] | None = None  # with early stopping, per replica (0: never beat its start)
    stop_epochs: list[int] | None = None  # with early stopping, each replica's last epoch of its own run

    @property
    def best_epoch(self) -> int | None:
        """The best epoch of a one-replica run (``best_epochs`` for several)."""
        if self.best_epochs is None:
            return None
        if len(self.best_epochs) > 1:
            raise ValueError(f"{len(self.best_epochs)} replicas have one best epoch each; read best_epochs")
        return self.best_epochs[0]

    def seed_frame(self, seeds: list[int], per_seed: tuple[str, ...], spread: tuple[str, ...] = (),
                   index: str = "epoch", every: int = 1) -> pd.DataFrame:
        """One row per epoch (``index`` = epoch x ``every``): the median over seeds of every
        column, the min and max over seeds of the ``spread`` columns, and every seed's own curve
        of the ``per_seed`` columns (``test_loss_seed3``), so DVC can plot the median per model."""
        epochs = len(self.history["train_loss"])
        frame = pd.DataFrame({index: np.arange(1, epochs + 1) * every})
        for column, values in self.history.items():
            frame[column] = np.median(values.numpy(), axis=1)
        for column in spread:
            frame[f"{column}_min"] = self.history[column].min(dim=1).values.numpy()
            frame[f"{column}_max"] = self.history[column].max(dim=1).values.numpy()
        for column in per_seed:
            for r, seed in enumerate(seeds):
                frame[f"{column}_seed{seed}"] = self.history[column][:, r].numpy()
        return frame


def fit(model, regime: Regime, cfg, on_epoch: Callable[[int, dict], None] | None = None,
        stopping: EarlyStopping | None = None) -> FitResult:
    """Train every replica of ``model`` in place; return the per-epoch history.

    ``cfg`` supplies ``optimizer``, ``lr``, ``lr_schedule``, ``epochs`` and ``grad_clip`` (a
    max norm per replica, or None). Per-batch metrics are averaged over the epoch in float64,
    summed in batch order like the seeds' ``loss += loss.item()``, so epoch numbers match the
    texts to the last digit. ``train_grad_norm`` is the largest pre-clipping gradient norm of
    the epoch: where exploding gradients show. With plain SGD a regime may run the whole
    epoch in one call (``runs_whole_epochs``): the same numbers, without Python between steps.
    """
    optimizer = OPTIMIZERS[cfg.optimizer](model.parameters(), lr=cfg.lr)
    schedule = None
    if cfg.lr_schedule == "onecycle":  # warm up to lr, anneal to ~0 by the last step of the last epoch
        schedule = iter(one_cycle(cfg.optimizer, cfg.lr, cfg.epochs * regime.steps_per_epoch()))
    whole_epochs = runs_whole_epochs(model, regime, cfg)
    state = None
    columns: dict[str, list[Tensor]] = {}
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        if whole_epochs:
            per_batch, grad_norm = regime.sgd_epoch(model, optimizer.param_groups[0]["lr"])
        else:
            per_batch, grad_norm, state = _epoch_step_by_step(model, regime, cfg, optimizer, schedule, state)
        row = {f"train_{key}": _sequential_mean(values) for key, values in per_batch.items()}
        row["train_grad_norm"] = grad_norm
        row.update(regime.evaluate(model, state if regime.carries_state else None))
        check_finite(epoch, row, model, cfg)  # before anything sees the epoch: no NaN reaches a file
        for key, value in row.items():
            columns.setdefault(key, []).append(value.double())
        if on_epoch is not None:
            on_epoch(epoch, row)
        if stopping is not None and stopping.should_stop(epoch, row, model):
            break
    history = {key: torch.stack(values) for key, values in columns.items()}
    if stopping is None:
        return FitResult(history, detach_state(state))
    stopping.restore(model)
    last = len(history["train_loss"])  # a replica still training ran to the last epoch
    stops = [last if s is None else s for s in stopping.stop_epochs]
    return FitResult(history, detach_state(state), list(stopping.best_epochs), stops)


def check_finite(epoch: int, row: dict[str, Tensor], model, cfg) -> None:
    """Stop at the first epoch whose metrics or parameters are not finite (``DivergedError``, naming the
    replica): a NaN loss cannot turn finite again, and every result of it would be NaN."""
    for key, value in row.items():
        flat = value.reshape(-1)
        bad = (~torch.isfinite(flat)).nonzero()
        if len(bad):
            replica = int(bad[0])
            raise DivergedError(epoch, replica, f"{key.replace('_', ' ')} {flat[replica].item():g}", likely_cause(cfg))
    if hasattr(model, "flat"):  # a stack: one flat parameter, each element belonging to one replica
        bad = (~torch.isfinite(model.flat.detach())).nonzero()
        if len(bad):
            raise DivergedError(epoch, int(model._replica_index()[bad[0, 0]]), "a parameter is not finite", likely_cause(cfg))
    elif not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        raise DivergedError(epoch, 0, "a parameter is not finite", likely_cause(cfg))


def likely_cause(cfg) -> str:
    """What most often makes training diverge, in the recipe's own terms."""
    unclipped = ", without grad_clip" if cfg.grad_clip is None else f", gradients clipped at {cfg.grad_clip:g}"
    return f"lr {cfg.lr:g} too high for {cfg.optimizer}{unclipped}"


def runs_whole_epochs(model, regime, cfg) -> bool:
    """Can each epoch be one ``regime.sgd_epoch`` call (one kernel call on a stack) with the
    numbers of ``_epoch_step_by_step``? Plain SGD at a constant rate, no clipping, no carried
    state, a regime that offers it, and a machine where the kernel rounds as PyTorch does."""
    return (getattr(regime, "compiled_epochs", False) and not regime.carries_state and cfg.optimizer == "sgd"
            and cfg.lr_schedule != "onecycle" and cfg.grad_clip is None and sgd_rounds_like_torch(model.flat.dtype))


def _epoch_step_by_step(model, regime: Regime, cfg, optimizer, schedule, state):
    """One epoch, one optimizer step per batch -> per-batch metrics {name: (S, R)}, the largest
    gradient norm of each replica (R,), and the state left by the last batch."""
    per_batch: dict[str, list[Tensor]] = {}
    grad_norm = None
    for batch in regime.batches():
        carried = detach_state(state) if regime.carries_state else None
        optimizer.zero_grad()
        metrics, state = regime.step(model, batch, carried)
        if metrics["loss"].requires_grad:
            metrics["loss"].sum().backward()  # replicas share no parameter: each gets its own gradient
        norms = replica_grad_norms(model)                  # (R,)
        grad_norm = norms if grad_norm is None else torch.maximum(grad_norm, norms)
        if cfg.grad_clip is not None:
            clip_replica_grads(model, norms, cfg.grad_clip)
        if schedule is not None:
            optimizer.param_groups[0].update(next(schedule))
        optimizer.step()
        for key, value in metrics.items():
            per_batch.setdefault(key, []).append(value.detach())
    return {key: torch.stack(values) for key, values in per_batch.items()}, grad_norm, state


def replica_grad_norms(model) -> Tensor:
    """The gradient norm of each replica, (R,); one replica for a plain PyTorch module."""
    if hasattr(model, "replica_grad_norms"):
        return model.replica_grad_norms()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])).view(1)


def clip_replica_grads(model, norms: Tensor, max_norm: float) -> None:
    """Scale each replica's gradient to at most ``max_norm``, as ``clip_grad_norm_`` would alone."""
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)                  # (R,)
    if hasattr(model, "scale_replica_grads"):
        model.scale_replica_grads(coef)
    else:
        for p in model.parameters():
            if p.grad is not None:
                p.grad.mul_(coef)


def _sequential_mean(values: Tensor) -> Tensor:
    """Mean over batches (S, R) per replica, accumulated left to right in float64."""
    per_replica = zip(*values.tolist())                             # R sequences of floats
    return torch.tensor([reduce(operator.add, seq, 0.0) / len(values) for seq in per_replica], dtype=torch.float64)
