"""params.yaml -> frozen dataclasses, checked once at the boundary.

Every key is required and every unknown key is an error, both named by their dotted path
(``sine.train.lr``), so a typo in ``params.yaml`` or in ``dvc exp run -S`` fails at once
instead of silently falling back to a default. Library code receives these dataclasses,
never raw dicts.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path

from rnnlab.errors import DataError, ParamsError

# The largest model a params key may ask for. Far beyond the lab's (hidden 16-64, 1-2 layers) and
# far below what exhausts memory: hidden_size 100000 asked torch for 120 GB before any check.
# The same bounds hold for what a checkpoint claims, checked before anything is allocated.
MAX_HIDDEN = 4096
MAX_LAYERS = 16
MAX_WIDTH = 4096
MAX_WIDTHS = 16
MAX_PARAMS_BYTES = 1 << 20  # params.yaml is 6 KB


class Seeds(tuple):
    """The annotation of a ``seeds`` key: a list of torch seeds (``[0, 1, 2, 3, 4]``), or a count
    ``N`` meaning seeds 0 .. N-1 (``-S seeds=30``), so a study asks for many in one ``-S``. Either
    way the dataclass holds a plain tuple of ints; seed 0 first keeps the texts' run first."""


class Seed(int):
    """The annotation of a data ``seed`` key: numpy's (and torch's) generators take 0 .. 2**32 - 1
    from every caller here; a seed outside failed inside numpy with a traceback."""


MAX_DATA_SEED = 2 ** 32 - 1


@dataclass(frozen=True)
class SineData:
    points: int
    span_pi: float          # x = linspace(0, span_pi * pi, points)
    noise: float            # standard deviation of the Gaussian noise
    seed: Seed               # numpy seed of the noise (text 003 uses 42)
    train_fraction: float
    # The training part's last validation_fraction * points are held out: rolled out every epoch,
    # never trained on (0: none, the texts'). A default only for code that builds this directly:
    # params.yaml must still name the key.
    validation_fraction: float = 0.0

    def check(self, at: str) -> None:
        _positive(self.span_pi, f"{at}.span_pi")
        _check_noisy_series(self, at)
        if not 0 <= self.validation_fraction < self.train_fraction:
            raise ParamsError(f"{at}.validation_fraction must be >= 0 and below {at}.train_fraction "
                              f"({self.train_fraction}), got {self.validation_fraction}")


@dataclass(frozen=True)
class ModelParams:
    hidden_size: int
    num_layers: int
    mlp_widths: tuple[int, ...]

    def check(self, at: str) -> None:
        check_sizes(self.hidden_size, self.num_layers, self.mlp_widths, at, ParamsError)


def check_sizes(hidden_size: int, num_layers: int, mlp_widths: tuple[int, ...], at: str, error: type) -> None:
    """A model's sizes within (0, MAX_*]: named by ``at`` (a params section, or a checkpoint)."""
    _positive(hidden_size, f"{at}.hidden_size", error)
    _positive(num_layers, f"{at}.num_layers", error)
    _at_most(hidden_size, MAX_HIDDEN, f"{at}.hidden_size", error)
    _at_most(num_layers, MAX_LAYERS, f"{at}.num_layers", error)
    _at_most(len(mlp_widths), MAX_WIDTHS, f"{at}.mlp_widths (layers)", error)
    for k, width in enumerate(mlp_widths):
        _positive(width, f"{at}.mlp_widths[{k}]", error)
        _at_most(width, MAX_WIDTH, f"{at}.mlp_widths[{k}]", error)


def _at_most(value, most, key: str, error: type = ParamsError) -> None:
    if value > most:
        raise error(f"{key} must be at most {most}, got {value}")


OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "onecycle")


