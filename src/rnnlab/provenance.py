"""What a trained model was made from: kept in its checkpoint, checked by every reader.

A checkpoint's ``extra["trained_on"]`` holds the sha256 of the files it trained on (experiment
S's prepared series, its scaled copy and its scaling; the ball's shards), the params that shaped
its windows (seq_len, series.transform, series.recipe; the ball's scale) and a digest of the
engine's code. ``rnnlab forecast``, ``rnnlab predict-ball`` and the evaluation stages compute the
same from what they are given now and refuse a difference in one line naming both sides: a sine
GRU must not forecast the sunspots because ``prepare_series`` has since prepared them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from rnnlab.errors import DataError

KEY = "trained_on"
# The compiled engine's files: a change in them can change what a model's weights compute. Every
# training stage depends on each of them (dvc.yaml), so a change retrains, and a checkpoint's
# digest can always be brought up to date by `dvc repro`.
ENGINE_FILES = ("engine.py", "kernels.py", "models.py", "recurrent.py")
# Recorded to name the source in a message, not compared: a csv moved with its content unchanged
# reruns prepare_series to the same bytes, and no training (train_sine does not depend on the path).
SHOWN_ONLY = ("series", "column")
DIGEST = 16  # hex digits of sha256 kept: enough to tell files apart, short enough to read


def digest(*paths: str | Path) -> str:
    """sha256 of the files' bytes, in order; a folder counts as its files, sorted by name."""
    h = hashlib.sha256()
    for path in map(Path, paths):
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for file in files:
            try:
                content = file.read_bytes()
            except OSError as exc:
                raise DataError(f"{file}: {exc.strerror}") from None
            h.update(file.name.encode() + b"\0" + len(content).to_bytes(8, "little") + content)
    return h.hexdigest()[:DIGEST]


def engine_code() -> str:
    return digest(*(Path(__file__).parent / name for name in ENGINE_FILES))


def sine(p, series: str | Path, scaled: str | Path, scaling: str | Path) -> dict:
    """What experiment S's models train on: the prepared files and the params that cut them."""
    return {"data": digest(series, scaled, scaling), "series": p.series.csv_path, "column": p.series.column,
            "seq_len": p.seq_len, "transform": p.series.transform, "recipe": p.series.recipe, "engine": engine_code()}


def ball(shards: str | Path, scale: float) -> dict:
    """What the ball's models train on: the shards (already divided by ``scale``)."""
    return {"data": digest(shards), "scale": scale, "engine": engine_code()}


def check(path: str | Path, extra: dict, now: dict, remedy: str) -> None:
    """Refuse a checkpoint trained on anything else than ``now`` describes, naming each difference."""
    made = extra.get(KEY) if isinstance(extra, dict) else None
    if not isinstance(made, dict):
        raise DataError(f"{path}: records nothing of what it was trained on (an older or hand-made checkpoint); {remedy}")
    differs = [f"{key} {_shown(made.get(key))} (now {_shown(value)})" for key, value in now.items()
               if key not in SHOWN_ONLY and made.get(key) != value]
    if differs:
        source = "".join(f"; trained on {made[key]}" for key in ("series",) if made.get(key) and made[key] != now.get(key))
        raise DataError(f"{path}: trained on something else than it would be now: {'; '.join(differs)}{source}; {remedy}")


def _shown(value) -> str:
    return "none" if value is None else str(value)
