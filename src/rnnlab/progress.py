"""Progress reporting: a live bar on a terminal, a few plain lines in a log."""

from __future__ import annotations

import logging
import sys
import time

import numpy as np
from tqdm import tqdm

log = logging.getLogger(__name__)


class Progress:
    """Per-epoch progress with the current losses.

    On a terminal this is a tqdm bar with the losses as postfix. In a captured log (CI,
    ``dvc queue`` workers) a redrawn bar is noise, so it logs one line every tenth of the run,
    and at least once a minute on long runs.
    """

    quiet_seconds = 60.0

    def __init__(self, total: int, desc: str, stream=None):
        self.total, self.desc = total, desc
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.perf_counter()
        self.bar = tqdm(total=total, desc=desc, file=self.stream, leave=True) if self.interactive else None
        self.every = max(1, total // 10)
        self.last_line = self.started

    def update(self, done: int, **values: float) -> None:
        shown = {k: f"{v:.4g}" for k, v in values.items()}
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix(shown, refresh=False)
            return
        now = time.perf_counter()
        if done % self.every == 0 or done == self.total or now - self.last_line > self.quiet_seconds:
            text = " ".join(f"{k}={v}" for k, v in shown.items())
            print(f"{self.desc}: {done}/{self.total} {text}", file=self.stream, flush=True)
            self.last_line = now

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
        return time.perf_counter() - self.started
