"""What every stage script does around its work: logging, threads, clean failure."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from rnnlab import cpu, io
from rnnlab import params as params_module
from rnnlab.errors import DivergedError, RnnlabError

# Stages draw files, never windows. Set by name rather than by matplotlib.use("Agg"): a stage
# that plots nothing then never imports matplotlib (0.13-0.5 s of every stage's start).
os.environ["MPLBACKEND"] = "Agg"


def load_params(path: str | Path = "params.yaml"):
    """Read params.yaml and pin torch to ``threads`` intra-op threads.

    On a busy 2-core machine torch's default (one thread per core) made the same training
    8-20x slower, and the thread count changes LSTM results in the 6th digit.
    """
    cpu.require_pinned(f"{Path(sys.argv[0]).name}")
    p = params_module.load(path)
    _READ.update(path=Path(path), data=_params_data(path))
    watch(sys.argv[0], *(m.__file__ for name, m in list(sys.modules.items())
                        if name.split(".")[0] == "rnnlab" and getattr(m, "__file__", None)))  # the code running
    pin_threads(p.threads)
    return p


# The files a stage's outputs are made from (its code, and the inputs it names with ``watch``), as
# they were when it started: checked again when it ends, as params.yaml is.
_INPUTS: dict[Path, tuple] = {}


def _signature(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return ("gone",)
    return st.st_ino, st.st_size, st.st_mtime_ns


def watch(*paths: str | Path) -> None:
    """Note files this stage reads: replaced or rewritten before it ends, they fail it (``run_stage``)."""
    for path in map(Path, paths):
        _INPUTS.setdefault(path, _signature(path))


def check_inputs_unchanged() -> None:
    """Refuse to end cleanly when an input or the code changed while the stage ran: DVC hashes its
    deps when the stage ends, so dvc.lock would record a csv (or source) the outputs were not made
    from, and `dvc status` would call them up to date."""
    changed = [path for path, signature in _INPUTS.items() if _signature(path) != signature]
    if changed:
        raise RnnlabError(f"{changed[0]} changed while this stage ran: its outputs were made from what it held before, "
                          "so DVC must not record them; run `dvc repro` again")


# The params file this stage read, and what it held: checked again when the stage ends.
_READ: dict = {}


def _params_data(path: Path):
    try:
        return params_module.read_yaml(Path(path).read_text(), path)
    except (OSError, RnnlabError) as exc:  # gone or broken since: a change too
        return f"unreadable ({exc})"


def check_params_unchanged() -> None:
    """Refuse to end cleanly when params.yaml changed while the stage ran.

    A ``dvc exp run -S`` started while a ``dvc repro`` runs rewrites params.yaml before DVC's
    locks refuse it (docs/reliability.md); DVC would then record the stage's outputs under the
    new values in dvc.lock, though they were made with the old ones. Failing here keeps
    dvc.lock as it was, so the next ``dvc repro`` runs the stage again with the new values.
    """
    if _READ and _params_data(_READ["path"]) != _READ["data"]:
        raise RnnlabError(f"{_READ['path']} changed while this stage ran (a `dvc exp run -S` or an edit): its outputs "
                          "were made with the old values, so DVC must not record them; run `dvc repro` again")


def pin_threads(threads: int) -> None:
    """torch's intra-op threads: set now if torch is loaded, else through OMP_NUM_THREADS, which
    torch reads when it starts. Stages that never need torch (generating csvs, drawing) then do
    not import it: 1.3 s of each such stage's start."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def add_training_outputs(parser, models: str) -> None:
    """The model a training stage trains and the outputs it writes, named the same way in every one.

    dvc.yaml's matrix stages pass neither the model nor a path made from it on the command line:
    a value of params.yaml in a shell command is code (``sine.models: ["a$(touch X)"]`` would run
    ``touch X``). The model comes from the stage's name, which DVC passes in the environment
    (``DVC_STAGE=train_sine@gru``), and each path's ``{model}`` is filled in here."""
    parser.add_argument("--model", help=f"{models}; default: the stage's matrix item (dvc repro sets DVC_STAGE)")
    parser.add_argument("--checkpoint", required=True, help="checkpoint to write (.pt); {model} is the model's name")
    parser.add_argument("--history", required=True, help="per-epoch history to write (.csv)")
    parser.add_argument("--timing", required=True, help="training seconds to write (.json, not a DVC output)")
    parser.add_argument("--params", default="params.yaml")


def parse_training_args(parser):
    """``parse_args``, with the model taken from DVC's stage name when not given, and put in the paths."""
    args = parser.parse_args()
    if args.model is None:
        stage = os.environ.get("DVC_STAGE", "")
        if "@" not in stage:
            parser.error("--model is needed outside dvc repro (DVC_STAGE names no matrix item)")
        args.model = stage.split("@", 1)[1]
    for name in ("checkpoint", "history", "timing"):
        setattr(args, name, getattr(args, name).replace("{model}", args.model))
    return args


