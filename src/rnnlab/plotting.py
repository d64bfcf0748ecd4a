"""Figures. Each function takes data and returns a matplotlib Figure; stages save them.

Every figure uses constrained layout, so no label runs into a neighbouring panel, and takes an
optional ``caption``: one small grey line at its foot naming the params that made it (built by
the ``*_caption`` functions below from the params a stage loads), in a strip of its own that
the axes never enter.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

# One colour per architecture, the same in every figure.
COLORS = {"mlp": "tab:purple", "rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
REFERENCE_STYLES = {
    "clean_sine": ("noise floor (clean sine)", ":"),
    "zero": ("predict zero", "--"),
    "linear_ar": ("linear AR", "-."),
}
CAPTION_GID = "params-caption"  # the caption's Text artist carries this gid
CAPTION_STRIP = 0.24            # inches at the figure's foot kept free of axes for the caption
BAND_ALPHA = 0.18


def _color(kind: str) -> str:
    return COLORS.get(kind, "black")


# --- layout helpers -------------------------------------------------------------------------------


def new_figure(figsize: tuple[float, float], caption: str | None = None) -> Figure:
    """A constrained-layout figure; with a caption, its foot is kept for that one line."""
    fig = Figure(figsize=figsize, layout="constrained")
    if caption:
        strip = CAPTION_STRIP / figsize[1]
        fig.get_layout_engine().set(rect=(0, strip, 1, 1 - strip))
        fig.text(0.008, strip / 2, caption, fontsize=7, color="0.4", ha="left", va="center", gid=CAPTION_GID)
    return fig


def tidy_log_axis(ax, axis: str = "y") -> None:
    """A log axis a reader can read: plain numbers (0.02, not 2x10^-2) and 1-2-5 ticks when it
    spans less than three decades, powers of ten otherwise; never labelled minor ticks."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    low, high = ax.get_ylim() if axis == "y" else ax.get_xlim()
    decades = math.log10(high / low) if low > 0 and high > 0 else math.inf
    if decades < 3:
        target.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        target.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    else:
        target.set_major_locator(ticker.LogLocator(base=10, numticks=8))
        target.set_major_formatter(ticker.LogFormatterSciNotation())
    target.set_minor_formatter(ticker.NullFormatter())


def _padded(values, below: float = 0.2, above: float = 0.2, predictions=None) -> tuple[float, float]:
    """y limits around the data with room (a fraction of its range) below and above, widened
    for predictions that leave the data's range, by at most one more range (a run that blows
    up leaves the axis rather than flattening the data)."""
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    span = (high - low) or 1.0
    if predictions is not None and np.isfinite(predictions).any():
        low = max(min(low, float(np.nanmin(predictions))), low - span)
        high = min(max(high, float(np.nanmax(predictions))), high + span)
    span = high - low
    return low - below * span, high + above * span


def seed_columns(frame: pd.DataFrame, prefix: str) -> list[str]:
    """The per-seed columns of a wide frame: ``test_loss_seed0``, ``test_loss_seed1``, ..."""
    return [c for c in frame.columns if c.startswith(f"{prefix}_seed")]


def _seed_band(ax, x, frame: pd.DataFrame, column: str, color: str) -> int:
    """Shade from the best to the worst seed of ``column``; returns how many seeds there are."""
    columns = seed_columns(frame, column)
    if len(columns) > 1:
        ax.fill_between(x, frame[columns].min(axis=1), frame[columns].max(axis=1), color=color,
                        alpha=BAND_ALPHA, lw=0)
    return len(columns)


BEST_STYLE = (0, (5, 1, 1, 1, 1, 1))  # the best classical forecaster's line: dash-dot-dot
VALIDATION = "val_loss"  # a history's validation curve, where a slice is held out
SPAN = 10.0  # a reference line further than this factor outside the curves' range is left out


