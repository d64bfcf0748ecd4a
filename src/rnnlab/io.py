"""Reading and writing artifacts: atomically, and without unpickling anything.

Every writer goes through ``atomic_path``: the file is written next to its destination
under a temporary name and renamed only once complete, so an interrupted or failing stage
never leaves a half-written output for DVC to cache.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import math
import os
import pickle
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rnnlab.errors import DataError, WriteError, shorten

ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive (since PyTorch 1.6)
PICKLE_PROTO = b"\x80"      # the first byte of a pickle of protocol 2 or later
MAX_BYTES = 1 << 30          # the most any input file may hold (1 GiB): far beyond the lab's, far below the RAM
BOM = "\ufeff"               # a UTF-8 byte-order mark, as some editors (Excel, Notepad) start a file


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _normal_mode(path: str | Path, folder: bool = False) -> None:
    """What ``open()`` / ``mkdir`` would have given (0666 / 0777 less the umask): ``mkstemp`` and
    ``mkdtemp`` create 0600 / 0700, which the rename would carry to outputs others must read."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """An OSError while writing ``path`` (a full disk, no permission) as one line naming it."""
    try:
        yield
    except OSError as exc:
        raise WriteError(f"{path}: cannot write ({exc.strerror or exc}); the previous version is untouched") from None


def remove_leftovers(path: Path) -> None:
    """Remove what an atomic write of ``path`` left when its process was killed (SIGKILL, power
    loss): ``.<name>.<random>.tmp`` / ``.old`` beside it. Only one process writes an output at
    a time (DVC's lock), so any such file is stale."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*"):
        if not stale.name.endswith((".tmp", ".old")):
            continue
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the destination's folder; rename it over ``path`` on success."""
    path = Path(path)
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        _normal_mode(tmp)
        try:
            yield Path(tmp)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def read_bytes(path: str | Path, limit: int = MAX_BYTES) -> bytes:
    """A file's bytes; a missing file, a folder, a device or fifo (``/dev/zero`` never ends), a
    file of more than ``limit`` bytes or an unreadable file is a DataError naming it."""
    path = Path(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):
            raise DataError(f"{path}: not a regular file (a device, pipe or socket); give a file")
        if info.st_size > limit:
            raise DataError(f"{path}: {info.st_size} bytes, more than the {limit} this input may hold")
        with path.open("rb") as file:
            raw = file.read(limit + 1)  # a file growing while read is cut at the limit too
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > limit:
        raise DataError(f"{path}: more than the {limit} bytes this input may hold")
    return raw


def read_text(path: str | Path, limit: int = MAX_BYTES) -> str:
    """A text file's contents (a leading UTF-8 byte-order mark dropped); a missing or binary
    file is a DataError naming it."""
    raw = read_bytes(path, limit)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file") from None
    text = text.removeprefix(BOM)
    return text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as open() reads text


def read_frame(path: str | Path, columns: tuple[str, ...] = ()):
    """A csv a stage wrote (a history, predictions) as a pandas frame, with ``columns`` among its
    own: an empty, cut or foreign file is one DataError naming it, not a pandas traceback."""
    import pandas as pd

    text = read_text(path)
    try:
        frame = pd.read_csv(io.StringIO(text))
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: not a csv table ({shorten(str(exc).splitlines()[0])}); run `dvc repro` to rewrite it") from None
    if missing := [c for c in columns if c not in frame.columns]:
        raise DataError(f"{path}: no column {missing[0]!r} (it has {', '.join(map(str, frame.columns))}); "
                        "run `dvc repro` to rewrite it")
    return frame


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def non_finite(data, at: str = "") -> tuple[str, float] | None:
    """The first NaN or infinite number in nested dicts and lists: (its key path, the value)."""
    if isinstance(data, float) and not math.isfinite(data):
        return at or "(top level)", data
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list | tuple) else ()
    for key, value in items:
        found = non_finite(value, f"{at}.{key}" if at and isinstance(key, str) else f"{at}[{key}]" if at else str(key))
        if found:
            return found
    return None


def write_json(path: str | Path, data) -> None:
    """JSON that is JSON: NaN and infinity, which ``json.dumps`` writes as bare ``NaN`` (no JSON
    reader accepts it), are refused naming the file and the key, and nothing is written."""
    try:
        text = json.dumps(data, indent=2, allow_nan=False)
    except ValueError:
        key, value = non_finite(data) or ("?", math.nan)
        raise WriteError(f"{path}: refused to write {value} at {key} (not a finite number); "
                         "the previous version is untouched") from None
    write_text(path, text + "\n")


