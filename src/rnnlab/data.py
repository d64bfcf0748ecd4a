"""The noisy sine series: generation, reading it back, splitting and cutting into windows."""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rnnlab.errors import DataError, ParamsError, shorten
from rnnlab.io import BOM, read_bytes, read_json, read_text
from rnnlab.params import Params, SineData, WindowsData

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # torch is imported where tensors are made: reading and checking csvs needs none
    from torch import Tensor


def sine_grid(cfg: SineData) -> np.ndarray:
    """The x positions of the series: linspace(0, span_pi * pi, points)."""
    return np.linspace(0, cfg.span_pi * np.pi, cfg.points)


def noisy_sine(cfg: SineData) -> np.ndarray:
    """sin(x) + N(0, noise), drawn exactly as text 003 draws it (legacy global-seed stream)."""
    noise = np.random.RandomState(cfg.seed).normal(0, cfg.noise, cfg.points)
    with np.errstate(all="ignore"):  # an overflow is reported below, by the key that caused it
        values = np.sin(sine_grid(cfg)) + noise
    return finite_or_refuse(values, f"sine.data.span_pi {cfg.span_pi:g} and sine.data.noise {cfg.noise:g}")


def windows_series(cfg: WindowsData) -> np.ndarray:
    """Experiment W's series (text 001), float32: ``np.random.seed(0)``; sin over linspace plus the noise."""
    rng = np.random.RandomState(cfg.seed)
    with np.errstate(all="ignore"):  # an overflow is reported below, by the key that caused it
        values = (np.sin(np.linspace(0, cfg.x_max, cfg.points)) + rng.normal(0, cfg.noise, cfg.points)).astype(np.float32)
    return finite_or_refuse(values, f"windows.data.x_max {cfg.x_max:g} and windows.data.noise {cfg.noise:g}")


def finite_or_refuse(values: np.ndarray, made_by: str) -> np.ndarray:
    """A generated series, or the params that made it non-finite (span_pi 1e308 wrote 1000 nan lines)."""
    if not np.isfinite(values).all():
        raise ParamsError(f"{made_by} give values that are not finite numbers (an overflow); choose smaller ones")
    return values


def series_csv(values: np.ndarray) -> str:
    """One value per line with six decimals: text 003's ``np.savetxt(fmt='%.6f')``."""
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
    return np.array([_number(line, f"{source}:{k}") for k, line in enumerate(lines, start=1)])


GAPS_HELP = "set series.gaps: interpolate to fill gaps linearly"


def read_user_series(path: str | Path, column: str | None = None, gaps: str = "refuse") -> np.ndarray:
    """A user's univariate csv: one number per line, or ``column`` of a csv with a header row.

    Every defect is a ``DataError`` naming the file and line, found before anything is written.
    A missing value (an empty line, or an empty field of a full row: how pandas writes NaN) is
    refused with ``gaps="refuse"``; ``"interpolate"`` fills each run of them linearly between the
    nearest values before and after (``series.gaps``), and still refuses one at either end.
    """
    text = _decode(Path(path))
    if column is None:
        lines = text.splitlines()
        if not lines:
            raise DataError(f"{path}: empty file, expected one number per line")
        values = [_value(line, f"{path}:{k}", gaps) for k, line in enumerate(lines, start=1)]
        return fill_gaps(np.array(values), [k + 1 for k in range(len(lines))], str(path))
    return parse_column(text, column, source=str(path), gaps=gaps)


def fill_gaps(values: np.ndarray, lines: list[int], source: str) -> np.ndarray:
    """Missing values (NaN) filled linearly between their neighbours; one at either end is refused,
    naming its line (``lines[k]``: the file's line of ``values[k]``)."""
    missing = np.isnan(values)
    if not missing.any():
        return values
    for k in (0, len(values) - 1):
        if missing[k]:
            end = "first" if k == 0 else "last"
            raise DataError(f"{source}:{lines[k]}: missing value as the series' {end}: "
                            "series.gaps interpolate fills only gaps between two values")
    index = np.arange(len(values))
    filled = values.copy()
    filled[missing] = np.interp(index[missing], index[~missing], values[~missing])
    return filled


def _value(field: str, where: str, gaps: str) -> float:
    """A number, or NaN for an empty field when gaps are interpolated."""
    if not field.strip():
        if gaps == "interpolate":
            return math.nan
        raise DataError(f"{where}: missing value (an empty field); {GAPS_HELP}")
    return _number(field, where)