def _reference_lines(ax, references: dict[str, dict[str, float]], label: bool = True,
                     within: tuple[float, float] | None = None, best: tuple[str, str] | None = None) -> None:
    """The yardsticks' rollout MSE as horizontal lines, and ``best`` (its key, its label) if given.
    ``within`` (the curves' lowest and highest value): a line far outside it (predicting zero on a
    series around 3e4) is left out, since the log axis would stretch to it and squash the curves."""
    styles = {name: (text, style) for name, (text, style) in REFERENCE_STYLES.items() if name in references}
    if best is not None and best[0] in references and best[0] not in styles:
        styles[best[0]] = (best[1], BEST_STYLE)
    for name, (text, style) in styles.items():
        value = references[name]["rollout_mse"]
        if within is not None and not within[0] / SPAN <= value <= within[1] * SPAN:
            continue
        ax.axhline(value, color="gray" if name in REFERENCE_STYLES else "0.15", ls=style, lw=1,
                   label=text if label else None)


def _curves_range(histories: dict[str, pd.DataFrame], column: str) -> tuple[float, float] | None:
    """The lowest and highest positive finite value of ``column`` and its seeds' columns, over every model."""
    values = np.concatenate([history[[column, *seed_columns(history, column)]].to_numpy(float).ravel()
                             for history in histories.values()])
    values = values[np.isfinite(values) & (values > 0)]
    return (float(values.min()), float(values.max())) if len(values) else None


# --- params captions (duck-typed on rnnlab.params' dataclasses) ----------------------------------


def short_number(x: float) -> str:
    """0.0005 -> 5e-4, 0.01 -> 0.01, 150 -> 150."""
    if x != 0 and abs(x) < 1e-2:
        mantissa, exponent = f"{x:.2e}".split("e")
        return f"{float(mantissa):g}e{int(exponent)}"
    return f"{x:g}"


def seeds_text(seeds) -> str:
    seeds = list(seeds)
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return "seeds " + ",".join(map(str, seeds))


def _architecture(model, models) -> str:
    text = f"hidden {model.hidden_size}" + (f" x {model.num_layers} layers" if model.num_layers > 1 else "")
    if "mlp" in models and model.mlp_widths:
        text += " · MLP " + "-".join(map(str, model.mlp_widths))
    return text


def _training(train, unit: str = "epochs") -> str:
    text = f"{train.optimizer} lr {short_number(train.lr)}"
    if train.lr_schedule != "constant":
        text += f" {train.lr_schedule}"
    steps = getattr(train, "steps", None)  # sine's fair protocol: a step budget instead of epochs
    text += f" · {steps} steps (budget)" if steps is not None else f" · {train.epochs} {unit}"
    if train.grad_clip is not None:
        text += f" · grad clip {short_number(train.grad_clip)}"
    return text


def _own_series(p):
    """params.series when experiment S reads a csv other than the generated sine, else None."""
    series = getattr(p, "series", None)
    return series if series is not None and not series.is_generated_sine else None


def _fractions(d) -> str:
    """The training fraction, and the validation fraction when a slice is held out."""
    text = f"train fraction {short_number(d.train_fraction)}"
    return text + (f", validation fraction {short_number(d.validation_fraction)}" if d.validation_fraction else "")


def sine_data_caption(p) -> str:
    d, series = p.sine.data, _own_series(p)
    if series is not None:
        column = f", column {series.column}" if series.column else ""
        return f"series: {series.csv_path}{column} · scaling {series.scaling} · {_fractions(d)}"
    return (f"sine.data: {d.points} points over {short_number(d.span_pi)}π · noise {short_number(d.noise)} (seed {d.seed})"
            f" · {_fractions(d)}")


