"""Experiment S's forecaster recipe (``series.recipe: forecaster``): the same networks, trained as a
forecaster would train them. The texts' recipe (``sine.py``) stays the default.

What changes, each against the texts' recipe:

- the series is transformed first (``series.transform``), then scaled by the transformed training
  part (``series.scaling``); every answer is undone into the series' own units before it is scored;
- training windows of ``seq_len + 1`` start every ``stride`` steps (overlapping; the texts' do not
  overlap), each read from a zero state, in minibatches of ``batch_size`` reshuffled every epoch
  (one shuffle, drawn from the first seed, shared by every replica);
- the training part's last ``validation_fraction`` is never trained on: every epoch, backtests of
  ``series.horizon`` steps from ``series.origins`` origins there give ``val_loss`` (MSE in the series'
  units), and each replica keeps the weights of its best epoch (``training.EarlyStopping``);
- every forecast from an origin reads the ``seq_len`` values up to it from a zero state, as training
  does, then runs free. No state is carried from training to the test range.
::

    series x : x0 ............................ x(b-v-1) | x(b-v) ... x(b-1) | x(b) ... x(N-1)
    part     : training windows (stride, shuffled)        | validation        | test
    z        : transform(x), scaled; z[j] is x[j + lag]'s (lag: 1 for diff, season for seasonal_diff)
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from rnnlab import data, references
from rnnlab.engine import Batch
from rnnlab.errors import DataError
from rnnlab.models import build_stack, config_for, parameter_count
from rnnlab.params import Params, Training
from rnnlab.progress import OnEpoch, Progress, chain
from rnnlab.training import EarlyStopping, fit
from rnnlab.transforms import Transform, Units, boundary

__all__ = ["ShuffledWindows", "Transform", "Units", "answers", "boundary", "free_runs", "restore_validation",
           "strided_windows", "train", "validation_questions", "validation_start"]

log = logging.getLogger(__name__)


def validation_start(p: Params, length: int) -> int:
    """The first index of the validation slice: the training part's last ``validation_fraction``."""
    b = boundary(p, length)
    start = b - int(p.series.forecaster.validation_fraction * length)
    if b - start < 3:
        raise DataError(f"series.forecaster.validation_fraction {p.series.forecaster.validation_fraction} holds out "
                        f"{b - start} of {length} points: a validation backtest needs at least 3")
    return start


# --- forecasts from origins --------------------------------------------------------------------


@torch.inference_mode()
def free_runs(model, x: np.ndarray, z: np.ndarray, units: Units, origins, steps: int, warmup: int) -> np.ndarray:
    """Every replica's forecasts of ``steps`` values after each origin, in x's units: (R, origins, steps).

    Origin o is x's index of the last known value (z's ``o - lag``); the model reads the ``warmup``
    values of z up to it from a zero state (fewer when the series has fewer), then runs free."""
    model.eval()
    js = [o - units.transform.lag for o in origins]
    width = min(warmup, min(js) + 1)
    context = torch.from_numpy(np.stack([z[j - width + 1 : j + 1] for j in js])).float()  # (B, width)
    batch = len(js)
    state = model(context[:, :-1].reshape(1, batch, width - 1, 1), None)[1] if width > 1 else None
    preds = model.rollout(context[:, -1:].reshape(1, batch, 1, 1), state, steps)       # (R, B, steps, 1)
    zs = units.scaler.unscale_values(preds[..., 0].double().numpy())                    # (R, B, steps)
    return np.stack([units.transform.undo(x[: o + 1], zs[:, k]) for k, o in enumerate(origins)], 1)


def answers(p: Params, x: np.ndarray, z: np.ndarray, units: Units, model) -> dict[str, torch.Tensor]:
    """``sine.evaluate``'s three questions, answered in the series' units (float32, R first)."""
    q = references.questions(len(x), boundary(p, len(x)), p.series)
    run = lambda origins, steps: free_runs(model, x, z, units, origins, steps, p.seq_len)  # noqa: E731
    result = {
        "rollout": run((q.boundary,), len(x) - q.boundary - 1)[:, 0],
        "one_step": run(tuple(range(q.boundary, len(x) - 1)), 1)[:, :, 0],
        "backtest": run(q.origins, q.horizon),
    }
    return {k: torch.from_numpy(v).float() for k, v in result.items()}


def validation_questions(p: Params, length: int) -> references.Questions:
    """Backtests inside the validation slice: ``series.origins`` origins, ``series.horizon`` steps
    (fewer when the slice is shorter), every target before the test range."""
    start, end = validation_start(p, length), boundary(p, length)
    horizon = min(p.series.horizon, end - start - 1)
    origins = np.unique(np.linspace(start, end - 1 - horizon, p.series.origins).round().astype(int))
    return references.Questions(start, tuple(int(o) for o in origins), horizon)


# --- training ----------------------------------------------------------------------------------


