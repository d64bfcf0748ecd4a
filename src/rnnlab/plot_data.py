"""Narrow tables for `dvc plots`: one long csv per top-level plot in dvc.yaml.

DVC copies every column of a csv into each point it plots (and again per revision), so a plot read
from a wide file (a history with per-seed columns, predictions of every model side by side) costs
every column for every point. Each table here holds only what its plot draws, one row per point:

    epoch,model,test_loss          x, the model's display name, y
    1,MLP,0.5289
    1,RNN,0.5281

or, where one model draws several curves, x, curve (``LSTM forget``: model and curve in one), y.
Empty cells (the windows' one-step predictions before the first full window) are rows left out, so
they show as gaps, never as 0. Values keep 4 significant digits: the plot's resolution, not a result.
Curves are reduced to what a 560-pixel plot can show: one longer than ``MAX_POINTS`` keeps the
lowest and the highest value of every bin of consecutive points, and its first and last point (the
envelope a line through every point would draw: the ball RNN's 2765 epochs, the 199 test steps), and
the ball scatter draws per actual position and model the mean prediction and the range of the 2000
test predictions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from rnnlab import io

# The legend's names; "truth" is the target series of a prediction plot.
NAMES = {"mlp": "MLP", "rnn": "RNN", "lstm": "LSTM", "gru": "GRU", "truth": "truth"}
FLOAT_FORMAT = "%.4g"
MAX_POINTS = 150  # per curve: a 560-pixel plot, and `dvc plots diff --json` of two revisions under 1 MB


def display_name(kind: str) -> str:
    """``gru`` -> ``GRU``; ``ValueError`` for a name the legend has no colour for."""
    if kind not in NAMES:
        raise ValueError(f"unknown model {kind!r}; choose from {sorted(NAMES)}")
    return NAMES[kind]


def _rows(x: str, y: str, parts: Iterable[tuple[dict[str, str], pd.Series, pd.Series]]) -> pd.DataFrame:
    frames = []
    for labels, xs, ys in parts:
        frame = pd.DataFrame({x: xs.to_numpy(), **labels, y: ys.to_numpy()})
        frames.append(envelope(frame.dropna(subset=[y]).reset_index(drop=True), y))
    return pd.concat(frames, ignore_index=True)


def envelope(frame: pd.DataFrame, y: str, max_points: int = MAX_POINTS) -> pd.DataFrame:
    """At most ``max_points`` rows of ``frame`` (in order): the rows of the lowest and the highest ``y``
    in every bin of consecutive rows; the whole frame if it is short enough."""
    if len(frame) <= max_points:
        return frame
    size = math.ceil(2 * len(frame) / max_points)  # rows per bin, two kept from each
    bins = pd.Series(range(len(frame)), index=frame.index) // size
    values = frame[y]
    keep = set(values.groupby(bins).idxmin().dropna()) | set(values.groupby(bins).idxmax().dropna())
    keep |= {frame.index[0], frame.index[-1]}
    return frame.loc[sorted(keep)]


def histories(frames: Mapping[str, pd.DataFrame], x: str, y: str) -> pd.DataFrame:
    """Column ``y`` of every model's history against ``x``: columns x, model, y."""
    return _rows(x, y, (({"model": display_name(kind)}, frame[x], frame[y]) for kind, frame in frames.items()))


def series(frame: pd.DataFrame, x: str, columns: Mapping[str, str], y: str = "value") -> pd.DataFrame:
    """Wide columns of one table as rows: ``columns`` maps a column to its model (or ``truth``)."""
    return _rows(x, y, (({"model": display_name(kind)}, frame[x], frame[column]) for column, kind in columns.items()))


def spread(frame: pd.DataFrame, x: str, columns: Mapping[str, str], y: str) -> pd.DataFrame:
    """Per value of ``x`` (rounded to 3 decimals) and model: the mean, min and max of its column.
    Columns x, model, y (the mean), y_min, y_max."""
    key = frame[x].round(3)
    parts = []
    for column, kind in columns.items():
        stats = frame[column].groupby(key).agg(["mean", "min", "max"])
        parts.append(pd.DataFrame({
            x: stats.index, "model": display_name(kind), y: stats["mean"].to_numpy(),
            f"{y}_min": stats["min"].to_numpy(), f"{y}_max": stats["max"].to_numpy(),
        }))
    return pd.concat(parts, ignore_index=True)


def curves(frame: pd.DataFrame, x: str, columns: Mapping[str, tuple[str, str]], y: str) -> pd.DataFrame:
    """Several curves per model: ``columns`` maps a column to (model, curve name). Columns x, curve, y,
    the curve named ``<model> <name>`` (``LSTM forget``): the template splits it into colour and dash."""
    parts = (({"curve": f"{display_name(kind)} {name}"}, frame[x], frame[column]) for column, (kind, name) in columns.items())
    return _rows(x, y, parts)


def write(path: str | Path, table: pd.DataFrame) -> None:
    io.write_text(path, table.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n"))