def sine_caption(p, models=None) -> str:
    """S's params in one line; ``models``: those the figure draws, if not all of sine.models (the
    MLP's widths are named only where an MLP is drawn)."""
    s, series = p.sine, _own_series(p)
    data = (f"data: {s.data.points} points, noise {short_number(s.data.noise)}" if series is None
            else f"data: {series.csv_path}{', ' + series.column if series.column else ''}")
    scaling = getattr(getattr(p, "series", None), "scaling", "none")
    data += "" if scaling == "none" else f", scaling {scaling}"
    sampling = f" · scheduled sampling {short_number(s.train.sampling)}" if s.train.sampling else ""
    training = _training(s.train)
    if getattr(getattr(p, "series", None), "recipe", "texts") == "forecaster":  # recipe.py's, not sine.train's
        f, transform = p.series.forecaster, p.series.transform
        training = (f"forecaster recipe: stride {f.stride}, batch {f.batch_size}, adam lr {short_number(f.lr)}, "
                    f"<= {f.epochs} epochs, patience {f.patience}" + ("" if transform == "none" else f", transform {transform}"))
        sampling = ""
    architecture = _architecture(s.model, s.models if models is None else models)
    return (f"seq_len={p.seq_len} · {seeds_text(p.seeds)} · {architecture} · {training}"
            f"{sampling} · {data}, {_fractions(s.data)}")


def ball_caption(p) -> str:
    b, t = p.ball, p.ball.train
    rows = "each row's whole history" if t.min_history is None else f"every prefix of ≥{t.min_history} inputs"
    stop = f"up to {t.epochs} epochs, patience {t.patience} on {t.monitor}"
    return (f"seq_len: {rows} ({b.csv_path}) · {seeds_text(t.seeds)} · {_architecture(b.model, b.models)} · "
            f"{t.optimizer} lr {short_number(t.lr)}{'' if t.lr_schedule == 'constant' else ' ' + t.lr_schedule}"
            f" · batch {t.batch_size}{', shuffled' if t.shuffle else ''} · {stop} · engine {t.engine}"
            f" · positions / {short_number(b.prepare.scale)}")


def gradient_caption(p, models=None) -> str:
    return f"{sine_caption(p, models)} · analysis.window={p.analysis.window} training steps"


def windows_caption(p) -> str:
    w, d = p.windows, p.windows.data
    data = (f"data: sin(linspace(0, {short_number(d.x_max)}, {d.points})) + noise {short_number(d.noise)} (seed {d.seed}),"
            f" train fraction {short_number(d.train_fraction)}")
    parts = [f"seq_len={w.time_step} (windows.time_step)", seeds_text(p.seeds), _architecture(w.model, w.models),
             _training(w.train, "full-batch epochs"), data]
    return " · ".join(parts)


def random_caption(p) -> str:
    r = p.random_windows
    parts = [f"seq_len={r.steps - 1} (random_windows.steps {r.steps})", seeds_text(p.seeds),
             _architecture(r.model, r.models), f"init N(0, {short_number(r.init_std)})",
             f"{_training(r.train)} x {r.iterations_per_epoch} iterations",
             f"windows over [start, start + {short_number(r.span)}], start = randint({r.start_max}) (seed {r.seed})",
             f"{len(r.test_starts)} test starts"]
    return " · ".join(parts)


# --- sine (experiment S) -------------------------------------------------------------------------


def dataset(values: np.ndarray, boundary: int, *, name: str = "Noisy sine", caption: str | None = None,
            validation: int = 0) -> Figure:
    """The series, training part blue and test part orange (text 003's first figure); the last
    ``validation`` points of the training part, held out, green."""
    fig = new_figure((9, 3.5), caption)
    ax = fig.subplots()
    steps = np.arange(len(values))
    fit = boundary - validation
    ax.scatter(steps[:fit], values[:fit], s=6, color="tab:blue", label="training set")
    if validation:
        ax.scatter(steps[fit:boundary], values[fit:boundary], s=6, color="tab:green", label="validation set")
    ax.scatter(steps[boundary:], values[boundary:], s=6, color="tab:orange", label="test set")
    held_out = f"{validation} validation, " if validation else ""
    ax.set(xlabel="time step", ylabel="value",
           title=f"{name}: {fit} training, {held_out}{len(values) - boundary} test points")
    ax.legend(loc="lower left")
    return fig


