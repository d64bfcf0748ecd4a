"""Experiment B's csv (text 004): one ball per line, moving at a constant integer speed, e.g.
``1,3,5,7,9``. Numpy only: `generate_ball` runs without importing torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnlab.errors import DataError, ParamsError, shorten
from rnnlab.io import read_text

MAX_ROW_VALUES = 10_000  # a longer line is a broken file, not a ball
MAX_POSITION = 2**24     # shards hold positions in float32, exact for integers up to 2**24


def check_generated(start: tuple[int, int], speed_max: int, length: tuple[int, int], at: str = "ball.generate") -> None:
    """Refuse generator params whose csv ``read_rows`` would refuse (once written with exit 0, then
    refused by prepare_ball): more positions a row than a line may hold, or positions beyond float32's
    exact integers."""
    if length[1] > MAX_ROW_VALUES:
        raise ParamsError(f"{at}.length: at most {MAX_ROW_VALUES} positions a row (prepare_ball's bound), got {length[1]}")
    farthest = max(abs(start[0]), abs(start[1])) + speed_max * (length[1] - 1)
    if farthest > MAX_POSITION:
        raise ParamsError(f"{at}: start {list(start)}, speed_max {speed_max} and length {list(length)} reach position "
                          f"{farthest}, beyond {MAX_POSITION} (float32's exact integers, prepare_ball's bound)")


def generate_rows(rows: int, start: tuple[int, int], speed_max: int, length: tuple[int, int], seed: int) -> list[list[int]]:
    """Balls with a uniform start, a non-zero integer speed and a uniform number of positions."""
    rng = np.random.default_rng(seed)
    speeds = np.array([s for s in range(-speed_max, speed_max + 1) if s != 0])
    starts = rng.integers(start[0], start[1] + 1, size=rows)
    velocity = rng.choice(speeds, size=rows)
    lengths = rng.integers(length[0], length[1] + 1, size=rows)
    return [(s + v * np.arange(n)).tolist() for s, v, n in zip(starts, velocity, lengths)]


def format_rows(rows: list[list[int]]) -> str:
    return "".join(",".join(map(str, row)) + "\n" for row in rows)


def parse_history(line: str) -> list[int]:
    """One history, e.g. ``1,3,5,7``: integers, at least two; DataError says what is wrong."""
    tokens = line.split(",")
    if len(tokens) > MAX_ROW_VALUES:
        raise DataError(f"{len(tokens)} values on one line (at most {MAX_ROW_VALUES})")
    if len(tokens) > 1 and not tokens[-1].strip():
        raise DataError("empty position after the last comma")
    row = []
    for token in tokens:
        try:
            value = int(token)
        except ValueError:
            shown = shorten(token.strip())
            raise DataError(f"not an integer position: {shown!r}" if shown else "empty position") from None
        if abs(value) > MAX_POSITION:
            raise DataError(f"position {shorten(str(value))} is out of range (at most {MAX_POSITION} either way)")
        row.append(value)
    if len(row) < 2:
        raise DataError("a history needs at least 2 positions")
    return row


def parse_rows(text: str, source: str = "<ball csv>") -> list[list[int]]:
    """One history per line; any bad line is an error naming the source and line number."""
    lines = text.splitlines()
    if not lines:
        raise DataError(f"{source}: empty file, expected one ball history per line (e.g. 1,3,5,7)")
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(parse_history(line))
        except DataError as exc:
            raise DataError(f"{source}:{number}: {exc}") from None
    return rows


# A ball csv of more is refused: 300 000 balls of ten positions. An 85 MB csv once made prepare_ball
# write 15 000 shard files (2 GB), its chunks of 2000 lines each three files.
MAX_CSV_BYTES = 16 << 20


def read_rows(path: str | Path) -> list[list[int]]:
    return parse_rows(read_text(path, MAX_CSV_BYTES), source=str(path))
