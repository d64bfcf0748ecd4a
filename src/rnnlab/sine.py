"""Experiment S (texts 003 and 000): next-step prediction of a noisy sine.

The stages call these functions; they hold the experiment's recipe, in the texts' order:
read the csv, split 80/20, cut non-overlapping windows, *then* seed and build the models,
train statefully, judge each epoch by a free-running rollout over the test range. Opt-in: a
validation slice held out of the training part (``sine.data.validation_fraction``), rolled out
every epoch too, on which recipes are chosen instead of on the test range.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd
import torch

from rnnlab import closed_loop, data, evaluation, references
from rnnlab.models import ModelConfig, build_stack, config_for, parameter_count
from rnnlab.params import Params
from rnnlab.progress import OnEpoch, Progress, chain
from rnnlab.training import FitResult, StatefulWindows, fit

log = logging.getLogger(__name__)


def model_config(p: Params, kind: str) -> ModelConfig:
    return config_for(kind, p.sine.model, "sine")


def train(p: Params, values: np.ndarray, kind: str, on_epoch: OnEpoch | None = None, unit: float = 1.0):
    """Train one architecture, one replica per seed -> (model, FitResult, seconds);
    ``on_epoch`` (e.g. a ``LiveHistory``'s) sees every epoch after the progress bar.

    The result's ``state`` is the one the test range starts from: the state left by the last
    training window, read on through the validation slice when there is one (``sine.data.
    validation_fraction``; without one, the last window's, as the texts). Checkpoints store it, so
    every reader of a checkpoint starts ``test[0]`` from the state that precedes it."""
    split = data.split_series(values, p.sine.data.train_fraction)
    part = data.hold_out(split.train, len(values), p.sine.data.validation_fraction, p.seq_len)
    windows = data.stateful_windows(part.fit, p.seq_len)
    cfg = model_config(p, kind)
    model = build_stack(cfg, list(p.seeds))  # seeded per replica, after the data are cut (text 003)
    held_out = f", {len(part.validation)} validation points" if len(part.validation) else ""
    log.info(
        "%s: %d training windows of %d steps%s, %d test points, %d parameters, seeds %s",
        kind, len(windows.inputs), p.seq_len, held_out, len(split.test), parameter_count(cfg), list(p.seeds),
    )
    recipe = dataclasses.replace(p.sine.train, epochs=p.sine.train.epochs_for(len(windows.inputs)))
    progress = Progress(recipe.epochs, f"{p.series.name} {kind}")
    # opt-in: each window ends in a free run, trained through (closed_loop.py); else teacher forcing
    closed = {"horizon": recipe.horizon} if recipe.closed_loop else {}
    regime = (closed_loop.ClosedLoopWindows if closed else StatefulWindows)(
        windows, split.test, validation=part.validation, sampling=recipe.sampling, epochs=recipe.epochs,
        seeds=tuple(p.seeds), **closed)
    result = fit(model, regime, recipe, chain(progress.fit_callback("test_loss"), on_epoch))
    seconds = progress.close()
    if regime.validates:
        result = dataclasses.replace(result, state=regime.state_at_test_start(model, result.state))
    # in the series' own units (``unit``: the scaling's std squared), as the history and metrics are
    last = {k: float(np.median(v[-1].numpy())) * (unit if k in LOSSES else 1.0) for k, v in result.history.items()}
    validation = f", validation MSE {last['val_loss']:.4g}" if regime.validates else ""
    units = "" if unit == 1.0 else " in the series' units"
    log.info("%s: final train loss %.4g, rollout test MSE %.4g%s (medians over %d seeds%s), %.1fs",
             kind, last["train_loss"], last["test_loss"], validation, len(list(p.seeds)), units, seconds)
    return model, result, seconds


LOSSES = ("train_loss", "test_loss", "val_loss")  # the history's MSE columns (val_loss: with a validation slice)


def history_frame(result: FitResult, seeds: list[int], unit: float = 1.0) -> pd.DataFrame:
    """Per epoch: medians over seeds, the rollout's spread, every seed's train and test curves
    (and validation curves, with a validation slice).

    Training sees the series in ``series.scaling``'s units; an MSE there times ``unit`` (the
    scaling's std squared) is the MSE in the series' own units, which the history is written in,
    so every reader (metrics, figures, interactive plots) compares like with like."""
    per_seed = tuple(c for c in LOSSES if c in result.history)
    frame = result.seed_frame(seeds, per_seed=per_seed, spread=("test_loss",))
    if unit != 1.0:
        losses = [c for c in frame.columns if c.startswith(LOSSES)]
        frame[losses] = frame[losses] * unit
    return frame


def questions(p: Params, values: np.ndarray) -> references.Questions:
    boundary = int(p.sine.data.train_fraction * len(values))
    return references.questions(len(values), boundary, p.series)


def evaluate(p: Params, values: np.ndarray, to_series: data.Scaler, model, state) -> dict[str, torch.Tensor]:
    """Every question of the test range, answered in the series' own units (float32, R first);
    ``values`` are the prepared series, in the units the model was trained in, and ``state`` the
    one ``test[0]`` is read with (``train``'s, stored in the checkpoint: after the validation slice
    when there is one):

    - rollout (R, N_test - 1): free run from test[0] to the end, the texts' headline metric;
    - one_step (R, N_test - 1): each test point from the true one before it;
    - backtest (R, origins, horizon): free runs of ``series.horizon`` steps from each origin.
    """
    split = data.split_series(values, p.sine.data.train_fraction)
    q = questions(p, values)
    offsets = tuple(o - q.boundary for o in q.origins)
    return {
        "rollout": to_series.unscale(evaluation.rollout(model, split.test[0], state, len(split.test) - 1)),
        "one_step": to_series.unscale(evaluation.one_step(model, split.test[:-1], state)),
        "backtest": to_series.unscale(evaluation.backtest(model, split.test, state, offsets, q.horizon)),
    }


def truths(p: Params, values: np.ndarray, dtype=torch.float32) -> dict[str, torch.Tensor]:
    """What ``evaluate``'s answers are compared with, shaped like them without the replica dim."""
    q = questions(p, values)
    series = torch.from_numpy(values).to(dtype)
    return {
        "rollout": series[q.boundary + 1 :],
        "one_step": series[q.boundary + 1 :],
        "backtest": torch.stack([series[o + 1 : o + 1 + q.horizon] for o in q.origins]),
    }


def mase_scale(p: Params, values: np.ndarray) -> float:
    return evaluation.naive_scale(values[: questions(p, values).boundary])


LAST_EPOCHS = 10  # the final rollout value jumps from epoch to epoch; also report a mean


def seed_metrics(p: Params, series: np.ndarray, history: pd.DataFrame, preds: dict[str, torch.Tensor],
                 replica_seeds: list[int]) -> dict[int, dict[str, float]]:
    """Each seed's metrics: what the text prints, the rollout's best and recent values, and every
    question's MSE/MAE/RMSE/MASE, against ``series`` in its own units (``history`` is in them too:
    ``history_frame``)."""
    scale = mase_scale(p, series)
    measures = {
        question: evaluation.scores(pred, truth, scale)
        for (question, pred), truth in zip(preds.items(), truths(p, series).values())
    }
    result = {}
    for r, seed in enumerate(replica_seeds):
        curve = history[f"test_loss_seed{seed}"].to_numpy()
        row = {
            "train_loss": float(history[f"train_loss_seed{seed}"].iloc[-1]),
            "oracle_rollout_mse_best": float(curve.min()),  # the best epoch's: chosen on the test range
            "rollout_mse_last10": float(curve[-LAST_EPOCHS:].mean()),  # mean of the last 10 epochs
        }
        for question, by_measure in measures.items():
            row.update({f"{question}_{measure}": float(v[r]) for measure, v in by_measure.items()})
        if f"val_loss_seed{seed}" in history:  # with a validation slice: its rollout after the last epoch
            row["validation_mse"] = float(history[f"val_loss_seed{seed}"].iloc[-1])
        result[seed] = row
    return result


def ensemble_metrics(p: Params, series: np.ndarray, preds: dict[str, torch.Tensor]) -> dict[str, float]:
    """The seed ensemble as a forecaster of its own: the per-step median of every replica's answer
    to each question, scored as one seed is (MSE/MAE/RMSE/MASE, in the series' units)."""
    scale, row = mase_scale(p, series), {}
    for (question, pred), truth in zip(preds.items(), truths(p, series).values()):
        median = torch.from_numpy(np.median(pred.double().numpy(), axis=0)).to(pred.dtype)[None]  # (1, ...)
        row.update({f"{question}_{m}": float(v[0]) for m, v in evaluation.scores(median, truth, scale).items()})
    return row


def summary(per_seed: dict[int, dict[str, float]]) -> dict[str, float]:
    """Median over seeds of every metric, and the min and max of the rollout MSE."""
    names = next(iter(per_seed.values()))
    result = {name: float(np.median([m[name] for m in per_seed.values()])) for name in names}
    rollouts = [m["rollout_mse"] for m in per_seed.values()]
    result["rollout_mse_min"], result["rollout_mse_max"] = float(min(rollouts)), float(max(rollouts))
    return result


HEADLINE = {"texts": "rollout_mse", "forecaster": "backtest_mse"}  # the declared metric per model, by recipe


def metrics_files(per_seed: dict[str, dict[int, dict[str, float]]], parameters: dict[str, int],
                  references: dict[str, dict[str, float]],
                  ensembles: dict[str, dict[str, float]] | None = None,
                  headline: str = HEADLINE["texts"]) -> tuple[dict, dict]:
    """(metrics/sine.json, metrics/sine_detail.json).

    The declared metrics are one number per model, the median over seeds of ``headline``
    (``S.gru.rollout_mse``: the texts' free-run test; ``backtest_mse`` under the forecaster's
    recipe), prefixed by the experiment so no name collides with another file's. Every column
    ``dvc exp show`` prints costs width, and a declared metric that does not change still takes
    one: with more, the models' own numbers fold into "…" in a 200-column terminal. The detail
    (every seed, every measure, medians, min and max, the references', ``ensembles``: each
    model's seed ensemble under ``models.<kind>.ensemble``) is a git-tracked file beside them,
    read by ``rnnlab scores`` and ``rnnlab report``, and by ``dvc metrics diff --targets``.
    """
    summaries = {kind: summary(seeds) for kind, seeds in per_seed.items()}
    declared = {kind: {headline: values[headline]} for kind, values in summaries.items()}
    detail = {
        "models": {
            kind: {
                "parameters": parameters[kind],
                "median": summaries[kind],
                "seeds": {str(seed): values for seed, values in seeds.items()},
                **({"ensemble": ensembles[kind]} if ensembles and kind in ensembles else {}),
            }
            for kind, seeds in per_seed.items()
        },
        "references": references,
    }
    return {"S": declared}, detail


def reference_predictions(p: Params, values: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Every classical reference's answers to ``evaluate``'s questions (no training)."""
    clean = np.sin(data.sine_grid(p.sine.data)) if p.series.is_generated_sine else None
    return references.all_references(values, questions(p, values), p.series, p.seq_len, clean)


def reference_metrics(p: Params, values: np.ndarray,
                      predictions: dict[str, dict[str, np.ndarray]] | None = None) -> dict[str, dict[str, float]]:
    """Each reference's MSE/MAE/RMSE/MASE per question, in float64 (of ``predictions``, if the
    caller has ``reference_predictions`` already)."""
    truth, scale = truths(p, values, torch.float64), mase_scale(p, values)
    result = {}
    for name, answers in (predictions or reference_predictions(p, values)).items():
        result[name] = {}
        for question, pred in answers.items():
            if question not in truth:  # not an answer: ARIMA's chosen order, kept beside its metrics
                result[name][question] = [int(v) for v in pred]
                continue
            measures = evaluation.scores(torch.from_numpy(pred)[None], truth[question], scale)
            result[name].update({f"{question}_{m}": float(v[0]) for m, v in measures.items()})
    return result