def _spread_text(seeds: int) -> str:
    return f"median of {seeds} seeds, band: best to worst seed" if seeds > 1 else "median over seeds"


def _all_models_panel(ax, histories: dict[str, pd.DataFrame], x: str, column: str) -> int:
    """Every model's median of ``column`` on one log axis, each with its seed band if any."""
    seeds = 0
    for kind, history in histories.items():
        seeds = max(seeds, _seed_band(ax, history[x], history, column, _color(kind)))
        ax.plot(history[x], history[column], color=_color(kind), label=kind.upper())
    ax.set(yscale="log", xlabel=x)
    ax.legend(fontsize="small")
    return seeds


def _per_model_panels(fig, histories: dict[str, pd.DataFrame], x: str, column: str, ylabel: str,
                      references: dict[str, dict[str, float]] | None = None,
                      best: tuple[str, str] | None = None) -> int:
    """One small log panel per model, all on one scale: the median of ``column`` and the band
    from the best to the worst seed, so no model's band hides another's; the reference lines in
    each. Returns the number of seeds."""
    count = len(histories)
    cols = 1 if count <= 3 else 2
    rows = math.ceil(count / cols)
    grid = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    for spare in grid[count:]:
        spare.remove()
    axes, seeds, within = grid[:count], 0, _curves_range(histories, column)
    for k, (ax, (kind, history)) in enumerate(zip(axes, histories.items())):
        color = _color(kind)
        seeds = max(seeds, _seed_band(ax, history[x], history, column, color))
        ax.plot(history[x], history[column], color=color, label=f"{kind.upper()} median")
        if VALIDATION in history:  # a held-out slice: the curve that judged the epochs (early stopping's)
            ax.plot(history[x], history[VALIDATION], color=color, ls="--", lw=1, label="validation, median")
        _reference_lines(ax, references or {}, within=within, best=best)
        ax.set(yscale="log")
        ax.set_title(kind.upper(), fontsize="medium")
        if k + cols >= count:  # no panel below it
            ax.set_xlabel(x)
            ax.xaxis.set_tick_params(labelbottom=True)
        if k % cols == 0:
            ax.set_ylabel(ylabel)
    if references or any(VALIDATION in history for history in histories.values()):
        axes[0].legend(fontsize="x-small", loc="lower left")
    tidy_log_axis(axes[0])  # the panels share one y axis
    return seeds


def losses(histories: dict[str, pd.DataFrame], references: dict[str, dict[str, float]], *,
           caption: str | None = None, best: tuple[str, str] | None = None) -> Figure:
    """Left: train loss per epoch of every model (median over seeds, band best to worst seed).
    Right: the rollout test MSE, one small panel per model on one shared scale, so the bands do
    not hide each other, with the reference lines in each, and ``best``'s (the best classical
    forecaster: its key in ``references``, its label)."""
    fig = new_figure((13, 2.6 * math.ceil(len(histories) / 2) + 1.4), caption)
    left, right = fig.subfigures(1, 2, width_ratios=(1, 1.5))
    train_ax = left.subplots()
    seeds = _all_models_panel(train_ax, histories, "epoch", "train_loss")
    train_ax.set(ylabel="train MSE", title=f"Train loss (mean over windows)\n{_spread_text(seeds)}")
    tidy_log_axis(train_ax)
    seeds = _per_model_panels(right, histories, "epoch", "test_loss", "rollout test MSE", references, best)
    right.suptitle(f"Test: free-running rollout MSE\n{_spread_text(seeds)}")
    return fig


REFERENCE_PREFIX = "reference_"  # a predictions column of a classical forecaster's (evaluate_sine: the best's)


