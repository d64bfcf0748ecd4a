"""What every stage script does around its work: logging, threads, clean failure."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

from rnnlab import io
from rnnlab import params as params_module
from rnnlab.errors import RnnlabError

matplotlib.use("Agg")


def load_params(path: str | Path = "params.yaml"):
    """Read params.yaml and pin torch to ``threads`` intra-op threads.

    On a busy 2-core machine torch's default (one thread per core) made the same training
    8-20x slower, and the thread count changes LSTM results in the 6th digit.
    """
    p = params_module.load(path)
    pin_threads(p.threads)
    return p


def pin_threads(threads: int) -> None:
    """torch's intra-op threads: set now if torch is loaded, else through OMP_NUM_THREADS, which
    torch reads when it starts. Stages that never need torch (generating csvs, drawing) then do
    not import it: 1.3 s of each such stage's start."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def add_training_outputs(parser) -> None:
    """The outputs every training stage writes, named the same way in every one."""
    parser.add_argument("--checkpoint", required=True, help="checkpoint to write (.pt)")
    parser.add_argument("--history", required=True, help="per-epoch history to write (.csv)")
    parser.add_argument("--timing", required=True, help="training seconds to write (.json, not a DVC output)")
    parser.add_argument("--params", default="params.yaml")


def write_timing(path: str | Path, seconds: float) -> None:
    """Training seconds, for a person to read, in a file no stage declares (``timings/``,
    gitignored). A wall-clock time differs on every run: declared as an output or a metric, it
    would put a new hash into dvc.lock on every repro, leave git status dirty after a fresh
    clone's ``make repro``, and make every stage downstream of it rerun."""
    io.write_json(path, {"train_seconds": round(seconds, 2)})


INTERRUPTED = "interrupted (SIGINT): the stage did not finish; `dvc repro` runs it again"


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's ``main``; a user-input error becomes one line on stderr and exit 1, Ctrl-C
    (SIGINT) one line and exit 130. Every output is written atomically (``io.atomic_path``), so
    either way no half-written file is left."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        main()
    except RnnlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(130)
