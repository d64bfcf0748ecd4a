"""Progress you can watch: a live bar on a terminal, a few plain lines in a log, and the
history csv rewritten while training runs, so ``dvc plots show`` draws the curves so far."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm import tqdm

from rnnlab import io
from rnnlab.training import FitResult

log = logging.getLogger(__name__)

OnEpoch = Callable[[int, dict], None]


class Progress:
    """Per-epoch progress with the current losses.

    On a terminal this is a tqdm bar with the losses as postfix. In a captured log (CI,
    ``dvc queue`` workers) a redrawn bar is noise, so it logs one line every tenth of
    ``total``, at least once a minute on long runs, and the last state at ``close()``.

    With ``patience`` (early stopping) ``total`` is only the ceiling: training ends
    ``patience`` epochs after its best one, so each ``update(done, best=...)`` moves the total
    to the epoch it would stop at, ``best + patience + 1``, and says so: ``best=2664 stop<=2765``.
    """

    quiet_seconds = 60.0

    def __init__(self, total: int, desc: str, stream=None, patience: int | None = None):
        self.ceiling, self.desc, self.patience = total, desc, patience
        # EarlyStopping's best epoch starts at 0: with no better epoch, it stops after patience + 1
        self.total = total if patience is None else min(total, patience + 1)
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.perf_counter()
        self.bar = tqdm(total=self.total, desc=desc, file=self.stream, leave=True) if self.interactive else None
        self.every = max(1, total // 10)  # a tenth of the ceiling: a limit that moves would space lines unevenly
        self.next_line, self.last_line = self.every, self.started
        self.unprinted: str | None = None

    def update(self, done: int, best: int | None = None, **values: float) -> None:
        """``done`` units so far; ``best``: the early-stopping best epoch so far (with ``patience``)."""
        stopping = []
        if self.patience is not None and best is not None:
            self.total = min(self.ceiling, best + self.patience + 1)
            stopping = [f"best={best}", f"stop<={self.total}"]
        text = " ".join(stopping + [f"{k}={v:.4g}" for k, v in values.items()])
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.set_postfix_str(text, refresh=False)  # before update(), which redraws: total and text agree
            self.bar.update(done - self.bar.n)
            return
        line = f"{self.desc}: {done}/{self.total} {text}"
        now = time.perf_counter()
        if done >= self.next_line or now - self.last_line > self.quiet_seconds:
            print(line, file=self.stream, flush=True)
            self.next_line = (done // self.every + 1) * self.every
            self.last_line, self.unprinted = now, None
        else:
            self.unprinted = line

    def fit_callback(self, test: str, every: int = 1):
        """An ``on_epoch`` for ``fit()``: show the medians over seeds of the train loss and of
        the ``test`` column; an epoch counts ``every`` units of this progress."""

        def on_epoch(epoch: int, row: dict) -> None:
            self.update(epoch * every, train=float(np.median(row["train_loss"].numpy())),
                        test=float(np.median(row[test].numpy())))

        return on_epoch

    def close(self) -> float:
        """Finish the bar; return the seconds since it started."""
        if self.bar is not None:
            self.bar.close()
        elif self.unprinted is not None:  # where it ended, also when early stopping ended it
            print(self.unprinted, file=self.stream, flush=True)
        return time.perf_counter() - self.started


def chain(*callbacks: OnEpoch | None) -> OnEpoch:
    """One ``on_epoch`` for ``fit()`` that calls each given callback in turn; None is skipped,
    so a recipe can take an optional extra callback and pass it along unchecked."""
    present = [c for c in callbacks if c is not None]

    def on_epoch(epoch: int, row: dict) -> None:
        for callback in present:
            callback(epoch, row)

    return on_epoch


class LiveHistory:
    """The per-epoch history csv of a training stage, kept current while ``fit()`` runs.

    ``on_epoch`` collects fit's rows the way ``FitResult.history`` holds them and rewrites
    ``path`` with ``frame`` of the epochs so far, at most once every ``every_seconds``: a run
    of thousands of short epochs writes a few times a minute, not thousands of times. Each
    write is atomic, so ``dvc plots show`` in another terminal never reads half a file.
    ``finish(result)`` writes the final history from fit's own result, byte for byte what the
    stage wrote before the live writes existed: that file is the stage's declared output.

    Not dvclive: it keeps its own outputs layout (``dvclive/plots/metrics/...``, its own
    ``dvc.yaml`` entries), while our histories are per-model plots declared by each training
    stage, with our own columns; rewriting that one csv is all the live view needs.
    """

    def __init__(self, path: str | Path, frame: Callable[[FitResult], pd.DataFrame],
                 every_seconds: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.path, self.frame, self.every_seconds, self.clock = Path(path), frame, every_seconds, clock
        self.columns: dict[str, list[Tensor]] = {}
        self.last_write = clock()  # the first write comes after one interval: short runs write once

    def on_epoch(self, epoch: int, row: dict) -> None:
        for key, value in row.items():
            self.columns.setdefault(key, []).append(value.double())
        if self.clock() - self.last_write >= self.every_seconds:
            history = {key: torch.stack(values) for key, values in self.columns.items()}
            self.write(FitResult(history, state=None))

    def finish(self, result: FitResult) -> None:
        self.write(result)

    def write(self, result: FitResult) -> None:
        io.write_text(self.path, self.frame(result).to_csv(index=False))
        self.last_write = self.clock()  # after the write: a slow write cannot crowd out training