def predictions(values: np.ndarray, boundary: int, preds: pd.DataFrame, context: int = 100, *,
                caption: str | None = None, reference_names: dict[str, str] | None = None) -> Figure:
    """Rollout predictions over the true series: one panel per model, every seed faint, the
    first seed (the texts' run) bold; a ``reference_<name>`` column (the best classical
    forecaster's rollout) dashed in every panel, named by ``reference_names``."""
    refs = [c for c in preds.columns if c.startswith(REFERENCE_PREFIX)]
    kinds = [c for c in preds.columns if c not in ("step", "truth", *refs) and "_seed" not in c]
    fig = new_figure((12, 2.4 * len(kinds) + 0.6), caption)
    axes = fig.subplots(len(kinds), 1, sharex=True, squeeze=False)[:, 0]
    start = max(0, boundary - context)
    steps = np.arange(start, len(values))
    for ax, kind in zip(axes, kinds):
        ax.scatter(steps, values[start:], s=6, color="0.7", label="data", zorder=3)
        ax.axvline(boundary - 0.5, color="gray", lw=1)
        for column in seed_columns(preds, kind):
            ax.plot(preds.step, preds[column], color=_color(kind), lw=0.8, alpha=0.35)
        ax.plot(preds.step, preds[kind], color=_color(kind), lw=2, label=f"{kind.upper()}, first seed (faint: the others)")
        for column in refs:
            name = column.removeprefix(REFERENCE_PREFIX)
            ax.plot(preds.step, preds[column], color="0.15", lw=1.2, ls="--",
                    label=f"best classical forecaster: {(reference_names or {}).get(name, name)}")
        drawn = preds[[c for c in preds.columns if c == kind or c.startswith(f"{kind}_seed") or c in refs]].to_numpy(float)
        ax.set(ylabel="value", ylim=_padded(values[start:], 0.15, 0.3, drawn))  # room for the legend above
        ax.legend(loc="upper left", fontsize="small", ncol=3)
    axes[0].set_title("Free-running predictions over the test range (each fed its own output); left of the line: training data")
    axes[-1].set_xlabel("time step")
    return fig


# --- ball (experiment B) -------------------------------------------------------------------------


def ball_training(histories: dict[str, pd.DataFrame], *, caption: str | None = None) -> Figure:
    """Text 004's accuracy curves (train dashed, validation solid) and the validation MAE, on a
    log epoch axis so a run that stopped early is as visible as one that ran long. The accuracy
    axis spans the data: linear when every value lies in [-1, 1], else symlog (linear in [-1, 1]).

    With several seeds (``val_accuracy_seed3``, ... columns) the lines are medians over the seeds
    still training and a band spans the best to the worst seed of the validation curves."""
    fig = new_figure((12, 4.6), caption)
    acc_ax, mae_ax = fig.subplots(1, 2, sharex=True)
    seeds = 0
    for kind, history in histories.items():
        color = _color(kind)
        stops = [int(history.epoch[history[c].notna()].iloc[-1]) for c in seed_columns(history, "val_accuracy")]
        seeds = max(seeds, _seed_band(acc_ax, history.epoch, history, "val_accuracy", color))
        _seed_band(mae_ax, history.epoch, history, "val_mae", color)
        if len(stops) > 1:
            note = f"stopped at epochs {min(stops)}-{max(stops)}" if min(stops) < max(stops) else f"stopped at epoch {stops[0]}"
            never = max(history[c].max() for c in seed_columns(history, "val_accuracy")) <= 0
        else:
            note, never = f"stopped at epoch {int(history.epoch.iloc[-1])}", history.val_accuracy.max() <= 0
        note += "; never above 0" if never else ""
        acc_ax.plot(history.epoch, history.train_accuracy, color=color, ls="--", lw=0.8, alpha=0.7)
        acc_ax.plot(history.epoch, history.val_accuracy, color=color, lw=1.2, label=f"{kind.upper()} ({note})")
        mae_ax.plot(history.epoch, history.val_mae, color=color, lw=1.2, label=kind.upper())
    accuracies = np.concatenate([h[c].to_numpy() for h in histories.values()
                                 for c in ("train_accuracy", "val_accuracy", *seed_columns(h, "val_accuracy"))])
    low, high = float(np.nanmin(accuracies)), float(np.nanmax(accuracies))
    if low >= -1:
        pad = 0.05 * max(high - low, 0.02)
        acc_ax.set_ylim(low - pad, high + pad)
        scale = ""
    else:
        acc_ax.set_yscale("symlog", linthresh=1, linscale=1.2)
        acc_ax.set_ylim(low * 1.15, max(high, 0) + 0.1)
        ticks = [t for t in (-100, -50, -20, -10, -5, -2, -1, -0.5, 0, 0.5, 1) if low * 1.15 <= t <= high + 0.1]
        acc_ax.yaxis.set_major_locator(ticker.FixedLocator(ticks))
        acc_ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        acc_ax.yaxis.set_minor_locator(ticker.NullLocator())
        scale = "; symlog below -1"
    if low < 0 < high:
        acc_ax.axhline(0, color="gray", lw=0.8, ls=":")
    spread = "" if seeds <= 1 else f"\n{_spread_text(seeds)}"
    acc_ax.set(xscale="log", xlabel="epoch (log scale)", ylabel=f"accuracy (text 004's formula{scale})",
               title=f"Accuracy: validation solid, training dashed{spread}")
    mae_ax.set(yscale="log", xlabel="epoch (log scale)", ylabel="mean |error| (ball positions)",
               title=f"Validation error in positions{spread}")
    acc_ax.legend(loc="upper left", fontsize="small")
    mae_ax.legend()
    tidy_log_axis(mae_ax)
    return fig