def parse_column(text: str, column: str, source: str = "<series>", gaps: str = "refuse") -> np.ndarray:
    """The values of one named column of a csv whose first row is a header."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise DataError(f"{source}: empty file, expected a header row naming column {column!r}")
    header = [name.strip() for name in rows[0]]
    if column not in header:
        raise DataError(f"{source}:1: no column {column!r} in the header ({', '.join(header)})")
    if header.count(column) > 1:  # the first was read, silently
        raise DataError(f"{source}:1: {header.count(column)} columns are named {column!r}; which one is meant? rename the others")
    if len(rows) == 1:
        raise DataError(f"{source}: a header and no values")
    index = header.index(column)
    values = []
    for k, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            what = "blank line" if not row else f"{len(row)} fields, the header has {len(header)}"
            raise DataError(f"{source}:{k}: {what}")
        values.append(_value(row[index], f"{source}:{k}", gaps))
    return fill_gaps(np.array(values), list(range(2, len(rows) + 1)), source)


MAX_CSV_BYTES = 64 << 20  # a series csv of more is refused: 3 million values of 20 characters


def csv_text(path: str | Path) -> str:
    """A csv's text, read as ``read_user_series`` reads it (UTF-8, a BOM dropped, size bounded)."""
    return _decode(Path(path))


def _decode(path: Path) -> str:
    """The file's text as UTF-8 (a leading byte-order mark dropped); missing, a folder, not a
    regular file, over ``MAX_CSV_BYTES`` or another encoding: one named error."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a csv file")
    raw = read_bytes(path, MAX_CSV_BYTES)
    try:
        return raw.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None


FLOAT32_MAX = float(np.finfo(np.float32).max)    # 3.4e38: beyond it a value is inf to the models
FLOAT32_TINY = float(np.finfo(np.float32).tiny)  # 1.2e-38: below it a value loses its digits (or is 0)


def _number(field: str, where: str) -> float:
    if not field.strip():
        raise DataError(f"{where}: blank line, expected a number")
    try:
        value = float(field)
    except ValueError:
        raise DataError(f"{where}: not a number: {shorten(field)!r}") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: not a finite number: {shorten(field.strip())!r}")
    if abs(value) > FLOAT32_MAX:  # the models compute in float32: this value would be inf to them
        raise DataError(f"{where}: {shorten(field.strip())} does not fit float32 (at most {FLOAT32_MAX:.4g} either way)")
    if value != 0 and abs(value) < FLOAT32_TINY:
        raise DataError(f"{where}: {shorten(field.strip())} is too small for float32 (it would round to "
                        f"0 or lose digits below {FLOAT32_TINY:.4g}); rescale the series")
    return value


def exact_csv(values: np.ndarray) -> str:
    """One value per line, each printed so that reading it back gives the same float64."""
    return "".join(f"{float(v)!r}\n" for v in values)


def check_length(values: np.ndarray, p: Params, source: str) -> None:
    """Enough points for one training window, a backtest horizon and a season, in the series' terms."""
    seq_len, train_fraction, horizon, season = p.seq_len, p.sine.data.train_fraction, p.series.horizon, p.series.season
    train = int(train_fraction * len(values))
    test = len(values) - train
    if train < seq_len + 1:
        raise DataError(
            f"{source}: {len(values)} points are too short for seq_len {seq_len}: the training part "
            f"(train_fraction {train_fraction}) has {train}, a window needs seq_len + 1 = {seq_len + 1}"
        )
    if train < 2 * seq_len + 2:  # else statsmodels failed in evaluate_sine, after all the training
        raise DataError(
            f"{source}: {len(values)} points are too short for seq_len {seq_len}: the references fit an "
            f"autoregression on seq_len lags with a constant, which needs a training part of 2 x seq_len + 2 = "
            f"{2 * seq_len + 2} points; it has {train} (train_fraction {train_fraction})"
        )
    if p.sine.data.validation_fraction > 0:
        _check_validation(train, validation_points(len(values), p.sine.data.validation_fraction), seq_len,
                          p.sine.data.validation_fraction, DataError, f"{source}: ")
    if test < horizon + 1:
        raise DataError(
            f"{source}: {len(values)} points leave a test part of {test}, too short for "
            f"series.horizon {horizon} (needs horizon + 1 = {horizon + 1})"
        )
    if season and train < 2 * season:
        raise DataError(
            f"{source}: the training part has {train} points, fewer than two seasons of "
            f"series.season {season} (the seasonal references need two)"
        )
    check_values(values, p, source)