def write_timing(path: str | Path, seconds: float) -> None:
    """Training seconds, for a person to read, in a file no stage declares (``timings/``,
    gitignored). A wall-clock time differs on every run: declared as an output or a metric, it
    would put a new hash into dvc.lock on every repro, leave git status dirty after a fresh
    clone's ``make repro``, and make every stage downstream of it rerun."""
    io.write_json(path, {"train_seconds": round(seconds, 2)})


# What the training stage trains (``training_run``), for the line a divergence prints.
_TRAINING: dict = {}


def training_run(experiment: str, kind: str, seeds: list[int], section: str) -> None:
    """Name what this stage trains: experiment, model, its replicas' seeds in order, and the
    params section of its recipe (``sine.train``). ``run_stage`` then turns a ``DivergedError`` of
    ``fit`` into one line naming all of them."""
    _TRAINING.update(experiment=experiment, kind=kind, seeds=list(seeds), section=section)


def diverged_line(exc: DivergedError) -> str:
    """One line: which run diverged (experiment, model, seed), when, on what, and what to change.
    With several seeds the first replica to diverge stops the whole stage (no replica is dropped:
    the seeds' median would silently be over fewer runs than params.yaml lists)."""
    if not _TRAINING:
        return str(exc)
    run, seeds = _TRAINING, _TRAINING["seeds"]
    seed = f"seed {seeds[exc.replica]}" if exc.replica < len(seeds) else f"replica {exc.replica}"
    return (f"{run['experiment']} {run['kind']} {seed} diverged at epoch {exc.epoch} ({exc.what}); likely cause: "
            f"{exc.cause}; lower {run['section']}.lr or set {run['section']}.grad_clip. Nothing was written")


ABSURD = 100.0  # a model's error this many times the predict-zero reference's is reported


def absurd_results(headline: dict[str, dict[str, float]], metric: str, reference: str, models) -> list[str]:
    """A warning line for each model whose ``metric`` is ``ABSURD`` times or more the reference's
    (finite, so not a divergence, but no forecast: saying 0 every step does better)."""
    base = headline.get(reference, {}).get(metric)
    if not base or base <= 0:
        return []
    return [f"warning: {kind} {metric} {headline[kind][metric]:.4g} is {headline[kind][metric] / base:.3g}x "
            f"the {reference} reference's {base:.4g}: a failed training (lr too high?), not a forecast"
            for kind in models if kind in headline and headline[kind].get(metric, 0) >= ABSURD * base]


INTERRUPTED = "interrupted (SIGINT): the stage did not finish; `dvc repro` runs it again"
TERMINATED = ("terminated (SIGTERM: the process that started it died, or asked it to stop): the stage did not finish; "
              "`dvc repro` runs it again")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Terminated(KeyboardInterrupt):
    """SIGTERM, taken the way Ctrl-C is: nothing half-written is left (``io.atomic_path``)."""


def _terminate(signum, frame):
    raise Terminated


def _parent_death_signal(signum: int) -> bool:
    """Ask Linux to send ``signum`` (0: nothing) when the process that started this one dies; False
    where there is no prctl (not Linux)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    return prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0


@contextlib.contextmanager
def dying_with_parent():
    """While a stage runs, the death of the process that started it terminates it (SIGTERM, handled
    as Ctrl-C is). Killing `dvc repro` left its stage training on, and the orphan later overwrote the
    checkpoint a `dvc checkout` had restored. SIGTERM, not SIGINT: a process started in the
    background by a non-interactive shell (`nohup dvc repro &`, CI) inherits SIGINT ignored, and
    Python keeps it so. A parent killed before the stage got this far (its imports) is not noticed."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    parent = os.getppid()
    try:
        if _parent_death_signal(signal.SIGTERM) and os.getppid() != parent:
            raise Terminated  # it died before the request (re-parented since): no signal will come
        yield
    finally:
        _parent_death_signal(0)
        signal.signal(signal.SIGTERM, previous)


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's ``main``; a user-input error becomes one line on stderr and exit 1, Ctrl-C
    (SIGINT) one line and exit 130, SIGTERM (also sent when the process that started the stage dies)
    one line and exit 143. Every output is written atomically (``io.atomic_path``), so either way no
    half-written file is left."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    _READ.clear()  # this run's reading and training, not a previous run's in the same process (tests)
    _TRAINING.clear()
    _INPUTS.clear()
    try:
        with dying_with_parent():
            main()
            check_params_unchanged()
            check_inputs_unchanged()
    except DivergedError as exc:
        print(f"error: {diverged_line(exc)}", file=sys.stderr)
        sys.exit(1)
    except RnnlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except Terminated:
        print(TERMINATED, file=sys.stderr)
        sys.exit(143)
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(130)