def ball_predictions(frame: pd.DataFrame, *, caption: str | None = None) -> Figure:
    """Predicted vs actual next position on the test set, and the error, per model; every row
    on one y scale, so the panels compare at a glance."""
    kinds = [c for c in frame.columns if c != "actual" and "_seed" not in c]  # the first seed's (several: also per seed)
    fig = new_figure((4.2 * len(kinds), 7.8), caption)
    axes = fig.subplots(2, len(kinds), sharex=True, sharey="row", squeeze=False)
    lim = np.abs(frame.actual).max() + 2
    for col, kind in enumerate(kinds):
        error = frame[kind] - frame.actual
        top, bottom = axes[0, col], axes[1, col]
        top.plot([-lim, lim], [-lim, lim], color="gray", lw=0.8, label="predicted = actual")
        top.scatter(frame.actual, frame[kind], s=4, color=_color(kind), alpha=0.5)
        top.set(title=f"{kind.upper()}: mean |error| {error.abs().mean():.3f}")
        bottom.axhspan(-0.5, 0.5, color="gray", alpha=0.15, lw=0, label="|error| < 0.5: rounds to the true position")
        bottom.axhline(0, color="gray", lw=0.8)
        bottom.scatter(frame.actual, error, s=4, color=_color(kind), alpha=0.5)
        bottom.set(xlabel="actual next position")
    axes[0, 0].set_ylabel("predicted next position")
    axes[1, 0].set_ylabel("predicted - actual (same scale in every panel)")
    axes[0, 0].legend(loc="upper left", fontsize="small")
    axes[1, 0].legend(loc="lower left", fontsize="small")
    return fig


# --- analysis ------------------------------------------------------------------------------------


