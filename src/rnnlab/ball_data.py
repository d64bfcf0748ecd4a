"""Experiment B's tensor shards (text 004): the ball csv (``ball_csv``) as gzip-compressed
(padded, lengths) tensors, 60/20/20 per chunk of lines."""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from rnnlab.errors import DataError, ParamsError
from rnnlab.io import load_torch_bytes, read_bytes

SPLITS = ("training", "validating", "testing")

Shard = tuple[Tensor, Tensor]  # (padded (N, T) float32, lengths (N,) int64)


def make_shards(rows: list[list[int]], chunk_lines: int, scale: float, cuts: tuple[float, float], seed: int):
    """Text 004's ``prepare``: yield ``(chunk index, {split: (padded, lengths)})``.

    ::

        lines 0..1999   -> pad with zeros to the longest, / scale -> randperm -> 60% | 20% | 20%
        lines 2000..    -> the same, with the generator's next permutation

    ``torch.random.manual_seed(seed)`` first, as the seed script does at program start.
    """
    torch.random.manual_seed(seed)
    for chunk, begin in enumerate(range(0, len(rows), chunk_lines)):
        tensors = [torch.tensor(row, dtype=torch.float) for row in rows[begin : begin + chunk_lines]]
        raw = pad_sequence(tensors, batch_first=True)                      # (N, T_max)
        padded = raw / scale
        _check_scaled(raw, padded, scale)
        lengths = torch.tensor([len(t) for t in tensors])                  # (N,)
        order = torch.randperm(len(tensors))
        first, second = int(len(order) * cuts[0]), int(len(order) * cuts[1])
        if not 0 < first < second < len(order):  # an empty split crashed train_ball later, with a traceback
            raise DataError(f"lines {begin + 1}-{begin + len(order)} (chunk {chunk}) split into {first} training, "
                            f"{second - first} validating and {len(order) - second} testing rows: each needs one; "
                            "give more lines, or a larger ball.prepare.chunk_lines")
        parts = dict(zip(SPLITS, (order[:first], order[first:second], order[second:])))
        yield chunk, {split: (padded[idx], lengths[idx]) for split, idx in parts.items()}


def _check_scaled(raw: torch.Tensor, scaled: torch.Tensor, scale: float) -> None:
    """Positions / scale must stay positions in float32: ``scale: 1e-300`` once wrote shards of inf,
    and a scale so large that a position becomes 0 would erase the data as quietly."""
    if not torch.isfinite(scaled).all():
        raise ParamsError(f"ball.prepare.scale {scale:g}: the positions divided by it overflow float32; choose a larger scale")
    if ((scaled == 0) & (raw != 0)).any():
        raise ParamsError(f"ball.prepare.scale {scale:g}: a position divided by it underflows to 0 in float32; "
                          "choose a smaller scale")


def shard_name(split: str, chunk: int) -> str:
    return f"{split}_set.{chunk}.pt"


def shard_bytes(shard: Shard) -> bytes:
    """gzip of ``torch.save(shard)``, byte-deterministic: no timestamp, no file name inside."""
    buffer = io.BytesIO()
    torch.save(tuple(shard), buffer)
    return gzip.compress(buffer.getvalue(), mtime=0)


# A shard unpacks to at most this: 2000 lines of 10 000 float32 positions are 80 MB. A 3 MB gzip of
# 3 GiB of zeros once took 6.6 GB of memory before it was refused as no archive.
MAX_SHARD_BYTES = 256 << 20


def _gunzip(packed: bytes, path: Path) -> bytes:
    """A gzip file's content, read at most ``MAX_SHARD_BYTES`` far."""
    if not packed.startswith(b"\x1f\x8b"):
        raise DataError(f"{path}: not a gzip file (a shard is gzip-compressed torch.save output)")
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # a gzip header and trailer
    try:
        raw = inflate.decompress(packed, MAX_SHARD_BYTES + 1)
    except zlib.error:
        raise DataError(f"{path}: not a complete gzip file (truncated or corrupted)") from None
    if len(raw) > MAX_SHARD_BYTES:
        raise DataError(f"{path}: unpacks to more than {MAX_SHARD_BYTES >> 20} MB, more than any shard holds; refused")
    if not inflate.eof or inflate.unused_data:  # cut short, or more after the one stream a shard is
        raise DataError(f"{path}: not a complete gzip file (truncated or corrupted)")
    return raw


def load_shard(path: str | Path) -> Shard:
    """Read a shard back, refusing anything but (float padded, integer lengths) of matching size."""
    path = Path(path)
    packed = read_bytes(path)
    if not packed:
        raise DataError(f"{path}: empty file")
    raw = _gunzip(packed, path)
    shard = load_torch_bytes(raw, path, inside="the gzip")
    if not (isinstance(shard, tuple | list) and len(shard) == 2 and all(isinstance(t, Tensor) for t in shard)):
        raise DataError(f"{path}: expected a (padded, lengths) pair of tensors")
    padded, lengths = shard
    if not padded.is_floating_point() or padded.dim() != 2:
        raise DataError(f"{path}: padded positions must be a 2-D float tensor, got {padded.dtype} {tuple(padded.shape)}")
    if lengths.dtype != torch.int64 or lengths.shape != padded.shape[:1]:
        got = f"{lengths.dtype} {tuple(lengths.shape)}"
        raise DataError(f"{path}: lengths must be int64 of shape ({padded.shape[0]},), got {got}")
    if len(lengths) and (lengths.min() < 2 or lengths.max() > padded.shape[1]):
        raise DataError(f"{path}: lengths must lie in [2, {padded.shape[1]}]")
    return padded, lengths


def load_split(folder: str | Path, split: str) -> list[Shard]:
    """Every shard of one split, in chunk order (``training_set.0.pt``, ``.1``, ...)."""
    shards, chunk = [], 0
    while (path := Path(folder) / shard_name(split, chunk)).exists():
        shards.append(load_shard(path))
        chunk += 1
    if not shards:
        raise DataError(f"{Path(folder) / shard_name(split, 0)}: no such file; run `dvc repro prepare_ball`")
    return shards
