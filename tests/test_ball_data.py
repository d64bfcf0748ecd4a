"""The ball csv and its shards: generated like text 004's, read strictly, byte-deterministic."""

import gzip
import io
import pickle

import numpy as np
import pytest
import torch

from rnnlab import ball_csv, ball_data
from rnnlab.errors import DataError


def test_generated_balls_have_the_articles_statistics():
    rows = ball_csv.generate_rows(2000, start=(-10, 10), speed_max=5, length=(5, 10), seed=0)
    assert len(rows) == 2000
    starts = {r[0] for r in rows}
    speeds = {r[1] - r[0] for r in rows}
    assert starts == set(range(-10, 11))
    assert speeds == set(range(-5, 6)) - {0}
    assert {len(r) for r in rows} == set(range(5, 11))
    assert all(np.all(np.diff(r) == r[1] - r[0]) for r in rows)  # constant speed
    assert max(abs(v) for r in rows for v in r) <= 55


def test_csv_round_trip():
    rows = [[1, 3, 5, 7, 9], [9, 7, 5, 3], [-2, -2]]
    assert ball_csv.format_rows(rows) == "1,3,5,7,9\n9,7,5,3\n-2,-2\n"
    assert ball_csv.parse_rows(ball_csv.format_rows(rows)) == rows


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,2,3\n4,x,6\n", r"balls\.csv:2: not an integer position: 'x'"),
        ("1,2,3\n4,5.5,6\n", r"balls\.csv:2: not an integer position: '5\.5'"),
        ("1,2,3\n\n4,5,6\n", r"balls\.csv:2: empty position"),
        ("1,2,3\n7\n", r"balls\.csv:2: a history needs at least 2 positions"),
        ("1,2\n" + ",".join(["1"] * 10_001) + "\n", r"balls\.csv:2: 10001 values on one line \(at most 10000\)"),
        ("", r"balls\.csv: empty file"),
    ],
    ids=["non-integer", "decimal", "empty-line", "single-value", "too-long", "empty-file"],
)
def test_bad_ball_csv_names_file_and_line(tmp_path, text, message):
    path = tmp_path / "balls.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        ball_csv.read_rows(path)


def shards_of(rows, seed=0):
    return list(ball_data.make_shards(rows, chunk_lines=2000, scale=50.0, cuts=(0.6, 0.8), seed=seed))


def test_chunks_of_2000_lines_split_60_20_20_padded_and_scaled():
    rows = ball_csv.generate_rows(5000, (-10, 10), 5, (5, 10), seed=1)
    chunks = shards_of(rows)
    assert [c for c, _ in chunks] == [0, 1, 2]
    sizes = [{s: len(parts[s][1]) for s in ball_data.SPLITS} for _, parts in chunks]
    assert sizes[0] == {"training": 1200, "validating": 400, "testing": 400}
    assert sizes[2] == {"training": 600, "validating": 200, "testing": 200}
    padded, lengths = chunks[0][1]["training"]
    assert padded.dtype == torch.float32 and lengths.dtype == torch.int64
    # every training row is one of the chunk's rows, divided by 50, zero padded
    originals = {tuple(r) for r in rows[:2000]}
    for row, length in zip(padded[:20], lengths[:20]):
        assert tuple(round(v * 50) for v in row[:length].tolist()) in originals
        assert torch.all(row[length:] == 0)


def test_split_uses_text_004s_permutation():
    rows = ball_csv.generate_rows(2000, (-10, 10), 5, (5, 10), seed=1)
    torch.random.manual_seed(0)
    order = torch.randperm(2000)
    lengths = torch.tensor([len(r) for r in rows])
    _, parts = shards_of(rows, seed=0)[0]
    assert torch.equal(parts["validating"][1], lengths[order[1200:1600]])


def test_shards_are_byte_deterministic_with_a_zero_gzip_timestamp():
    rows = ball_csv.generate_rows(300, (-10, 10), 5, (5, 10), seed=2)
    first = [ball_data.shard_bytes(p["training"]) for _, p in shards_of(rows)]
    second = [ball_data.shard_bytes(p["training"]) for _, p in shards_of(rows)]
    assert first == second
    assert first[0][4:8] == b"\0\0\0\0"  # gzip MTIME field


def write_shard(path, obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    path.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))


def test_shard_round_trip(tmp_path):
    shard = (torch.rand(4, 6), torch.tensor([6, 5, 2, 3]))
    (tmp_path / "s.pt").write_bytes(ball_data.shard_bytes(shard))
    padded, lengths = ball_data.load_shard(tmp_path / "s.pt")
    assert torch.equal(padded, shard[0]) and torch.equal(lengths, shard[1])


class Exploit:
    """Unpickling this would run code: the marker file proves whether it did."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_shard_with_a_pickled_object_is_refused_not_executed(tmp_path):
    marker = tmp_path / "executed"
    payload = pickle.dumps((torch.zeros(2, 3), Exploit(str(marker))), protocol=2)
    (tmp_path / "evil.pt").write_bytes(gzip.compress(payload, mtime=0))
    with pytest.raises(DataError, match=r"evil\.pt: refused to load"):
        ball_data.load_shard(tmp_path / "evil.pt")
    assert not marker.exists()


def test_truncated_shard_is_named(tmp_path):
    data = ball_data.shard_bytes((torch.rand(4, 6), torch.tensor([6, 5, 2, 3])))
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.pt: not a complete gzip file"):
        ball_data.load_shard(tmp_path / "cut.pt")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"padded": torch.zeros(2, 3)}, "expected a \\(padded, lengths\\) pair"),
        ((torch.zeros(2, 3, dtype=torch.int64), torch.tensor([2, 3])), "padded positions must be a 2-D float tensor"),
        ((torch.zeros(2, 3), torch.tensor([2.0, 3.0])), "lengths must be int64"),
        ((torch.zeros(2, 3), torch.tensor([2, 3, 3])), "lengths must be int64 of shape \\(2,\\)"),
        ((torch.zeros(2, 3), torch.tensor([2, 7])), "lengths must lie in \\[2, 3\\]"),
    ],
    ids=["dict", "int-padded", "float-lengths", "size-mismatch", "too-long"],
)
def test_shard_with_wrong_contents_is_refused(tmp_path, obj, message):
    write_shard(tmp_path / "bad.pt", obj)
    with pytest.raises(DataError, match=rf"bad\.pt: {message}"):
        ball_data.load_shard(tmp_path / "bad.pt")


def test_missing_split_says_which_stage_makes_it(tmp_path):
    with pytest.raises(DataError, match=r"training_set\.0\.pt: no such file; run `dvc repro prepare_ball`"):
        ball_data.load_split(tmp_path, "training")