def gradient_flow(frame: pd.DataFrame, *, caption: str | None = None) -> Figure:
    """|dL_T/dh_t| against how many steps t lies before the loss: trained solid, initial dashed.
    A gradient that underflowed to exactly 0 is a gap (a log axis has no place for it)."""
    fig = new_figure((9, 5), caption)
    ax = fig.subplots()
    gaps = []
    for column in frame.columns.drop("steps_back"):
        kind, when = column.rsplit("_", 1)
        values = frame[column].where(frame[column] > 0)
        if values.isna().any() and frame[column].notna().any():
            gaps.append(f"{kind.upper()} {'trained' if when == 'trained' else 'initial'}")
        ax.plot(frame.steps_back, values, color=_color(kind), ls="-" if when == "trained" else "--",
                label=f"{kind.upper()} {'trained' if when == 'trained' else 'freshly initialised'}")
    title = "Gradient flow back through time: loss at the last step only"
    if gaps:
        title += f"\n(line ends: the gradient underflowed to 0 — {', '.join(gaps)})"
    ax.set(yscale="log", xlabel="steps between h_t and the loss (T - t)", ylabel="|dL_T / dh_t| (mean over seeds)",
           title=title)
    ax.legend(fontsize="small", ncols=2)
    tidy_log_axis(ax)
    return fig


# line style of each gate in gates.png; the interactive gates plot (.dvc/plots/models_curves.json) draws the same
GATE_STYLES = {"update": "-", "reset": "--", "input": "-", "forget": "--", "output": ":"}


def gates(frame: pd.DataFrame, *, caption: str | None = None) -> Figure:
    """The test rollout of the GRU and the LSTM (first seed), and their mean gate activations."""
    fig = new_figure((12, 8), caption)
    top, gru_ax, lstm_ax = fig.subplots(3, 1, sharex=True)
    top.scatter(frame.step, frame.truth, s=6, color="0.7", label="test data")
    for kind, ax in (("gru", gru_ax), ("lstm", lstm_ax)):
        if f"{kind}_pred" not in frame:
            continue
        top.plot(frame.step, frame[f"{kind}_pred"], color=_color(kind), label=f"{kind.upper()} rollout")
        for column in [c for c in frame.columns if c.startswith(f"{kind}_") and c != f"{kind}_pred"]:
            gate = column.removeprefix(f"{kind}_")
            ax.plot(frame.step, frame[column], color=_color(kind), ls=GATE_STYLES.get(gate, "-"), label=f"{gate} gate")
        ax.set(ylabel="mean activation", ylim=(0, 1), title=f"{kind.upper()} gates along its rollout")
        ax.legend(loc="lower right", fontsize="small", ncols=3)
    top.set(ylabel="value", title="Free-running test rollout (first seed)")
    top.legend(loc="lower left", fontsize="small")
    lstm_ax.set_xlabel("time step")
    return fig


# --- windows (experiment W) and random windows (experiment R) -------------------------------------


def curves(histories: dict[str, pd.DataFrame], x: str, panels: dict[str, str], suptitle: str, *,
           per_model: tuple[str, ...] = (), caption: str | None = None) -> Figure:
    """One log-scale panel per history column, one line per model: the median over seeds, and
    the band from the best to the worst seed where the history has every seed's column. A
    column in ``per_model`` gets one small panel per model instead (for bands that would
    otherwise overlap into one smear)."""
    count = len(histories)
    rows = max([1] + [count if count <= 3 else math.ceil(count / 2) for c in panels if c in per_model])
    fig = new_figure((6 * len(panels), max(4.6, 1.7 * rows + 1.2)), caption)
    for sub, (column, title) in zip(np.atleast_1d(fig.subfigures(1, len(panels))), panels.items()):
        if column in per_model:
            seeds = _per_model_panels(sub, histories, x, column, "MSE")
            sub.suptitle(f"{title}\n{_spread_text(seeds)}", fontsize="medium")
        else:
            ax = sub.subplots()
            seeds = _all_models_panel(ax, histories, x, column)
            ax.set(ylabel="MSE", title=f"{title}\n{_spread_text(seeds)}")
            tidy_log_axis(ax)
    fig.suptitle(suptitle)
    return fig