NON_FINITE_TOKEN = re.compile(r"(?<![\w\"])-?(NaN|Infinity)(?![\w\"])")


def read_json(path: str | Path):
    """JSON as the standard defines it: ``NaN``, ``Infinity`` or a number beyond float64 (1e999)
    is refused naming the file and line, not read as a number no comparison can rank."""
    path = Path(path)
    text = read_text(path)

    def refuse(token: str):
        match = NON_FINITE_TOKEN.search(text) or re.search(re.escape(token), text)
        line = text.count("\n", 0, match.start()) + 1 if match else 0
        raise DataError(f"{path}:{line}: not a finite number: {shorten(token)}")

    def number(token: str) -> float:
        value = float(token)
        if not math.isfinite(value):
            refuse(token)
        return value

    try:
        return json.loads(text, parse_constant=refuse, parse_float=number)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def save_torch(path: str | Path, obj) -> None:
    """``torch.save`` of tensors and plain containers, written atomically and reproducibly.

    Serialised in memory first: saved to a file, torch names the archive's root folder after
    the file, and the temporary name would make every checkpoint's bytes different.
    """
    import torch  # here, not at the top: stages that never touch a tensor start 1.3 s faster

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_torch(path: str | Path):
    """``torch.load`` that refuses pickled objects (``weights_only=True``) and names the file."""
    return load_torch_bytes(read_bytes(path), path)


def load_torch_bytes(raw: bytes, path: str | Path, inside: str = ""):
    """What ``torch.save`` wrote into ``raw`` (the contents of ``path``), loaded ``weights_only``.

    Every failure is one line of ours: PyTorch's own message for a refused or foreign file
    advises re-running with ``weights_only=False``, the one thing to never do with a file of
    unknown origin. ``inside`` names an outer layer, e.g. "the gzip" of a shard.
    """
    holder = f"{inside} holds" if inside else "it is"  # a bare pickle: "the gzip holds" one, or the file "is" one
    if not raw:
        raise DataError(f"{path}: empty file" if not inside else f"{path}: {inside} is empty")
    if raw.startswith(PICKLE_PROTO):
        raise DataError(f"{path}: refused to load: {holder} a bare pickle, not a torch.save archive "
                        "(unpickling it could run code)")
    if not raw.startswith(ZIP_MAGIC):
        raise DataError(f"{path}: {inside} holds no torch.save archive" if inside else f"{path}: not a torch.save archive")
    _refuse_compressed_entries(raw, path)
    try:
        import torch

        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise DataError(f"{path}: refused to load: {inside or 'it'} holds Python objects beyond tensors and plain containers "
                        "(unpickling them could run code)") from None
    except Exception:  # torch raises RuntimeError, EOFError, ... for a cut or corrupted archive
        raise DataError(f"{path}: truncated or damaged torch.save archive") from None


def _refuse_compressed_entries(raw: bytes, path: str | Path) -> None:
    """torch.save stores its archive's entries as they are: an entry compressed inside it is a forged
    file that can unpack to any size (a 4 MB checkpoint once held a 4 GiB tensor: 4.5 GB in memory).
    So the memory a load takes is bounded by the file's own size."""
    import zipfile

    try:
        entries = zipfile.ZipFile(io.BytesIO(raw)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise DataError(f"{path}: truncated or damaged torch.save archive") from None
    if packed := next((e for e in entries if e.compress_type != zipfile.ZIP_STORED), None):
        raise DataError(f"{path}: refused to load: its archive entry {shorten(packed.filename)} is compressed, which "
                        f"torch.save never does ({packed.file_size} bytes would unpack from {packed.compress_size})")


FIGURE_FORMATS = ("png", "pdf", "svg")


def save_figure(path: str | Path, fig) -> None:
    """The figure, in the format its file name says (png when it says none): refused up front, in
    one line, for a format matplotlib does not write (``--plot f.txt`` was a traceback)."""
    kind = Path(path).suffix.lstrip(".").lower() or "png"
    if kind not in FIGURE_FORMATS:
        raise WriteError(f"{path}: a figure is written as {', '.join(f'.{k}' for k in FIGURE_FORMATS)}, not .{kind}")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=kind, dpi=110, bbox_inches="tight")


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` only once complete."""
    path = Path(path)
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(path)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
        _normal_mode(tmp, folder=True)
        old = tmp.with_name(tmp.name[: -len(".tmp")] + ".old")
        try:
            yield tmp
            # renames only: killed at any point, ``path`` is the old folder, the new one, or absent
            if path.exists():
                os.replace(path, old)
            os.replace(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
