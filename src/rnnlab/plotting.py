"""Figures. Each function takes data and returns a matplotlib Figure; stages save them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

# One colour per architecture, the same in every figure.
COLORS = {"mlp": "tab:purple", "rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
REFERENCE_STYLES = {
    "clean_sine": ("noise floor (clean sine)", ":"),
    "zero": ("predict zero", "--"),
    "linear_ar": ("linear AR", "-."),
}


def _color(kind: str) -> str:
    return COLORS.get(kind, "black")


def dataset(values: np.ndarray, boundary: int) -> Figure:
    """The series, training part blue and test part orange (seed 003's first figure)."""
    fig = Figure(figsize=(9, 3.5))
    ax = fig.subplots()
    steps = np.arange(len(values))
    ax.scatter(steps[:boundary], values[:boundary], s=6, color="tab:blue", label="training set")
    ax.scatter(steps[boundary:], values[boundary:], s=6, color="tab:orange", label="test set")
    ax.set(xlabel="time step", ylabel="value", title=f"Noisy sine: {boundary} training, {len(values) - boundary} test points")
    ax.legend(loc="lower left")
    return fig


def seed_columns(frame: pd.DataFrame, prefix: str) -> list[str]:
    """The per-seed columns of a wide frame: ``test_loss_seed0``, ``test_loss_seed1``, ..."""
    return [c for c in frame.columns if c.startswith(f"{prefix}_seed")]


def losses(histories: dict[str, pd.DataFrame], references: dict[str, dict[str, float]]) -> Figure:
    """Train loss and rollout test MSE per epoch for every model: median over seeds, and the
    band from the best to the worst seed."""
    fig = Figure(figsize=(12, 4.2))
    train_ax, test_ax = fig.subplots(1, 2, sharex=True)
    seeds = 1
    for kind, history in histories.items():
        color = _color(kind)
        seeds = len(seed_columns(history, "test_loss"))
        train_ax.plot(history.epoch, history.train_loss, color=color, label=kind.upper())
        test_ax.plot(history.epoch, history.test_loss, color=color, label=kind.upper())
        if seeds > 1:
            test_ax.fill_between(history.epoch, history.test_loss_min, history.test_loss_max, color=color, alpha=0.15)
    for name, (label, style) in REFERENCE_STYLES.items():
        if name in references:
            test_ax.axhline(references[name]["rollout_mse"], color="gray", ls=style, lw=1, label=label)
    spread = f"median of {seeds} seeds, band: best to worst seed" if seeds > 1 else "one seed"
    train_ax.set(yscale="log", xlabel="epoch", ylabel="MSE", title="Train loss (mean over windows)")
    test_ax.set(yscale="log", xlabel="epoch", ylabel="MSE", title=f"Test: free-running rollout MSE ({spread})")
    train_ax.legend()
    test_ax.legend(fontsize="small", ncols=2)
    return fig


def predictions(values: np.ndarray, boundary: int, preds: pd.DataFrame, context: int = 100) -> Figure:
    """Rollout predictions over the true series: one panel per model, every seed faint, the
    first seed (the texts' run) bold."""
    kinds = [c for c in preds.columns if c not in ("step", "truth") and "_seed" not in c]
    fig = Figure(figsize=(12, 2.4 * len(kinds) + 0.6))
    axes = fig.subplots(len(kinds), 1, sharex=True, squeeze=False)[:, 0]
    start = max(0, boundary - context)
    steps = np.arange(start, len(values))
    for ax, kind in zip(axes, kinds):
        ax.scatter(steps, values[start:], s=6, color="lightgray", label="data")
        ax.axvline(boundary - 0.5, color="gray", lw=1)
        for column in seed_columns(preds, kind):
            ax.plot(preds.step, preds[column], color=_color(kind), lw=0.8, alpha=0.35)
        ax.plot(preds.step, preds[kind], color=_color(kind), lw=2, label=f"{kind.upper()}, first seed (faint: the others)")
        ax.set(ylabel="value", ylim=(-1.6, 1.6))
        ax.legend(loc="lower left", fontsize="small")
    axes[0].set_title("Free-running predictions over the test range (each fed its own output); left of the line: training data")
    axes[-1].set_xlabel("time step")
    return fig


def ball_training(histories: dict[str, pd.DataFrame]) -> Figure:
    """Seed 004's accuracy curves (train dashed, validation solid) and the validation MAE."""
    fig = Figure(figsize=(12, 4.2))
    acc_ax, mae_ax = fig.subplots(1, 2, sharex=True)
    for kind, history in histories.items():
        color = _color(kind)
        acc_ax.plot(history.epoch, history.train_accuracy, color=color, ls="--", lw=0.8, alpha=0.7)
        below = " (below 0 throughout)" if history.val_accuracy.max() < 0 else ""
        acc_ax.plot(history.epoch, history.val_accuracy, color=color, lw=1.2, label=f"{kind.upper()}{below}")
        mae_ax.plot(history.epoch, history.val_mae, color=color, lw=1.2, label=kind.upper())
    acc_ax.set(ylim=(0, 1), xlabel="epoch", ylabel="accuracy (seed formula)",
               title="Accuracy: validation solid, training dashed")
    mae_ax.set(yscale="log", xlabel="epoch", ylabel="mean |error| (ball positions)", title="Validation error in positions")
    acc_ax.legend(loc="lower right")
    mae_ax.legend()
    return fig


def ball_predictions(frame: pd.DataFrame) -> Figure:
    """Predicted vs actual next position on the test set, and the error, per model."""
    kinds = [c for c in frame.columns if c != "actual"]
    fig = Figure(figsize=(4.2 * len(kinds), 7.5))
    axes = fig.subplots(2, len(kinds), sharex=True, squeeze=False)
    lim = np.abs(frame.actual).max() + 2
    for col, kind in enumerate(kinds):
        error = frame[kind] - frame.actual
        top, bottom = axes[0, col], axes[1, col]
        top.plot([-lim, lim], [-lim, lim], color="gray", lw=0.8)
        top.scatter(frame.actual, frame[kind], s=4, color=_color(kind), alpha=0.5)
        top.set(title=f"{kind.upper()}: mean |error| {error.abs().mean():.3f}", ylabel="predicted")
        bottom.axhspan(-0.5, 0.5, color="gray", alpha=0.1, label="rounds to the true position")
        bottom.scatter(frame.actual, error, s=4, color=_color(kind), alpha=0.5)
        bottom.set(xlabel="actual next position", ylabel="predicted - actual")
        bottom.legend(loc="lower left", fontsize="small")
    return fig


def gradient_flow(frame: pd.DataFrame) -> Figure:
    """|dL_T/dh_t| against how many steps t lies before the loss: trained solid, initial dashed."""
    fig = Figure(figsize=(9, 4.8))
    ax = fig.subplots()
    for column in frame.columns.drop("steps_back"):
        kind, when = column.rsplit("_", 1)
        ax.plot(frame.steps_back, frame[column], color=_color(kind), ls="-" if when == "trained" else "--",
                label=f"{kind.upper()} {'trained' if when == 'trained' else 'freshly initialised'}")
    ax.set(yscale="log", xlabel="steps between h_t and the loss (T - t)", ylabel="|dL_T / dh_t| (mean over seeds)",
           title="Gradient flow back through time: loss at the last step only")
    ax.legend(fontsize="small", ncols=2)
    return fig


def gates(frame: pd.DataFrame) -> Figure:
    """The test rollout of the GRU and the LSTM (first seed), and their mean gate activations."""
    fig = Figure(figsize=(12, 8))
    top, gru_ax, lstm_ax = fig.subplots(3, 1, sharex=True)
    top.scatter(frame.step, frame.truth, s=6, color="lightgray", label="test data")
    styles = {"update": "-", "reset": "--", "input": "-", "forget": "--", "output": ":"}
    for kind, ax in (("gru", gru_ax), ("lstm", lstm_ax)):
        if f"{kind}_pred" not in frame:
            continue
        top.plot(frame.step, frame[f"{kind}_pred"], color=_color(kind), label=f"{kind.upper()} rollout")
        for column in [c for c in frame.columns if c.startswith(f"{kind}_") and c != f"{kind}_pred"]:
            gate = column.removeprefix(f"{kind}_")
            ax.plot(frame.step, frame[column], color=_color(kind), ls=styles.get(gate, "-"), label=f"{gate} gate")
        ax.set(ylabel="mean activation", ylim=(0, 1), title=f"{kind.upper()} gates along its rollout")
        ax.legend(loc="lower right", fontsize="small", ncols=3)
    top.set(ylabel="value", title="Free-running test rollout (first seed)")
    top.legend(loc="lower left", fontsize="small")
    lstm_ax.set_xlabel("time step")
    return fig


def curves(histories: dict[str, pd.DataFrame], x: str, panels: dict[str, str], suptitle: str) -> Figure:
    """One log-scale panel per history column, one line per model (medians over seeds)."""
    fig = Figure(figsize=(6 * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (column, title) in zip(axes, panels.items()):
        for kind, history in histories.items():
            ax.plot(history[x], history[column], color=_color(kind), label=kind.upper())
        ax.set(yscale="log", xlabel=x, ylabel="MSE", title=title)
        ax.legend(fontsize="small")
    fig.suptitle(suptitle)
    return fig


def window_predictions(values: np.ndarray, boundary: int, preds: pd.DataFrame) -> Figure:
    """Experiment W: the whole series, and per model its one-step and free-run test predictions."""
    kinds = [c.removesuffix("_one_step") for c in preds.columns if c.endswith("_one_step")]
    fig = Figure(figsize=(12, 2.3 * len(kinds) + 0.6))
    axes = fig.subplots(len(kinds), 1, sharex=True, squeeze=False)[:, 0]
    for ax, kind in zip(axes, kinds):
        ax.plot(np.arange(len(values)), values, color="lightgray", lw=1, label="data")
        ax.axvline(boundary - 0.5, color="gray", lw=1)
        ax.plot(preds.step, preds[f"{kind}_one_step"], color=_color(kind), lw=1.5, label=f"{kind.upper()} one step ahead")
        ax.plot(preds.step, preds[f"{kind}_free"], color=_color(kind), lw=1, ls="--", label="fed its own predictions")
        ax.set(ylabel="value", ylim=(-1.6, 1.6))
        ax.legend(loc="lower left", fontsize="small", ncols=3)
    axes[0].set_title("Sliding windows (seed 001): test predictions, first seed; left of the line: training data")
    axes[-1].set_xlabel("time step")
    return fig


def random_window_predictions(frame: pd.DataFrame) -> Figure:
    """Experiment R: free runs from the first value of each test window, over the truth."""
    kinds = [c.removesuffix("_pred") for c in frame.columns if c.endswith("_pred")]
    fig = Figure(figsize=(12, 2.3 * len(kinds) + 0.6))
    axes = fig.subplots(len(kinds), 1, sharex=True, squeeze=False)[:, 0]
    for ax, kind in zip(axes, kinds):
        for _, window in frame.groupby("start"):
            ax.plot(window.x, window.truth, color="lightgray", lw=3)
            ax.plot(window.x, window[f"{kind}_pred"], color=_color(kind), lw=1)
        ax.set(ylabel=f"{kind.upper()}", ylim=(-1.4, 1.4))
    axes[0].set_title("Random windows (seed 002): 49-step free runs (colour) over sin(x) (gray), first seed")
    axes[-1].set_xlabel("x")
    return fig