def window_predictions(values: np.ndarray, boundary: int, preds: pd.DataFrame, context: int = 100, *,
                       caption: str | None = None) -> Figure:
    """Experiment W: per model, its one-step and free-run test predictions, with the data drawn
    on top as points (grey: the last ``context`` training steps, black: the test range)."""
    kinds = [c.removesuffix("_one_step") for c in preds.columns if c.endswith("_one_step")]
    fig = new_figure((12, 2.3 * len(kinds) + 0.8), caption)
    axes = fig.subplots(len(kinds), 1, sharex=True, squeeze=False)[:, 0]
    start = max(0, boundary - context)
    steps = np.arange(len(values))
    for ax, kind in zip(axes, kinds):
        ax.axvline(boundary - 0.5, color="gray", lw=1)
        ax.plot(preds.step, preds[f"{kind}_one_step"], color=_color(kind), lw=1.5, label=f"{kind.upper()} one step ahead")
        ax.plot(preds.step, preds[f"{kind}_free"], color=_color(kind), lw=1, ls="--", label="fed its own predictions")
        ax.scatter(steps[start:boundary], values[start:boundary], s=7, color="0.65", zorder=3, label="training data")
        ax.scatter(steps[boundary:], values[boundary:], s=7, color="black", zorder=3, label="test data")
        ax.set(ylabel="value", ylim=_padded(values[start:], 0.2, 0.45))  # the top strip holds the legend
        ax.legend(loc="upper left", fontsize="small", ncols=4)
    axes[0].set_title("Sliding windows (text 001): test predictions of the first seed; left of the line: training data")
    axes[-1].set_xlabel("time step")
    return fig


def random_window_predictions(frame: pd.DataFrame, *, caption: str | None = None) -> Figure:
    """Experiment R: free runs from the first value of each test window, over the truth."""
    kinds = [c.removesuffix("_pred") for c in frame.columns if c.endswith("_pred")]
    windows = frame.groupby("start")
    steps = int(windows.size().max())
    fig = new_figure((12, 2.3 * len(kinds) + 0.8), caption)
    axes = fig.subplots(len(kinds), 1, sharex=True, squeeze=False)[:, 0]
    for ax, kind in zip(axes, kinds):
        color = _color(kind)
        for _, window in windows:
            ax.plot(window.x, window.truth, color="0.8", lw=3, solid_capstyle="butt")
        for _, window in windows:
            ax.plot(window.x, window[f"{kind}_pred"], color=color, lw=1)
            ax.plot(window.x.iloc[0], window[f"{kind}_pred"].iloc[0], "o", color=color, ms=3)
        ax.set(ylabel=f"{kind.upper()}", ylim=(-1.45, 1.45))
        ax.legend(handles=[Line2D([], [], color="0.8", lw=3, label="sin(x), the truth"),
                           Line2D([], [], color=color, lw=1, marker="o", ms=3,
                                  label=f"{kind.upper()} free run (dot: its first prediction), one per test window")],
                  loc="lower left", fontsize="small", ncols=2)
    axes[0].set_title(f"Random windows (text 002): {steps}-step free runs from each of {windows.ngroups} test windows' "
                      "first value, first seed")
    axes[-1].set_xlabel("x")
    return fig


def forecast(history: np.ndarray, frame: pd.DataFrame, kind: str, seeds: list[int], context: int = 100, *,
             caption: str | None = None) -> Figure:
    """``rnnlab forecast``: the last ``context`` known values, the seeds' median forecast, their range."""
    fig = new_figure((9, 4), caption)
    ax = fig.add_subplot()
    known = history[-context:]
    start = len(history)
    ax.plot(np.arange(start - len(known), start), known, color="black", lw=1, label="series")
    steps = start - 1 + frame["step"].to_numpy()
    ax.fill_between(steps, frame["min"], frame["max"], alpha=0.25, color=_color(kind),
                    label=f"range over {seeds_text(seeds)}")
    ax.plot(steps, frame["median"], color=_color(kind), lw=1.5, label=f"{kind.upper()} forecast (median over seeds)")
    ax.axvline(start - 0.5, color="grey", ls=":", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("value (the series' units)")
    ax.set_title(f"{kind.upper()}: {len(frame)} steps after the last known value")
    ax.legend(loc="upper left", fontsize=8)
    return fig