@dataclass(frozen=True)
class Training:
    optimizer: str
    lr: float
    lr_schedule: str          # constant, or onecycle: warm up to lr, anneal to ~0 by the last epoch
    epochs: int
    grad_clip: float | None   # max gradient norm per replica; null: no clipping (the seeds')

    def check(self, at: str) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ParamsError(f"{at}.optimizer: unknown optimizer {self.optimizer!r}; choose from {list(OPTIMIZERS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ParamsError(f"{at}.lr_schedule: unknown schedule {self.lr_schedule!r}; choose from {list(LR_SCHEDULES)}")
        _positive(self.lr, f"{at}.lr")
        _positive(self.epochs, f"{at}.epochs")
        if self.grad_clip is not None:
            _positive(self.grad_clip, f"{at}.grad_clip")


@dataclass(frozen=True)
class SineTraining(Training):
    steps: int | None         # the fair protocol: an optimizer-step budget instead of `epochs`
    # Scheduled sampling: the chance, reached at the last epoch, that a training input is the model's
    # own previous prediction (0: teacher forcing, the texts'). Defaulted as SineData.validation_fraction.
    sampling: float = 0.0
    # The closed-loop objective: the last `horizon` predictions of each window are a free run (each
    # fed back as the next input, the gradient through it: closed_loop.py). null or 0: teacher
    # forcing (the texts'). Defaulted as `sampling`.
    horizon: int | None = None

    def check(self, at: str) -> None:
        super().check(at)
        if self.steps is not None:
            _positive(self.steps, f"{at}.steps")
        if not 0 <= self.sampling <= 1:
            raise ParamsError(f"{at}.sampling must be in [0, 1], got {self.sampling}")
        if self.horizon is not None and self.horizon < 0:
            raise ParamsError(f"{at}.horizon must be >= 0 (0 or null: teacher forcing), got {self.horizon}")
        if self.closed_loop and self.sampling > 0:
            raise ParamsError(f"{at}.horizon and {at}.sampling are two ways to feed predictions back; set one")

    @property
    def closed_loop(self) -> bool:
        """Does a window end in a free run with the gradient through it (horizon > 1; a horizon
        of 1 is teacher forcing: its one prediction reads the true input)?"""
        return (self.horizon or 0) > 1

    def epochs_for(self, steps_per_epoch: int) -> int:
        """The texts' fixed epochs, or as many epochs as spend ``steps`` optimizer steps (rounded
        to whole epochs: every window of an epoch is seen equally often)."""
        if self.steps is None:
            return self.epochs
        return max(1, round(self.steps / steps_per_epoch))


# The model registry's names (models.MODELS; tests/test_params.py keeps the two equal). Written
# out here so that reading params does not import the model code, which every stage would then
# depend on.
MODEL_NAMES = ("mlp", "rnn", "lstm", "gru")
RECURRENT_NAMES = ("rnn", "lstm", "gru")


@dataclass(frozen=True)
class Sine:
    data: SineData
    models: tuple[str, ...]
    model: ModelParams
    train: SineTraining

    def check(self, at: str, allowed: tuple[str, ...] = MODEL_NAMES) -> None:
        # Every stage reads the whole of params.yaml, so a bad name stops whichever stage runs
        # first, before anything trains, not only the stage of the misnamed model.
        if not self.models:
            raise ParamsError(f"{at}.models is empty")
        if len(set(self.models)) != len(self.models):
            raise ParamsError(f"{at}.models lists a model twice: {list(self.models)}")
        for name in self.models:
            if name not in MODEL_NAMES:
                raise ParamsError(f"{at}.models: unknown model {name!r}; choose from {sorted(MODEL_NAMES)}")
            if name not in allowed:
                raise ParamsError(f"{at}.models: {name!r} has no recurrent state; choose rnn, lstm or gru")


SCALINGS = ("none", "standard")
GAPS = ("refuse", "interpolate")
TRANSFORMS = ("none", "diff", "seasonal_diff", "log", "ar_residual")
RECIPES = ("texts", "forecaster")


@dataclass(frozen=True)
class ForecasterRecipe:
    """Experiment S's forecaster recipe (``series.recipe: forecaster``): overlapping windows in
    shuffled minibatches, early stopping on a validation slice, the best weights restored."""

    stride: int                 # steps between the starts of consecutive training windows (1: every window)
    batch_size: int             # windows per optimizer step, shuffled every epoch
    lr: float                   # Adam's rate
    epochs: int                 # at most
    patience: int               # stop a replica when its best validation epoch is more than this old
    validation_fraction: float  # the training part's last points held out to stop on

    def check(self, at: str) -> None:
        for key in ("stride", "batch_size", "lr", "epochs", "patience"):
            _positive(getattr(self, key), f"{at}.{key}")
        if not 0 < self.validation_fraction < 0.5:
            raise ParamsError(f"{at}.validation_fraction must be in (0, 0.5), got {self.validation_fraction}")
GENERATED_SINE = "data/sine/sindata_1000.csv"  # generate_sine's out (dvc.yaml)


@dataclass(frozen=True)
class Series:
    """Experiment S's input: the generated sine, or any univariate csv, and how it is judged."""

    csv_path: str               # one number per line, or a csv with a header row (name the column)
    column: str | None          # the header's column to read; None: no header, one number per line
    scaling: str                # none (the texts'), or standard: by the training part's mean and std
    season: int | None          # points per season, for the seasonal references; None: not seasonal
    arima_order: tuple[int, ...] | None  # (p, d, q) of the ARIMA reference; None: chosen by AIC on the training part
    origins: int                # backtest: forecast origins spread over the test range
    horizon: int                # backtest: steps forecast from each origin
    # Defaults only for code that builds this directly (as SineData.validation_fraction's).
    gaps: str = "refuse"        # an empty csv field: refuse (named by file and line), or interpolate linearly
    transform: str = "none"     # none, diff, seasonal_diff (by season) or log; undone for every metric
    recipe: str = "texts"       # texts: the texts' training; forecaster: ``forecaster`` below
    forecaster: ForecasterRecipe | None = None

    def check(self, at: str) -> None:
        if self.scaling not in SCALINGS:
            raise ParamsError(f"{at}.scaling: unknown scaling {self.scaling!r}; choose from {list(SCALINGS)}")
        for key, allowed in (("gaps", GAPS), ("transform", TRANSFORMS), ("recipe", RECIPES)):
            if getattr(self, key) not in allowed:
                raise ParamsError(f"{at}.{key}: unknown {key} {getattr(self, key)!r}; choose from {list(allowed)}")
        if self.transform != "none" and self.recipe != "forecaster":
            raise ParamsError(f"{at}.transform {self.transform} needs {at}.recipe: forecaster (the texts' recipe "
                              "trains on the series itself)")
        if self.transform == "seasonal_diff" and self.season is None:
            raise ParamsError(f"{at}.transform seasonal_diff needs {at}.season")
        if self.recipe == "forecaster" and self.forecaster is None:
            raise ParamsError(f"{at}.recipe forecaster needs {at}.forecaster")
        if self.season is not None and self.season < 2:
            raise ParamsError(f"{at}.season must be null or >= 2, got {self.season}")
        if self.arima_order is not None and (len(self.arima_order) != 3 or min(self.arima_order) < 0):
            raise ParamsError(f"{at}.arima_order must be [p, d, q] of integers >= 0, got {list(self.arima_order)}")
        _positive(self.origins, f"{at}.origins")
        _positive(self.horizon, f"{at}.horizon")

    @property
    def is_generated_sine(self) -> bool:
        """Whether S runs on generate_sine's series, the only one with a known clean signal."""
        return Path(self.csv_path) == Path(GENERATED_SINE)

    @property
    def name(self) -> str:
        """How logs call the series: "sine" for generate_sine's, else the csv's file name (``sales``)."""
        return "sine" if self.is_generated_sine else Path(self.csv_path).stem


def _range(value: tuple, key: str, low=None) -> None:
    if len(value) != 2 or value[0] > value[1]:
        raise ParamsError(f"{key} must be [min, max] with min <= max, got {list(value)}")
    if low is not None and value[0] < low:
        raise ParamsError(f"{key} must start at {low} or more, got {list(value)}")


@dataclass(frozen=True)
class BallGenerate:
    rows: int
    start: tuple[int, ...]    # [min, max] first position, uniform integer
    speed_max: int            # speed: a non-zero integer in [-speed_max, speed_max]
    length: tuple[int, ...]   # [min, max] positions per row, uniform integer
    seed: Seed

    def check(self, at: str) -> None:
        _positive(self.rows, f"{at}.rows")
        _positive(self.speed_max, f"{at}.speed_max")
        _range(self.start, f"{at}.start")
        _range(self.length, f"{at}.length", low=2)


@dataclass(frozen=True)
class BallPrepare:
    chunk_lines: int
    scale: float              # positions are divided by this (text 004: 50)
    split: tuple[float, ...]  # cut points of each chunk's permutation: [0.6, 0.8] = 60/20/20
    seed: Seed                 # torch.random.manual_seed at the start of preparation

    def check(self, at: str) -> None:
        _positive(self.chunk_lines, f"{at}.chunk_lines")
        _positive(self.scale, f"{at}.scale")
        if len(self.split) != 2 or not 0 < self.split[0] < self.split[1] < 1:
            raise ParamsError(f"{at}.split must be two cut points 0 < a < b < 1, got {list(self.split)}")


MONITORS = {"val_accuracy": "max", "val_mae": "min"}
BALL_ENGINES = ("torch", "compiled")


@dataclass(frozen=True)
class BallTraining(Training):
    batch_size: int
    shuffle: bool             # false: minibatches in shard order (text 004); true: reshuffled every epoch
    min_history: int | None   # null: whole rows only; k: also every prefix with at least k inputs
    patience: int             # stop when the best epoch is more than this many epochs old
    monitor: str              # what "best" means: val_accuracy (text 004) or val_mae
    seeds: Seeds              # one replica per torch seed (manual_seed before each is built); the first seeds the shuffle
    engine: str               # torch: nn.RNN/LSTM/GRU on packed batches, bitwise text 004's; compiled: kernels.py

    def check(self, at: str) -> None:
        super().check(at)
        if self.engine not in BALL_ENGINES:
            raise ParamsError(f"{at}.engine: unknown engine {self.engine!r}; choose from {list(BALL_ENGINES)}")
        _positive(self.batch_size, f"{at}.batch_size")
        _positive(self.patience, f"{at}.patience")
        if self.min_history is not None:
            _positive(self.min_history, f"{at}.min_history")
        if self.monitor not in MONITORS:
            raise ParamsError(f"{at}.monitor: unknown monitor {self.monitor!r}; choose from {list(MONITORS)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ParamsError(f"{at}.seeds must be a non-empty list without repeats, got {list(self.seeds)}")
        if self.engine == "torch" and len(self.seeds) > 1:
            raise ParamsError(f"{at}.seeds: the torch engine trains one seed (text 004's loop), got "
                              f"{list(self.seeds)}; add -S {at}.engine=compiled to train several at once")


@dataclass(frozen=True)
class Ball:
    csv_path: str             # the csv the pipeline learns from: generated, or your own
    generate: BallGenerate
    prepare: BallPrepare
    models: tuple[str, ...]
    model: ModelParams
    train: BallTraining

    def check(self, at: str) -> None:
        Sine.check(self, at, RECURRENT_NAMES)  # the MLP cannot read a variable-length history


@dataclass(frozen=True)
class WindowsData:
    points: int
    x_max: float              # data = sin(linspace(0, x_max, points)) + N(0, noise)
    noise: float
    seed: Seed                 # numpy seed of the noise (text 001: 0)
    train_fraction: float

    def check(self, at: str) -> None:
        _positive(self.x_max, f"{at}.x_max")
        _check_noisy_series(self, at)


@dataclass(frozen=True)
class Windows:
    data: WindowsData
    time_step: int            # values per window (text 001: 10)
    models: tuple[str, ...]
    model: ModelParams
    train: Training

    def check(self, at: str) -> None:
        _positive(self.time_step, f"{at}.time_step")
        Sine.check(self, at)


@dataclass(frozen=True)
class RandomWindows:
    steps: int                    # points per window (text 002: 50 -> 49 inputs)
    span: float                   # a window covers sin over [start, start + span]
    start_max: int                # start = randint(start_max)
    seed: Seed                     # numpy seed of the random starts
    test_starts: tuple[float, ...]  # the fixed windows the free run is scored on
    iterations_per_epoch: int     # one history row (and one test) per this many iterations
    init_std: float               # recurrent parameters drawn from N(0, init_std)
    models: tuple[str, ...]
    model: ModelParams
    train: Training               # epochs x iterations_per_epoch = iterations

    def check(self, at: str) -> None:
        if self.steps < 3:
            raise ParamsError(f"{at}.steps must be at least 3 (inputs and targets of 2 or more), got {self.steps}")
        _positive(self.span, f"{at}.span")
        _positive(self.start_max, f"{at}.start_max")
        _positive(self.iterations_per_epoch, f"{at}.iterations_per_epoch")
        _positive(self.init_std, f"{at}.init_std")
        if not self.test_starts:
            raise ParamsError(f"{at}.test_starts is empty")
        Sine.check(self, at, RECURRENT_NAMES)  # a carried state needs a recurrent model


@dataclass(frozen=True)
class Analysis:
    window: int               # steps of the training series the gradient is traced back through

    def check(self, at: str) -> None:
        _positive(self.window, f"{at}.window")


@dataclass(frozen=True)
class Params:
    seq_len: int            # input steps per training window (text 003: 20)
    seeds: Seeds            # one replica per torch seed, each set after the data are cut; N: seeds 0 .. N-1
    threads: int            # torch intra-op threads in every stage
    series: Series
    sine: Sine
    ball: Ball
    windows: Windows
    random_windows: RandomWindows
    analysis: Analysis

    def check(self, at: str) -> None:
        _positive(self.seq_len, "seq_len")
        _positive(self.threads, "threads")
        if self.series.recipe == "forecaster":  # recipe.py trains teacher-forced minibatches: neither is read
            for key, value in (("horizon", self.sine.train.horizon), ("sampling", self.sine.train.sampling)):
                if value:
                    raise ParamsError(f"sine.train.{key} {value} has no effect under series.recipe: forecaster (its "
                                      f"windows train teacher-forced in minibatches); set sine.train.{key} back, or "
                                      "use series.recipe: texts")
        if (self.sine.train.horizon or 0) > self.seq_len:
            raise ParamsError(f"sine.train.horizon ({self.sine.train.horizon}) must be at most seq_len ({self.seq_len}): "
                              "the free run is the end of one training window")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ParamsError(f"seeds must be a non-empty list without repeats, got {list(self.seeds)}")


def _check_noisy_series(cfg, at: str) -> None:
    """The keys every noisy-sine data section shares: points, noise, train_fraction."""
    _positive(cfg.points, f"{at}.points")
    if cfg.noise < 0:
        raise ParamsError(f"{at}.noise must be >= 0, got {cfg.noise}")
    if not 0 < cfg.train_fraction < 1:
        raise ParamsError(f"{at}.train_fraction must be in (0, 1), got {cfg.train_fraction}")


def _positive(value, key: str, error: type = ParamsError) -> None:
    if not value > 0:
        raise error(f"{key} must be > 0, got {value}")


MAX_SEEDS = 1024        # replicas of one model
MAX_SEED = 2 ** 63 - 1  # torch seeds are taken modulo 2**64, numpy's below 2**64: one name per seed


def _convert(value, hint, key: str):
    """Coerce one YAML value to the annotated type, or say which key is wrong."""
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if hint is Seeds:  # a count N is seeds 0 .. N-1
        count = value if isinstance(value, int) and not isinstance(value, bool) else None
        if count is not None:
            _positive(count, key)
        elif not isinstance(value, list | tuple):
            raise ParamsError(f"{key} must be a list of seeds or a count, got {value!r}")
        if (count or len(value)) > MAX_SEEDS:  # each is a whole model in memory; a checkpoint holds at most this many
            raise ParamsError(f"{key}: at most {MAX_SEEDS} seeds, got {count or len(value)}")
        seeds = tuple(range(count)) if count else _convert(value, tuple[int, ...], key)
        if bad := [s for s in seeds if not 0 <= s <= MAX_SEED]:
            # torch.manual_seed takes a seed modulo 2**64: -1 and 18446744073709551615 would be one replica twice
            raise ParamsError(f"{key}: a seed is an integer from 0 to {MAX_SEED}, got {bad[0]}")
        return seeds
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ParamsError(f"{key} must be a list, got {value!r}")
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        return tuple(_convert(v, item, f"{key}[{k}]") for k, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(value, hint, key)
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{key} must be true or false, got {value!r}")
        return value
    if hint is Seed:
        value = _convert(value, int, key)
        if not 0 <= value <= MAX_DATA_SEED:
            raise ParamsError(f"{key}: a seed is an integer from 0 to {MAX_DATA_SEED}, got {value}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{key} must be an integer, got {value!r}")
        return value
    if hint is float:
        # PyYAML reads "5e-4" (no dot) as a string; accept what float() accepts.
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise ParamsError(f"{key} must be a finite number, got {value!r}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise ParamsError(f"{key} must be a string, got {value!r}")
        return value
    raise TypeError(f"no converter for {hint} at {key}")  # a bug in this module, not in params


def _build(cls, data, at: str):
    where = at or "the top level"
    if not isinstance(data, dict):
        raise ParamsError(f"{where} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    prefix = f"{at}." if at else ""
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ParamsError(f"unknown key {prefix}{unknown[0]} (known under {where}: {', '.join(names)})")
    missing = [n for n in names if n not in data]
    if missing:
        raise ParamsError(f"missing key {prefix}{missing[0]}")
    obj = cls(**{n: _convert(data[n], hints[n], f"{prefix}{n}") for n in names})
    obj.check(at)
    return obj


def parse(data: dict, cls=Params):
    """Build and validate a params dataclass from a plain mapping."""
    return _build(cls, data, "")


def read_yaml(text: str, path: str | Path):
    """params.yaml's data, read as DVC reads it: ruamel.yaml's safe loader, YAML 1.2 (DVC's
    ``dvc.utils.serialize.parse_yaml``). PyYAML reads YAML 1.1, where ``024`` is 20, ``1:20`` is
    80 and ``yes`` is true, while DVC (and dvc.lock, ``dvc params diff``) read 24, "1:20" and
    "yes": the stage would train on other values than the experiment records. A duplicate key,
    which DVC refuses, is refused here too, naming its line."""
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe").load(text)
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        key = text.splitlines()[mark.line][mark.column:].split(":")[0].strip() if mark is not None else "?"
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ParamsError(f"{path}{line}: duplicate key {key!r} (DVC refuses it; keep one)") from None
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ParamsError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None


def load(path: str | Path = "params.yaml", cls=Params):
    """Read ``params.yaml``; every problem is a ``ParamsError`` naming the file and key."""
    from rnnlab.io import read_text  # a device (/dev/zero) or a huge file is refused, not read without end

    path = Path(path)
    try:
        text = read_text(path, limit=MAX_PARAMS_BYTES)
    except DataError as exc:
        raise ParamsError(str(exc)) from None
    data = read_yaml(text, path)
    try:
        return parse(data, cls)
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None
