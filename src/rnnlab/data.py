"""The noisy sine series: generation, reading it back, splitting and cutting into windows."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rnnlab.errors import DataError, ParamsError
from rnnlab.io import read_text
from rnnlab.params import SineData


def sine_grid(cfg: SineData) -> np.ndarray:
    """The x positions of the series: linspace(0, span_pi * pi, points)."""
    return np.linspace(0, cfg.span_pi * np.pi, cfg.points)


def noisy_sine(cfg: SineData) -> np.ndarray:
    """sin(x) + N(0, noise), drawn exactly as seed 003 draws it (legacy global-seed stream)."""
    noise = np.random.RandomState(cfg.seed).normal(0, cfg.noise, cfg.points)
    return np.sin(sine_grid(cfg)) + noise


def series_csv(values: np.ndarray) -> str:
    """One value per line with six decimals: seed 003's ``np.savetxt(fmt='%.6f')``."""
    buffer = io.StringIO()
    np.savetxt(buffer, values, delimiter=",", fmt="%.6f")
    return buffer.getvalue()


def read_series(path: str | Path) -> np.ndarray:
    """Read a series csv: one finite number per line."""
    return parse_series(read_text(path), source=str(path))


def parse_series(text: str, source: str = "<series>") -> np.ndarray:
    """One finite number per line; any other line is an error naming the source and line."""
    lines = text.splitlines()
    if not lines:
        raise DataError(f"{source}: empty file, expected one number per line")
    values = []
    for number, line in enumerate(lines, start=1):
        try:
            value = float(line)
        except ValueError:
            raise DataError(f"{source}:{number}: expected one number per line, got {line!r}") from None
        if not math.isfinite(value):
            raise DataError(f"{source}:{number}: value is not finite ({line.strip()})")
        values.append(value)
    return np.array(values)


@dataclass(frozen=True)
class Split:
    """The series cut at ``int(train_fraction * N)``, as float32 tensors (seed 003)."""

    train: Tensor  # (N_train,)
    test: Tensor   # (N_test,)

    @property
    def boundary(self) -> int:
        return len(self.train)


def split_series(values: np.ndarray, train_fraction: float) -> Split:
    boundary = int(train_fraction * len(values))
    if boundary < 2 or len(values) - boundary < 2:
        raise DataError(
            f"{len(values)} points split at {boundary}: both parts need at least 2 points "
            "(sine.data.points or sine.data.train_fraction too small)"
        )
    series = torch.from_numpy(values).to(torch.float32)
    return Split(train=series[:boundary], test=series[boundary:])


@dataclass(frozen=True)
class Windows:
    """Non-overlapping training windows, many-to-many (seed 003)."""

    inputs: Tensor   # (N, seq_len, 1)
    targets: Tensor  # (N, seq_len, 1)


def stateful_windows(train: Tensor, seq_len: int) -> Windows:
    """Cut the training series into consecutive windows of ``seq_len + 1`` points.

    ::

        series:  x0 x1 ... x20 | x21 ... x41 | ...   windows of seq_len+1, no overlap
        input :  x0 .. x19     | x21 .. x40          target: the same window shifted by one
        rest  :  the last len % (seq_len+1) points are dropped

    Consecutive windows continue each other, which is what lets training carry the hidden
    state from one window into the next.
    """
    span = seq_len + 1
    count = len(train) // span
    if count == 0:
        raise ParamsError(
            f"seq_len {seq_len} leaves no training window: {len(train)} training points, "
            f"each window needs seq_len + 1 = {span}"
        )
    windows = train[: count * span].view(count, span, 1)  # (N, seq_len+1, 1)
    return Windows(inputs=windows[:, :-1], targets=windows[:, 1:])
