"""Fair timing for the benchmarks: every side warmed up untimed, then the sides alternated."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(rounds: int, sides: dict[str, Callable[[], object]]) -> dict[str, tuple[float, object]]:
    """Each side run once untimed (imports, first-call warm-ups, caches), then ``rounds`` rounds of
    every side in turn, so a change in the machine's load falls on every side alike: each side's
    best time and its (deterministic) result."""
    for run in sides.values():
        run()
    best = {name: (float("inf"), None) for name in sides}
    for _ in range(rounds):
        for name, run in sides.items():
            start = time.perf_counter()
            result = run()
            best[name] = (min(best[name][0], time.perf_counter() - start), result)
    return best
