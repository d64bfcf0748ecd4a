"""What every stage script does around its work: logging, threads, clean failure."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib
import torch

from rnnlab import params as params_module
from rnnlab.errors import RnnlabError

matplotlib.use("Agg")


def load_params(path: str | Path = "params.yaml"):
    """Read params.yaml and pin torch to ``threads`` intra-op threads.

    On a busy 2-core machine torch's default (one thread per core) made the same training
    8-20x slower, and the thread count changes LSTM results in the 6th digit.
    """
    p = params_module.load(path)
    torch.set_num_threads(p.threads)
    return p


def add_training_outputs(parser) -> None:
    """The outputs every training stage writes, named the same way in every one."""
    parser.add_argument("--checkpoint", required=True, help="checkpoint to write (.pt)")
    parser.add_argument("--history", required=True, help="per-epoch history to write (.csv)")
    parser.add_argument("--timing", required=True, help="training seconds to write (.json)")
    parser.add_argument("--params", default="params.yaml")


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's ``main``; a user-input error becomes one line on stderr and exit 1."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        main()
    except RnnlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