def strided_windows(z: torch.Tensor, seq_len: int, stride: int) -> data.WindowPairs:
    """Windows of ``seq_len + 1`` starting every ``stride`` steps (they overlap when stride <= seq_len)::

        z     : z0 z1 z2 z3 z4 z5 ...        seq_len 3, stride 1
        window: z0 z1 z2 z3 | z1 z2 z3 z4 | z2 z3 z4 z5 | ...   input: the first 3, target: shifted by one
    """
    span = seq_len + 1
    if len(z) < span:
        raise DataError(f"the forecaster's training part has {len(z)} points, fewer than seq_len + 1 = {span}")
    windows = z.unfold(0, span, stride).unsqueeze(-1)  # (N, seq_len+1, 1)
    return data.WindowPairs(inputs=windows[:, :-1], targets=windows[:, 1:])


@dataclass
class ShuffledWindows:
    """A regime for ``training.fit``: minibatches of windows, reshuffled every epoch, no carried
    state; judged by backtests in the validation slice (``val_loss``, what early stopping reads)
    and, for the history only, the rollout over the test range (``test_loss``), both in the series'
    units."""

    windows: data.WindowPairs
    batch_size: int
    seed: int
    judge: object  # model -> {"val_loss": (R,), "test_loss": (R,)}
    carries_state: bool = False
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self):
        self._rng = np.random.default_rng(self.seed)

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.windows.inputs) / self.batch_size)

    def batches(self):
        order = torch.from_numpy(self._rng.permutation(len(self.windows.inputs)))
        for chunk in order.split(self.batch_size):
            yield self.windows.inputs[chunk].unsqueeze(0), self.windows.targets[chunk].unsqueeze(0)  # (1, B, T, 1)

    def step(self, model, batch, state):
        loss, _, _ = model.train_step(Batch(*batch), None)
        return {"loss": loss}, None

    def evaluate(self, model, state):
        return self.judge(model)


def restore_validation(per_seed: dict[int, dict[str, float]], history) -> None:
    """Each seed's ``validation_mse``, set to its best epoch's: early stopping restored that epoch's
    weights, so it is the score of the model evaluated (``sine.seed_metrics`` gives the last epoch's)."""
    for seed, row in per_seed.items():
        row["validation_mse"] = float(history[f"val_loss_seed{seed}"].min())


def train(p: Params, x: np.ndarray, z: np.ndarray, units: Units, kind: str, on_epoch: OnEpoch | None = None):
    """Train one architecture with the forecaster's recipe, one replica per seed -> (model, FitResult,
    seconds). ``x``: the series; ``z``: it in the models' units (``units.to_model(x)``)."""
    fc = p.series.forecaster
    lag, start, b = units.transform.lag, validation_start(p, len(x)), boundary(p, len(x))
    windows = strided_windows(torch.from_numpy(z[: start - lag]).float(), p.seq_len, fc.stride)
    vq = validation_questions(p, len(x))
    val_truth = np.stack([x[o + 1 : o + 1 + vq.horizon] for o in vq.origins])   # (origins, horizon)
    test_truth = x[b + 1 :]

    def judge(model) -> dict[str, torch.Tensor]:
        val = free_runs(model, x, z, units, vq.origins, vq.horizon, p.seq_len)
        test = free_runs(model, x, z, units, (b,), len(x) - b - 1, p.seq_len)[:, 0]
        return {"val_loss": torch.from_numpy(((val - val_truth) ** 2).mean((1, 2))),
                "test_loss": torch.from_numpy(((test - test_truth) ** 2).mean(1))}

    cfg = config_for(kind, p.sine.model, "sine")
    model = build_stack(cfg, list(p.seeds))  # seeded per replica, after the data are cut, as the texts'
    log.info("%s (forecaster recipe, transform %s): %d training windows of %d steps (stride %d, batches of %d), "
             "%d validation points, %d test points, %d parameters, seeds %s", kind, units.transform.kind,
             len(windows.inputs), p.seq_len, fc.stride, fc.batch_size, b - start, len(x) - b, parameter_count(cfg),
             list(p.seeds))
    recipe = Training(optimizer="adam", lr=fc.lr, lr_schedule="constant", epochs=fc.epochs, grad_clip=p.sine.train.grad_clip)
    regime = ShuffledWindows(windows, fc.batch_size, p.seeds[0], judge)
    stopping = EarlyStopping("val_loss", fc.patience, mode="min")
    progress = Progress(recipe.epochs, f"{p.series.name} {kind} (forecaster)")
    def show(epoch: int, row: dict) -> None:
        progress.update(epoch, train=float(np.median(row["train_loss"].numpy())), val=float(np.median(row["val_loss"].numpy())))

    result = fit(model, regime, recipe, chain(show, on_epoch), stopping)
    seconds = progress.close()
    best = {k: float(np.median(v.numpy().min(0))) for k, v in result.history.items() if k in ("val_loss", "test_loss")}
    log.info("%s: best epochs %s of %d, best validation MSE %.4g (series units; medians over %d seeds), %.1fs",
             kind, result.best_epochs, len(result.history["train_loss"]), best["val_loss"], len(p.seeds), seconds)
    return model, result, seconds