SQUARE_MAX = math.sqrt(FLOAT32_MAX)  # 1.8e19: beyond it an error's square (the MSE) is inf in float32
OUTLIER_MADS = 1000   # a value this many median absolute deviations from the median is warned about
LARGE_SERIES = 100_000  # points beyond which the stage says up front what training will cost


def check_values(values: np.ndarray, p: Params, source: str) -> None:
    """What the float32 models can learn from: a training part that varies (a constant one has
    nothing to learn, and MASE would divide by its zero naive error), and, unscaled, values whose
    squared errors fit float32. Warned, not refused: outliers, and a series so long that
    training would take hours."""
    train = values[: int(p.sine.data.train_fraction * len(values))]
    if np.ptp(train) == 0:
        raise DataError(f"{source}: the training part is constant ({train[0]:g}): nothing to learn, "
                        "and MASE would divide by its zero naive error")
    peak = int(np.argmax(np.abs(values)))
    if p.series.scaling == "none" and abs(values[peak]) > SQUARE_MAX:
        raise DataError(f"{source}:{peak + 1 + (p.series.column is not None)}: {values[peak]:g} is too large for "
                        f"series.scaling none (errors' squares overflow float32 beyond {SQUARE_MAX:.3g}); "
                        "use series.scaling standard")
    if p.series.scaling == "none" and abs(values[peak]) < 1 / SQUARE_MAX:
        raise DataError(f"{source}: every value is below {1 / SQUARE_MAX:.3g} in size, too small for series.scaling "
                        "none (errors' squares vanish in float32: any model would look perfect); use series.scaling standard")
    median = float(np.median(values))
    spread = float(np.median(np.abs(values - median)))
    far = int(np.argmax(np.abs(values - median)))
    if spread > 0 and abs(values[far] - median) > OUTLIER_MADS * spread:
        log.warning("warning: %s:%d: %g lies %.3g median absolute deviations from the median %g (more than %d): "
                    "an outlier?", source, far + 1 + (p.series.column is not None), values[far],
                    abs(values[far] - median) / spread, median, OUTLIER_MADS)
    if len(values) > LARGE_SERIES:
        windows, per_epoch, epochs = training_steps(len(values), p)
        _, default_per_epoch, default_epochs = training_steps(1000, p)
        steps, default = per_epoch * epochs, default_per_epoch * default_epochs
        if p.series.recipe == "forecaster":
            fc = p.series.forecaster
            cost = (f"{windows} training windows (stride {fc.stride}) in minibatches of {fc.batch_size} = "
                    f"{per_epoch} optimizer steps an epoch, up to {epochs} epochs = {steps} per model")
        else:
            cost = f"{windows} training windows x {epochs} epochs = {steps} optimizer steps per model"
        log.warning("warning: %s: %d points: %s (%d models), %.0fx those of a 1000-point series", source, len(values),
                    cost, len(p.sine.models), steps / max(default, 1))


def training_steps(points: int, p: Params) -> tuple[int, int, int]:
    """(training windows, optimizer steps an epoch, epochs at most) for a series of ``points``: the
    texts' recipe walks non-overlapping windows one at a time; the forecaster's cuts windows every
    ``stride`` steps from the training part less its validation slice, in minibatches (a
    transform's first ``lag`` values, at most a season, are not counted)."""
    train = int(p.sine.data.train_fraction * points)
    if p.series.recipe != "forecaster":
        windows = train // (p.seq_len + 1)
        return windows, windows, p.sine.train.epochs_for(windows)
    fc = p.series.forecaster
    fitted = train - int(fc.validation_fraction * points)
    windows = max(0, (fitted - p.seq_len - 1) // fc.stride + 1)
    return windows, math.ceil(windows / fc.batch_size), fc.epochs


@dataclass(frozen=True)
class Scaler:
    """x -> (x - mean) / std, with mean and std of the training part only (no peeking at the
    test range); the identity when the series is used as it is (the texts')."""

    mean: float = 0.0
    std: float = 1.0

    @classmethod
    def fit(cls, values: np.ndarray, train_fraction: float, scaling: str) -> Scaler:
        if scaling == "none":
            return cls()
        train = values[: int(train_fraction * len(values))]
        std = float(train.std())
        if std == 0:
            raise DataError("series.scaling standard: the training part is constant (std 0)")
        if not FLOAT32_TINY < std < FLOAT32_MAX:
            raise DataError(f"series.scaling standard: the training part's std {std:g} does not fit float32")
        scaler = cls(float(train.mean()), std)
        largest = float(np.max(np.abs(scaler.scale(values))))
        if largest > SQUARE_MAX:
            raise DataError(f"series.scaling standard: a scaled value reaches {largest:g}; its squared error "
                            "overflows float32")
        return scaler

    @property
    def identity(self) -> bool:
        return self.mean == 0.0 and self.std == 1.0

    def scale(self, values: np.ndarray) -> np.ndarray:
        return values if self.identity else (values - self.mean) / self.std

    def unscale(self, preds: Tensor) -> Tensor:
        """Model outputs back in the series' units (float32, as the models compute)."""
        return preds if self.identity else (preds.double() * self.std + self.mean).float()

    def unscale_values(self, values: np.ndarray) -> np.ndarray:
        return values if self.identity else values * self.std + self.mean

    def to_json(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def read(cls, path: str | Path) -> Scaler:
        """prepare_series' scaling, checked: a std of 0 would turn every forecast into the mean."""
        saved = read_json(path)
        try:
            mean, std = float(saved["mean"]), float(saved["std"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{path}: not a scaling (a JSON object with a number mean and std); "
                            "run `dvc repro prepare_series`") from None
        if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
            raise DataError(f"{path}: mean {mean!r} and std {std!r} are no scaling (std must be above 0); "
                            "run `dvc repro prepare_series`")
        return cls(mean, std)


@dataclass(frozen=True)
class Split:
    """The series cut at ``int(train_fraction * N)``, as float32 tensors (text 003)."""

    train: Tensor  # (N_train,)
    test: Tensor   # (N_test,)

    @property
    def boundary(self) -> int:
        return len(self.train)


def split_boundary(points: int, train_fraction: float) -> int:
    """The first test index: ``int(train_fraction * points)``, leaving both parts 2 points or more."""
    boundary = int(train_fraction * points)
    if boundary < 2 or points - boundary < 2:
        raise DataError(
            f"{points} points split at {boundary}: both parts need at least 2 points "
            "(sine.data.points or sine.data.train_fraction too small)"
        )
    return boundary


def split_series(values: np.ndarray, train_fraction: float) -> Split:
    boundary = split_boundary(len(values), train_fraction)
    import torch

    series = torch.from_numpy(values).to(torch.float32)
    return Split(train=series[:boundary], test=series[boundary:])


def validation_points(points: int, validation_fraction: float) -> int:
    """How many of the training part's last points ``sine.data.validation_fraction`` holds out:
    ``int(validation_fraction * points)``, counted on the whole series as the split is."""
    return int(validation_fraction * points)


def _check_validation(train: int, held_out: int, seq_len: int, fraction: float, error: type, prefix: str = "") -> None:
    """A validation slice of 2 points or more (a rollout needs a start and a target) that leaves
    a training window."""
    key = f"sine.data.validation_fraction {fraction}"
    if held_out < 2:
        raise error(f"{prefix}{key} holds out {held_out} point(s) of the training part's {train}: "
                    "a validation rollout needs at least 2 (raise it, or 0 for none)")
    if train - held_out < seq_len + 1:
        raise error(f"{prefix}{key} holds out {held_out} of the training part's {train} points and leaves "
                    f"{train - held_out}, too few for one training window of seq_len + 1 = {seq_len + 1}")


@dataclass(frozen=True)
class Holdout:
    """The training part cut in two: the points the windows are cut from, then the validation
    slice (empty at ``validation_fraction`` 0, the texts')::

        series : x0 ............ x699 | x700 ...... x799 | x800 ...... x999
        part   : fit (windows)        | validation       | test                (0.8, 0.1, 1000 points)
    """

    fit: Tensor         # (N_fit,)
    validation: Tensor  # (N_val,), possibly empty


def hold_out(train: Tensor, points: int, validation_fraction: float, seq_len: int) -> Holdout:
    """Hold out the training part's last ``validation_points(points, validation_fraction)``;
    too small a slice, or one that leaves no training window, is an error naming the key."""
    held_out = validation_points(points, validation_fraction)
    if validation_fraction > 0:
        _check_validation(len(train), held_out, seq_len, validation_fraction, ParamsError)
    end = len(train) - held_out
    return Holdout(fit=train[:end], validation=train[end:])


@dataclass(frozen=True)
class WindowPairs:
    """Non-overlapping training windows, many-to-many (text 003)."""

    inputs: Tensor   # (N, seq_len, 1)
    targets: Tensor  # (N, seq_len, 1)


def stateful_windows(train: Tensor, seq_len: int) -> WindowPairs:
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
    return WindowPairs(inputs=windows[:, :-1], targets=windows[:, 1:])
