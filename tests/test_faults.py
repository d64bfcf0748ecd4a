"""Faults and bad input, as a catalogue (issue 15): one test per case.

Each case asserts the exact one-line message, a failing exit, and that no output was
half-written or lost: the previous good output is still there byte for byte, or the stage's
outputs are absent; never a truncated file, never a temporary file left behind.

Unit cases run in-process (a stage script through ``runpy``, exactly as ``python stages/x.py``
runs it, minus the interpreter start); the end-to-end ones (SIGKILL, SIGINT, two ``dvc repro``
at once, a failing ``dvc exp run -S``) run real processes on tiny params and are marked slow.
The series csv (experiment S's input) has its own tests in test_data.py / test_stages.py.
"""

from __future__ import annotations

import dataclasses
import errno
import gzip
import hashlib
import io
import os
import pickle
import runpy
import shutil
import signal
import subprocess
import sys
import time
import types
import typing
from pathlib import Path

import pytest
import torch
import yaml

from rnnlab import ball, ball_csv, ball_data, cli, params, provenance
from rnnlab import io as rnnlab_io
from rnnlab.checkpoints import load_checkpoint, save_checkpoint
from rnnlab.errors import DataError, ParamsError
from rnnlab.models import ModelConfig, build_reference
from rnnlab.stage import INTERRUPTED, TERMINATED

from conftest import ROOT, ball_models_folder, long_ball, reference_checkpoint, run, tiny, tiny_project

# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def run_stage_script(script: str, *args, monkeypatch) -> int:
    """``python stages/<script> args`` in this process; its exit status (0 if it returned)."""
    monkeypatch.setattr(sys, "argv", [script, *map(str, args)])
    try:
        runpy.run_path(str(ROOT / "stages" / script), run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def snapshot(path: Path) -> dict[str, str] | None:
    """sha256 of a file, or of every file under a folder, by relative name; None: absent."""
    if not path.exists():
        return None
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders of an atomic write (``.name.XXXX.tmp``) still lying around."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith((".tmp", ".old")))


def params_file(folder: Path, **changes) -> Path:
    """The default params, small enough for unit runs, with ``dotted.key=value`` changes."""
    data = tiny(yaml.safe_load((ROOT / "params.yaml").read_text()))
    data["ball"]["models"] = ["gru"]
    for key, value in changes.items():
        *parents, last = key.split("__")
        node = data
        for part in parents:
            node = node[part]
        node[last] = value
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ---------------------------------------------------------------------------------------
# params.yaml: every key wrong type, missing, unknown beside it; every range check
# ---------------------------------------------------------------------------------------


def _unwrap_optional(hint):
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    return hint


def _keys(cls=params.Params, prefix=""):
    """(dotted key, type hint) of every key params.yaml has, sections included, depth first."""
    for name, hint in typing.get_type_hints(cls).items():
        key = f"{prefix}{name}"
        yield key, hint
        if dataclasses.is_dataclass(hint):
            yield from _keys(hint, f"{key}.")


def _sections(cls=params.Params, prefix=""):
    """(dotted key, dataclass) of the top level and every nested mapping."""
    yield prefix.rstrip("."), cls
    for name, hint in typing.get_type_hints(cls).items():
        if dataclasses.is_dataclass(hint):
            yield from _sections(hint, f"{prefix}{name}.")


KEYS = list(_keys())
SECTIONS = list(_sections())


def _wrong_type(hint) -> tuple[object, str]:
    """A value of the wrong type for ``hint`` and how the message must describe the problem."""
    hint = _unwrap_optional(hint)
    if dataclasses.is_dataclass(hint):
        return "abc", "must be a mapping, got 'abc'"
    if typing.get_origin(hint) is tuple:
        return "abc", "must be a list, got 'abc'"
    if hint is params.Seeds:  # a list of seeds, or a count of them
        return "abc", "must be a list of seeds or a count, got 'abc'"
    return {
        int: ("abc", "must be an integer, got 'abc'"),
        params.Seed: ("abc", "must be an integer, got 'abc'"),  # a data seed: an integer in numpy's range
        float: ("abc", "must be a finite number, got 'abc'"),
        bool: ("abc", "must be true or false, got 'abc'"),
        str: (5, "must be a string, got 5"),
    }[hint]


def changed(key: str, value=None, delete: bool = False) -> dict:
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    *parents, last = key.split(".")
    node = data
    for part in parents:
        node = node[part]
    if delete:
        del node[last]
    else:
        node[last] = value
    return data


def assert_params_error(data: dict, message: str) -> None:
    with pytest.raises(ParamsError) as info:
        params.parse(data)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_the_default_params_are_valid():
    params.parse(yaml.safe_load((ROOT / "params.yaml").read_text()))


@pytest.mark.parametrize(("key", "hint"), KEYS, ids=[k for k, _ in KEYS])
def test_params_key_of_the_wrong_type(key, hint):
    value, problem = _wrong_type(hint)
    assert_params_error(changed(key, value), f"{key} {problem}")


@pytest.mark.parametrize(("key", "hint"), KEYS, ids=[k for k, _ in KEYS])
def test_params_key_missing(key, hint):
    assert_params_error(changed(key, delete=True), f"missing key {key}")


@pytest.mark.parametrize(("section", "cls"), SECTIONS, ids=[s or "top" for s, _ in SECTIONS])
def test_params_unknown_key(section, cls):
    key = f"{section}.lerning_rate" if section else "lerning_rate"
    known = ", ".join(f.name for f in dataclasses.fields(cls))
    assert_params_error(changed(key, 1), f"unknown key {key} (known under {section or 'the top level'}: {known})")


def test_params_list_item_of_the_wrong_type():
    assert_params_error(changed("seeds", [0, "one"]), "seeds[1] must be an integer, got 'one'")


def test_params_nan_is_not_a_number():
    assert_params_error(changed("sine.train.lr", float("nan")), "sine.train.lr must be a finite number, got nan")


OUT_OF_RANGE = [
    ("seq_len", 0, "seq_len must be > 0, got 0"),
    ("threads", 0, "threads must be > 0, got 0"),
    ("seeds", [], "seeds must be a non-empty list without repeats, got []"),
    ("seeds", [1, 1], "seeds must be a non-empty list without repeats, got [1, 1]"),
    ("sine.data.points", 0, "sine.data.points must be > 0, got 0"),
    ("sine.data.span_pi", 0, "sine.data.span_pi must be > 0, got 0.0"),
    ("sine.data.noise", -1, "sine.data.noise must be >= 0, got -1.0"),
    ("sine.data.train_fraction", 1, "sine.data.train_fraction must be in (0, 1), got 1.0"),
    ("sine.models", [], "sine.models is empty"),
    ("sine.models", ["rnn", "rnn"], "sine.models lists a model twice: ['rnn', 'rnn']"),
    ("sine.models", ["cnn"], "sine.models: unknown model 'cnn'; choose from ['gru', 'lstm', 'mlp', 'rnn']"),
    ("sine.model.hidden_size", 0, "sine.model.hidden_size must be > 0, got 0"),
    ("sine.model.num_layers", -1, "sine.model.num_layers must be > 0, got -1"),
    ("sine.model.mlp_widths", [32, 0], "sine.model.mlp_widths[1] must be > 0, got 0"),
    ("sine.train.optimizer", "rmsprop", "sine.train.optimizer: unknown optimizer 'rmsprop'; choose from ['adam', 'sgd']"),
    ("sine.train.lr_schedule", "cosine",
     "sine.train.lr_schedule: unknown schedule 'cosine'; choose from ['constant', 'onecycle']"),
    ("sine.train.lr", 0, "sine.train.lr must be > 0, got 0.0"),
    ("sine.train.epochs", 0, "sine.train.epochs must be > 0, got 0"),
    ("sine.train.grad_clip", -1, "sine.train.grad_clip must be > 0, got -1.0"),
    ("sine.train.sampling", 1.5, "sine.train.sampling must be in [0, 1], got 1.5"),
    ("sine.data.validation_fraction", 0.8,
     "sine.data.validation_fraction must be >= 0 and below sine.data.train_fraction (0.8), got 0.8"),
    ("ball.generate.rows", 0, "ball.generate.rows must be > 0, got 0"),
    ("ball.generate.speed_max", 0, "ball.generate.speed_max must be > 0, got 0"),
    ("ball.generate.start", [5, 1], "ball.generate.start must be [min, max] with min <= max, got [5, 1]"),
    ("ball.generate.start", [1, 2, 3], "ball.generate.start must be [min, max] with min <= max, got [1, 2, 3]"),
    ("ball.generate.length", [1, 3], "ball.generate.length must start at 2 or more, got [1, 3]"),
    ("ball.prepare.chunk_lines", 0, "ball.prepare.chunk_lines must be > 0, got 0"),
    ("ball.prepare.scale", 0, "ball.prepare.scale must be > 0, got 0.0"),
    ("ball.prepare.split", [0.8, 0.6], "ball.prepare.split must be two cut points 0 < a < b < 1, got [0.8, 0.6]"),
    ("ball.models", ["mlp"], "ball.models: 'mlp' has no recurrent state; choose rnn, lstm or gru"),
    ("ball.train.engine", "gpu", "ball.train.engine: unknown engine 'gpu'; choose from ['torch', 'compiled']"),
    ("ball.train.batch_size", 0, "ball.train.batch_size must be > 0, got 0"),
    ("ball.train.seeds", [2, 2], "ball.train.seeds must be a non-empty list without repeats, got [2, 2]"),
    ("ball.train.patience", 0, "ball.train.patience must be > 0, got 0"),
    ("ball.train.min_history", 0, "ball.train.min_history must be > 0, got 0"),
    ("ball.train.monitor", "loss", "ball.train.monitor: unknown monitor 'loss'; choose from ['val_accuracy', 'val_mae']"),
    ("windows.data.x_max", -5, "windows.data.x_max must be > 0, got -5.0"),
    ("windows.time_step", 0, "windows.time_step must be > 0, got 0"),
    ("random_windows.steps", 2, "random_windows.steps must be at least 3 (inputs and targets of 2 or more), got 2"),
    ("random_windows.span", 0, "random_windows.span must be > 0, got 0.0"),
    ("random_windows.start_max", 0, "random_windows.start_max must be > 0, got 0"),
    ("random_windows.iterations_per_epoch", 0, "random_windows.iterations_per_epoch must be > 0, got 0"),
    ("random_windows.init_std", 0, "random_windows.init_std must be > 0, got 0.0"),
    ("random_windows.test_starts", [], "random_windows.test_starts is empty"),
    ("random_windows.models", ["mlp"], "random_windows.models: 'mlp' has no recurrent state; choose rnn, lstm or gru"),
    ("analysis.window", 0, "analysis.window must be > 0, got 0"),
]


@pytest.mark.parametrize(("key", "value", "message"), OUT_OF_RANGE,
                         ids=[f"{k}={v}" for k, v, _ in OUT_OF_RANGE])
def test_params_value_out_of_range(key, value, message):
    assert_params_error(changed(key, value), message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the top level must be a mapping, got None"),
        ("seq_len: [1\n", ":2: not valid YAML (expected ',' or ']', but got '<stream end>')"),
        ("- 1\n- 2\n", "the top level must be a mapping, got [1, 2]"),
    ],
    ids=["empty", "bad-yaml", "a-list"],
)
def test_params_file_that_is_no_mapping(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError) as info:
        params.load(path)
    separator = "" if message.startswith(":") else ": "
    assert str(info.value) == f"{path}{separator}{message}"


def test_params_file_missing(tmp_path):
    with pytest.raises(ParamsError) as info:
        params.load(tmp_path / "nowhere.yaml")
    assert str(info.value) == f"{tmp_path / 'nowhere.yaml'}: no such file"


def test_a_stage_with_bad_params_exits_1_with_one_line_and_keeps_its_previous_output(tmp_path, monkeypatch, capsys):
    out = tmp_path / "ball.csv"
    assert run_stage_script("generate_ball.py", out, "--params", params_file(tmp_path), monkeypatch=monkeypatch) == 0
    before = snapshot(out)
    capsys.readouterr()
    bad = params_file(tmp_path, seq_len="abc")  # what `dvc exp run -S seq_len=abc` writes
    assert run_stage_script("generate_ball.py", out, "--params", bad, monkeypatch=monkeypatch) == 1
    assert capsys.readouterr().err == f"error: {bad}: seq_len must be an integer, got 'abc'\n"
    assert snapshot(out) == before
    assert leftovers(tmp_path) == []


def test_a_stage_with_bad_params_exits_1_as_a_process_and_writes_nothing(tmp_path):
    bad = params_file(tmp_path, ball__generate__rows=-3)
    proc = run([sys.executable, str(ROOT / "stages/generate_ball.py"), "out.csv", "--params", str(bad)], tmp_path, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", f"error: {bad}: ball.generate.rows must be > 0, got -3\n")
    assert not (tmp_path / "out.csv").exists()


# ---------------------------------------------------------------------------------------
# The ball csv, through prepare_ball
# ---------------------------------------------------------------------------------------

GOOD_CSV = "1,3,5,7,9\n9,7,5,3\n-2,-2,-2\n" * 10

CSV_DEFECTS = [
    ("empty", b"", "{csv}: empty file, expected one ball history per line (e.g. 1,3,5,7)"),
    ("blank-line", b"1,2,3\n\n4,5,6\n", "{csv}:2: empty position"),
    ("non-number", b"1,2,3\n4,x,6\n", "{csv}:2: not an integer position: 'x'"),
    ("decimal", b"1,2,3\n4,5.5,6\n", "{csv}:2: not an integer position: '5.5'"),
    ("one-value", b"1,2,3\n7\n", "{csv}:2: a history needs at least 2 positions"),
    ("huge-line", b"1,2\n" + b",".join([b"1"] * 10_001) + b"\n", "{csv}:2: 10001 values on one line (at most 10000)"),
    ("huge-value", b"1,2\n3,99999999999999999999\n",
     "{csv}:2: position 99999999999999999999 is out of range (at most 16777216 either way)"),
    ("nan", b"1,nan,3\n", "{csv}:1: not an integer position: 'nan'"),
    ("inf", b"1,2\n-inf,3\n", "{csv}:2: not an integer position: '-inf'"),
    ("trailing-comma", b"1,2,3,\n", "{csv}:1: empty position after the last comma"),
    ("non-utf8", b"1,2,3\n4,\xff,6\n", "{csv}: not a text file"),
    ("header", b"position\n1,2,3\n", "{csv}:1: not an integer position: 'position'"),
]


@pytest.fixture
def prepared(tmp_path, monkeypatch, capsys):
    """A good csv prepared into shards: the previous good output every defect must leave alone."""
    (tmp_path / "good.csv").write_text(GOOD_CSV)
    p = params_file(tmp_path)
    assert run_stage_script("prepare_ball.py", tmp_path / "good.csv", tmp_path / "shards", "--params", p,
                            monkeypatch=monkeypatch) == 0
    capsys.readouterr()
    return tmp_path


def assert_prepare_refuses(folder: Path, csv: Path, message: str, monkeypatch, capsys) -> None:
    before = snapshot(folder / "shards")
    code = run_stage_script("prepare_ball.py", csv, folder / "shards", "--params", folder / "params.yaml",
                            monkeypatch=monkeypatch)
    assert (code, capsys.readouterr().err) == (1, f"error: {message.format(csv=csv)}\n")
    assert snapshot(folder / "shards") == before
    assert leftovers(folder) == []


@pytest.mark.parametrize(("name", "content", "message"), CSV_DEFECTS, ids=[c[0] for c in CSV_DEFECTS])
def test_ball_csv_defect(prepared, name, content, message, monkeypatch, capsys):
    csv = prepared / f"{name}.csv"
    csv.write_bytes(content)
    assert_prepare_refuses(prepared, csv, message, monkeypatch, capsys)


def test_ball_csv_that_is_a_directory(prepared, monkeypatch, capsys):
    (prepared / "folder.csv").mkdir()
    assert_prepare_refuses(prepared, prepared / "folder.csv", "{csv}: is a directory, not a file", monkeypatch, capsys)


def test_ball_csv_missing(prepared, monkeypatch, capsys):
    assert_prepare_refuses(prepared, prepared / "nowhere.csv", "{csv}: no such file", monkeypatch, capsys)


def test_ball_csv_defect_without_a_previous_output_leaves_none(tmp_path, monkeypatch, capsys):
    (tmp_path / "bad.csv").write_text("1,2,3\n4,x\n")
    code = run_stage_script("prepare_ball.py", tmp_path / "bad.csv", tmp_path / "shards", "--params", params_file(tmp_path),
                            monkeypatch=monkeypatch)
    assert (code, capsys.readouterr().err) == (1, f"error: {tmp_path / 'bad.csv'}:2: not an integer position: 'x'\n")
    assert not (tmp_path / "shards").exists()
    assert leftovers(tmp_path) == []


def test_ball_csv_with_crlf_line_ends_gives_the_same_shards(prepared, monkeypatch):
    """Not a defect: a csv saved on Windows is the same data."""
    (prepared / "crlf.csv").write_bytes(GOOD_CSV.replace("\n", "\r\n").encode())
    assert run_stage_script("prepare_ball.py", prepared / "crlf.csv", prepared / "crlf_shards", "--params",
                            prepared / "params.yaml", monkeypatch=monkeypatch) == 0
    assert snapshot(prepared / "crlf_shards") == {k.replace("shards", "crlf_shards", 1): v
                                                  for k, v in snapshot(prepared / "shards").items()}


# ---------------------------------------------------------------------------------------
# A full disk: the write fails halfway; the previous output stays, no temporary is left
# ---------------------------------------------------------------------------------------


def full_disk(monkeypatch, method: str) -> None:
    """Every ``Path.<method>`` writes half its data, then fails as a full disk does."""
    original = getattr(Path, method)

    def half_then_enospc(self, data, *args, **kwargs):
        original(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, method, half_then_enospc)


def test_full_disk_while_writing_a_file(tmp_path, monkeypatch, capsys):
    out = tmp_path / "ball.csv"
    out.write_text("1,2,3\n")  # the previous good output
    p = params_file(tmp_path)
    full_disk(monkeypatch, "write_text")
    assert run_stage_script("generate_ball.py", out, "--params", p, monkeypatch=monkeypatch) == 1
    assert capsys.readouterr().err == f"error: {out}: cannot write (No space left on device); the previous version is untouched\n"
    assert out.read_text() == "1,2,3\n"
    assert leftovers(tmp_path) == []


def test_full_disk_while_writing_a_folder_of_shards(prepared, monkeypatch, capsys):
    before = snapshot(prepared / "shards")
    full_disk(monkeypatch, "write_bytes")
    code = run_stage_script("prepare_ball.py", prepared / "good.csv", prepared / "shards", "--params",
                            prepared / "params.yaml", monkeypatch=monkeypatch)
    shards = prepared / "shards"
    assert (code, capsys.readouterr().err) == (
        1, f"error: {shards}: cannot write (No space left on device); the previous version is untouched\n")
    assert snapshot(shards) == before
    assert leftovers(prepared) == []


# ---------------------------------------------------------------------------------------
# Artifacts: shards
# ---------------------------------------------------------------------------------------


class Exploit:
    """Unpickling this would run code: the marker file proves whether it did."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


GOOD_SHARD = (torch.rand(4, 6), torch.tensor([6, 5, 2, 3]))


def shard_defects(marker: str) -> list[tuple[str, bytes, str]]:
    good = ball_data.shard_bytes(GOOD_SHARD)
    archive = torch_bytes(GOOD_SHARD)
    return [
        ("truncated", good[: len(good) // 2], "not a complete gzip file (truncated or corrupted)"),
        ("not-gzip", archive, "not a gzip file (a shard is gzip-compressed torch.save output)"),
        ("gzip-of-garbage", gzip.compress(b"hello world " * 20), "the gzip holds no torch.save archive"),
        ("gzip-of-cut-archive", gzip.compress(archive[: len(archive) // 2]), "truncated or damaged torch.save archive"),
        ("pickle-payload", gzip.compress(pickle.dumps((torch.zeros(2, 3), Exploit(marker)), protocol=2)),
         "refused to load: the gzip holds a bare pickle, not a torch.save archive (unpickling it could run code)"),
        ("torch-archive-with-an-object", gzip.compress(torch_bytes((torch.zeros(2, 3), Exploit(marker)))),
         "refused to load: the gzip holds Python objects beyond tensors and plain containers "
         "(unpickling them could run code)"),
        ("empty", b"", "empty file"),
        ("gzip-of-nothing", gzip.compress(b""), "the gzip is empty"),
        ("a-dict", gzip.compress(torch_bytes({"padded": torch.zeros(2, 3)})), "expected a (padded, lengths) pair of tensors"),
        ("3-d-padded", gzip.compress(torch_bytes((torch.zeros(2, 3, 1), torch.tensor([2, 3])))),
         "padded positions must be a 2-D float tensor, got torch.float32 (2, 3, 1)"),
        ("int-padded", gzip.compress(torch_bytes((torch.zeros(2, 3, dtype=torch.int64), torch.tensor([2, 3])))),
         "padded positions must be a 2-D float tensor, got torch.int64 (2, 3)"),
        ("float-lengths", gzip.compress(torch_bytes((torch.zeros(2, 3), torch.tensor([2.0, 3.0])))),
         "lengths must be int64 of shape (2,), got torch.float32 (2,)"),
        ("lengths-too-long", gzip.compress(torch_bytes((torch.zeros(2, 3), torch.tensor([2, 7])))),
         "lengths must lie in [2, 3]"),
    ]


SHARD_CASES = [name for name, _, _ in shard_defects("unused")]


@pytest.mark.parametrize("case", SHARD_CASES)
def test_shard_defect(tmp_path, case):
    marker = tmp_path / "executed"
    _, content, message = next(c for c in shard_defects(str(marker)) if c[0] == case)
    path = tmp_path / "training_set.0.pt"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        ball_data.load_shard(path)
    assert str(info.value) == f"{path}: {message}"
    assert not marker.exists(), "unpickling ran code"


def test_shard_that_is_a_directory(tmp_path):
    (tmp_path / "training_set.0.pt").mkdir()
    with pytest.raises(DataError) as info:
        ball_data.load_shard(tmp_path / "training_set.0.pt")
    assert str(info.value) == f"{tmp_path / 'training_set.0.pt'}: is a directory, not a file"


# ---------------------------------------------------------------------------------------
# Artifacts: checkpoints
# ---------------------------------------------------------------------------------------

GRU = ModelConfig("gru", hidden_size=8)


def checkpoint_bytes(tmp_path: Path, cfg: ModelConfig = GRU, seed: int = 0) -> bytes:
    path = tmp_path / f"made-{cfg.kind}-{cfg.hidden_size}-{seed}.pt"
    save_checkpoint(path, reference_checkpoint(cfg, build_reference(cfg, seed=seed), seed, scale=50.0, epochs=1, best_epoch=1))
    return path.read_bytes()


def edited_checkpoint(tmp_path: Path, edit) -> bytes:
    data = torch.load(io.BytesIO(checkpoint_bytes(tmp_path)), weights_only=True)
    edit(data)
    return torch_bytes(data)


def checkpoint_defects(tmp_path: Path, marker: str) -> dict[str, tuple[bytes, str]]:
    good = checkpoint_bytes(tmp_path)

    def set_weight(name, value):
        return lambda data: data["weights"].__setitem__(name, value)

    return {
        "truncated": (good[: len(good) // 2], "truncated or damaged torch.save archive"),
        "not-torch": (b"hello, I am a text file\n", "not a torch.save archive"),
        "gzip-of-a-checkpoint": (gzip.compress(good), "not a torch.save archive"),
        "pickle-payload": (pickle.dumps({"format": Exploit(marker)}, protocol=2),
                           "refused to load: it is a bare pickle, not a torch.save archive (unpickling it could run code)"),
        "torch-archive-with-an-object": (torch_bytes({"format": Exploit(marker)}),
                                         "refused to load: it holds Python objects beyond tensors and plain containers "
                                         "(unpickling them could run code)"),
        "empty": (b"", "empty file"),
        "a-tensor": (torch_bytes(torch.zeros(3)), "not an rnnlab checkpoint (expected format 'rnnlab-checkpoint-1')"),
        "no-weights": (edited_checkpoint(tmp_path, lambda data: data.pop("weights")), "damaged checkpoint (no 'weights' in it)"),
        "unknown-model": (edited_checkpoint(tmp_path, lambda data: data["model_config"].__setitem__("kind", "cnn")),
                          "damaged checkpoint (unknown model 'cnn'; choose from ['gru', 'lstm', 'mlp', 'rnn'])"),
        "wrong-shape": (edited_checkpoint(tmp_path, set_weight("rnn.weight_hh_l0", torch.zeros(1, 24, 7))),
                        "damaged checkpoint (weight rnn.weight_hh_l0 is torch.float32 (1, 24, 7), "
                        "a gru needs torch.float32 (1, 24, 8))"),
        "broadcastable-shape": (edited_checkpoint(tmp_path, set_weight("rnn.bias_hh_l0", torch.zeros(1))),
                                "damaged checkpoint (weight rnn.bias_hh_l0 is torch.float32 (1,), "
                                "a gru needs torch.float32 (1, 24))"),
        "wrong-dtype": (edited_checkpoint(tmp_path, set_weight("rnn.bias_hh_l0", torch.zeros(1, 24, dtype=torch.float64))),
                        "damaged checkpoint (weight rnn.bias_hh_l0 is torch.float64 (1, 24), "
                        "a gru needs torch.float32 (1, 24))"),
        "missing-weight": (edited_checkpoint(tmp_path, lambda data: data["weights"].pop("rnn.bias_hh_l0")),
                           "damaged checkpoint (weights do not match a gru: keys ['rnn.bias_hh_l0'])"),
    }


CHECKPOINT_CASES = [  # the keys of checkpoint_defects
    "truncated", "not-torch", "gzip-of-a-checkpoint", "pickle-payload", "torch-archive-with-an-object", "empty",
    "a-tensor", "no-weights", "unknown-model", "wrong-shape", "broadcastable-shape", "wrong-dtype", "missing-weight",
]


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
def test_checkpoint_defect(tmp_path, case):
    marker = tmp_path / "executed"
    content, message = checkpoint_defects(tmp_path, str(marker))[case]
    path = tmp_path / "gru.pt"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_checkpoint(path)
    assert str(info.value) == f"{path}: {message}"
    assert not marker.exists(), "unpickling ran code"


@pytest.mark.parametrize(
    ("cfg", "seed", "wanted", "seeds", "difference"),
    [
        (ModelConfig("lstm", hidden_size=8), 0, GRU, None, "kind lstm, params.yaml gru"),
        (ModelConfig("gru", hidden_size=16), 0, GRU, None, "hidden_size 16, params.yaml 8"),
        (GRU, 3, GRU, [0], "seeds [3], params.yaml [0]"),
    ],
    ids=["another-model", "other-params", "other-seeds"],
)
def test_checkpoint_of_another_model_or_params(tmp_path, cfg, seed, wanted, seeds, difference):
    path = tmp_path / "gru.pt"
    path.write_bytes(checkpoint_bytes(tmp_path, cfg, seed))
    with pytest.raises(DataError) as info:
        load_checkpoint(path, wanted, seeds)
    assert str(info.value) == f"{path}: trained with other params than params.yaml; run `dvc repro` ({difference})"


@pytest.mark.parametrize("case", ["missing", "directory"])
def test_checkpoint_missing_or_a_directory(tmp_path, case):
    path = tmp_path / "gru.pt"
    if case == "directory":
        path.mkdir()
    with pytest.raises(DataError) as info:
        load_checkpoint(path)
    assert str(info.value) == f"{path}: " + ("no such file" if case == "missing" else "is a directory, not a file")


@pytest.fixture
def evaluated(tmp_path, monkeypatch, capsys):
    """A ball folder as the pipeline leaves it: shards, a gru checkpoint, and evaluate_ball's outputs."""
    p = params_file(tmp_path)
    rows = ball_csv.generate_rows(300, (-10, 10), 5, (5, 10), seed=0)
    (tmp_path / "ball.csv").write_text(ball_csv.format_rows(rows))
    assert run_stage_script("prepare_ball.py", tmp_path / "ball.csv", tmp_path / "shards", "--params", p,
                            monkeypatch=monkeypatch) == 0
    cfg = ball.model_config(params.load(p), "gru")
    (tmp_path / "models").mkdir()
    trained_on = provenance.ball(tmp_path / "shards", 50.0)
    save_checkpoint(tmp_path / "models/gru.pt", reference_checkpoint(cfg, build_reference(cfg, seed=0), 0, scale=50.0, epochs=1,
                                                                     best_epoch=1, trained_on=trained_on))
    assert evaluate(tmp_path, monkeypatch) == 0
    capsys.readouterr()
    return tmp_path


def evaluate(folder: Path, monkeypatch) -> int:
    return run_stage_script("evaluate_ball.py", "--shards", folder / "shards", "--models", folder / "models",
                            "--metrics", folder / "metrics.json", "--detail", folder / "detail.json",
                            "--predictions", folder / "predictions.csv",
                            "--params", folder / "params.yaml", monkeypatch=monkeypatch)


def outputs(folder: Path) -> tuple:
    return snapshot(folder / "metrics.json"), snapshot(folder / "predictions.csv")


def test_a_damaged_shard_stops_evaluate_ball_and_keeps_its_previous_outputs(evaluated, monkeypatch, capsys):
    before = outputs(evaluated)
    shard = evaluated / "shards/testing_set.0.pt"
    shard.write_bytes(shard.read_bytes()[:100])
    assert evaluate(evaluated, monkeypatch) == 1
    assert capsys.readouterr().err == f"error: {shard}: not a complete gzip file (truncated or corrupted)\n"
    assert outputs(evaluated) == before
    assert leftovers(evaluated) == []


def test_a_checkpoint_of_another_model_stops_evaluate_ball_and_keeps_its_previous_outputs(evaluated, monkeypatch, capsys):
    before = outputs(evaluated)
    lstm = ModelConfig("lstm", hidden_size=8)
    save_checkpoint(evaluated / "models/gru.pt", reference_checkpoint(lstm, build_reference(lstm, seed=0), 0, scale=50.0,
                                                                     epochs=1, best_epoch=1))
    assert evaluate(evaluated, monkeypatch) == 1
    assert capsys.readouterr().err == (f"error: {evaluated / 'models/gru.pt'}: trained with other params than params.yaml; "
                                       "run `dvc repro` (kind lstm, params.yaml gru)\n")
    assert outputs(evaluated) == before


# ---------------------------------------------------------------------------------------
# rnnlab predict-ball
# ---------------------------------------------------------------------------------------


@pytest.fixture
def ball_models(tmp_path):
    """Untrained ball models and training shards spanning -12..40 (as tests/test_cli.py)."""
    return ball_models_folder(tmp_path)


def predict(folder: Path, *args: str, stdin: str | None = None, monkeypatch, capsys) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(["predict-ball", *args, "--models", str(folder), "--metrics", str(folder / "metrics.json"),
                     "--shards", str(folder / "shards")])
    out, err = capsys.readouterr()
    return code, out, err


PREDICT_DEFECTS = [
    ("empty", "", "empty position"),
    ("one-value", "7", "a history needs at least 2 positions"),
    ("non-number", "1,x,3", "not an integer position: 'x'"),
    ("huge-value", "1,99999999999", "position 99999999999 is out of range (at most 16777216 either way)"),
    ("huge-line", ",".join(["1"] * 10_001), "10001 values on one line (at most 10000)"),
    ("nan", "1,nan", "not an integer position: 'nan'"),
    ("trailing-comma", "1,2,", "empty position after the last comma"),
]


@pytest.mark.parametrize(("name", "history", "message"), PREDICT_DEFECTS, ids=[c[0] for c in PREDICT_DEFECTS])
def test_predict_ball_bad_history(ball_models, name, history, message, monkeypatch, capsys):
    assert predict(ball_models, history, monkeypatch=monkeypatch, capsys=capsys) == (1, "", f"error: {message}\n")


def test_predict_ball_end_of_input_at_once_quits_cleanly(ball_models, monkeypatch, capsys):
    code, out, err = predict(ball_models, stdin="", monkeypatch=monkeypatch, capsys=capsys)
    assert (code, out) == (0, "History ball locations: \n")
    assert err == "rnnlab: LSTM ball model; type positions like 1,3,5,7 (Ctrl-D to quit)\n"


def test_predict_ball_history_outside_the_training_range_warns_in_one_line(ball_models, monkeypatch, capsys):
    code, out, err = predict(ball_models, "100,110,120", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and out.startswith("Next ball location: ")
    assert err == "warning: positions 100..120 lie outside the training data's range -12..40; the answer is an extrapolation\n"


def test_predict_ball_with_a_damaged_checkpoint(ball_models, monkeypatch, capsys):
    path = ball_models / "lstm.pt"
    path.write_bytes(path.read_bytes()[:200])
    assert predict(ball_models, "1,2,3", monkeypatch=monkeypatch, capsys=capsys) == (
        1, "", f"error: {path}: truncated or damaged torch.save archive\n")


def test_predict_ball_with_metrics_that_are_not_json(ball_models, monkeypatch, capsys):
    (ball_models / "metrics.json").write_text('{"rnn": ')
    assert predict(ball_models, "1,2,3", monkeypatch=monkeypatch, capsys=capsys) == (
        1, "", f"error: {ball_models / 'metrics.json'}:1: not valid JSON (Expecting value)\n")


def test_predict_ball_refuses_a_checkpoint_of_another_model(ball_models, monkeypatch, capsys):
    (ball_models / "lstm.pt").write_bytes((ball_models / "gru.pt").read_bytes())  # a GRU under the LSTM's name
    assert predict(ball_models, "1,2,3", "--model", "lstm", monkeypatch=monkeypatch, capsys=capsys) == (
        1, "", f"error: {ball_models / 'lstm.pt'}: holds a gru model, not a lstm; run `dvc repro train_ball@lstm`\n")


def test_predict_ball_with_metrics_without_a_mae(ball_models, monkeypatch, capsys):
    (ball_models / "metrics.json").write_text('{"B": {"rnn": {"accuracy": 0.5}}}')
    try:
        result = predict(ball_models, "1,2,3", monkeypatch=monkeypatch, capsys=capsys)
    except KeyError:
        pytest.fail("a metrics file without a mae ends in a traceback")
    assert result == (1, "", f"error: {ball_models / 'metrics.json'}: no test MAE per model; "
                             "run `dvc repro evaluate_ball` (or pass --model)\n")


def test_predict_ball_ctrl_c_prints_one_line_and_exits_130(ball_models, monkeypatch, capsys):
    def ctrl_c(prompt=""):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "read_line", ctrl_c)
    try:
        code, _out, err = predict(ball_models, monkeypatch=monkeypatch, capsys=capsys)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C in predict-ball ends in a traceback")
    assert (code, err.splitlines()[-1]) == (130, "interrupted")
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------
# Signals and concurrency: real processes on tiny params
# ---------------------------------------------------------------------------------------


def wait_for_line(stream, prefix: str) -> list[str]:
    """Read ``stream`` until a line starts with ``prefix`` (or it ends); the lines read."""
    lines = []
    for line in stream:
        lines.append(line)
        if line.startswith(prefix):
            break
    return lines


def ctrl_c_as_in_a_terminal() -> None:
    """In the child before it runs: SIGINT's default action, as a terminal's foreground job has it.
    A test run started as a background job of a non-interactive shell (`make test &`) inherits
    SIGINT ignored, and a Python started with SIGINT ignored never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_sigint_of_a_training_stage_prints_one_line_no_traceback_and_keeps_the_previous_checkpoint(tmp_path):
    # the torch engine: no kernel to compile first; 3000 epochs: far longer than the test waits
    p = params_file(tmp_path, ball__train__epochs=3000, ball__train__patience=3000, ball__train__engine="torch")
    rows = ball_csv.generate_rows(300, (-10, 10), 5, (5, 10), seed=0)
    shards = tmp_path / "shards"
    shards.mkdir()
    for chunk, parts in ball_data.make_shards(rows, 2000, 50.0, (0.6, 0.8), seed=0):
        for split, shard in parts.items():
            (shards / ball_data.shard_name(split, chunk)).write_bytes(ball_data.shard_bytes(shard))
    checkpoint = tmp_path / "gru.pt"
    checkpoint.write_bytes(b"the previous good checkpoint")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, str(ROOT / "stages/train_ball.py"), "--model", "gru", "--shards", str(shards),
               "--checkpoint", str(checkpoint), "--history", str(tmp_path / "gru.csv"),
               "--timing", str(tmp_path / "gru.json"), "--params", str(p)]
    with subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True,
                          preexec_fn=ctrl_c_as_in_a_terminal) as proc:
        seen = wait_for_line(proc.stderr, "ball gru: ")  # the first progress line: training is under way
        assert seen and seen[-1].startswith("ball gru: "), "".join(seen)
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        code = proc.wait(timeout=120)
    assert code == 130
    assert "Traceback" not in rest and "KeyboardInterrupt" not in rest, rest
    assert rest.splitlines()[-1] == INTERRUPTED
    assert [line for line in rest.splitlines() if not line.startswith("ball gru: ")] == [INTERRUPTED]
    assert checkpoint.read_bytes() == b"the previous good checkpoint"
    assert leftovers(tmp_path) == []


def test_what_a_killed_write_left_is_removed_by_the_next_write(tmp_path):
    """SIGKILL between an atomic write's start and its rename leaves a hidden temporary beside
    the output, never the output half-written; the next write of that output clears it."""
    (tmp_path / ".gru.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / ".shards.def456.tmp").mkdir()
    (tmp_path / ".shards.def456.tmp" / "training_set.0.pt").write_bytes(b"half a shard")
    (tmp_path / ".other.csv.x.tmp").write_text("someone else's")
    rnnlab_io.write_text(tmp_path / "gru.pt", "new")
    with rnnlab_io.atomic_dir(tmp_path / "shards") as folder:
        (folder / "training_set.0.pt").write_bytes(b"a shard")
    assert leftovers(tmp_path) == [".other.csv.x.tmp"]
    assert (tmp_path / "gru.pt").read_text() == "new"


# ---------------------------------------------------------------------------------------
# DVC end to end: two repros at once, SIGKILL mid-training, a failing `dvc exp run -S`
# ---------------------------------------------------------------------------------------

TRAINED = ("models/ball/gru.pt", "plots/ball/history/gru.csv")


@pytest.fixture(scope="module")
def ball_pipeline(tmp_path_factory):
    """A copy of the project whose ball data are prepared and committed; training uses the torch
    engine (no kernel to compile in a fresh copy) for 600 epochs: a few seconds, long enough to
    be caught mid-run after its first progress line."""
    project = tiny_project(tmp_path_factory.mktemp("faults") / "project", long_ball(600), "tiny ball params")
    project.run("dvc", "repro", "prepare_ball")
    project.commit("prepared ball data")
    return {"project": project}


def start_repro(project, *args: str, log: Path, shell: str = "/bin/bash") -> subprocess.Popen:
    """``dvc repro args`` in the background, in its own process group, its output in ``log``.
    DVC runs each stage command through ``$SHELL -c``, so the shell is set, not inherited."""
    return start_dvc(project, "repro", *args, log=log, shell=shell)


def start_dvc(project, *args: str, log: Path, shell: str = "/bin/bash") -> subprocess.Popen:
    """``dvc args`` in the background, as ``start_repro``."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(project.path / "src"), "SHELL": shell}
    with log.open("w") as out:
        return subprocess.Popen(["dvc", *args], cwd=project.path, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=ctrl_c_as_in_a_terminal)


def wait_for_training(proc: subprocess.Popen, log: Path) -> None:
    """Return once the stage printed its first progress line (training is under way)."""
    while "ball gru: " not in log.read_text():
        assert proc.poll() is None, f"dvc repro ended before training started:\n{log.read_text()}"
        time.sleep(0.05)


def trained(project) -> dict:
    return {name: snapshot(project.path / name) for name in TRAINED}


@pytest.mark.slow
def test_two_dvc_repro_at_once_the_second_refuses_cleanly_and_the_first_completes(ball_pipeline, tmp_path):
    project = ball_pipeline["project"]
    first = start_repro(project, "train_ball@gru", log=tmp_path / "first.log")
    try:
        wait_for_training(first, tmp_path / "first.log")
        second = project.run("dvc", "repro", "train_ball@gru", check=False)
    finally:
        assert first.wait(timeout=600) == 0, (tmp_path / "first.log").read_text()
    assert second.returncode != 0
    assert "Running stage" not in second.stdout
    assert "is busy, it is being blocked by:" in second.stderr and f"(PID {first.pid}): " in second.stderr, second.stderr
    assert "Traceback" not in second.stderr
    ball_pipeline["reference"] = trained(project)  # an uninterrupted run's outputs
    assert all(ball_pipeline["reference"].values())


# What DVC reports is the status of the shell it started: bash runs a lone command in its own
# process (exec), so DVC sees our exit 130; dash (/bin/sh, DVC's shell when $SHELL is unset, as
# under some CI runners) forks, and the Ctrl-C kills dash itself: "exited with -2". Our line and
# the missing outputs are the same under both.
SHELLS = {"/bin/bash": 130, "/bin/sh": -2}


@pytest.mark.slow
@pytest.mark.parametrize("shell", SHELLS)
def test_ctrl_c_during_dvc_repro_prints_our_line_and_dvcs_no_traceback_and_leaves_no_output(ball_pipeline, tmp_path, shell):
    project = ball_pipeline["project"]
    log = tmp_path / "interrupted.log"
    interrupted = start_repro(project, "--force", "--single-item", "train_ball@gru", log=log, shell=shell)
    try:
        wait_for_training(interrupted, log)
    finally:
        os.killpg(interrupted.pid, signal.SIGINT)  # Ctrl-C in a terminal: dvc and the stage both get it
        code = interrupted.wait(timeout=120)
    output = log.read_text()
    assert code != 0
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    after = output.splitlines()[[line.startswith("ball gru: ") for line in output.splitlines()].index(True) + 1:]
    after = [line for line in after if not line.startswith("ball gru: ") and line.strip()]
    assert after[0] == INTERRUPTED
    failed = f"ERROR: failed to reproduce 'train_ball@gru': failed to run: {stage_command(project)}"
    assert after[1:] == [f"{failed}, exited with {SHELLS[shell]}"]
    assert not (project.path / "models/ball/gru.pt").exists()
    assert leftovers(project.path / "models/ball") == []


def stage_command(project) -> str:
    return ("python stages/train_ball.py --shards data/ball/shards --checkpoint 'models/ball/{model}.pt' "
            "--history 'plots/ball/history/{model}.csv' --timing 'timings/ball/{model}.json'")


@pytest.mark.slow
def test_a_failing_dvc_exp_run_leaves_its_params_and_deletes_the_outputs_of_the_stage_it_ran(ball_pipeline):
    """DVC's behaviour, not ours to change: `dvc exp run -S` writes params.yaml, removes the
    outputs of each stage it runs before running it, and on failure restores neither. Our part:
    the stage fails at once with one line naming the key; the README gives the recovery."""
    project = ball_pipeline["project"]
    csv = project.path / "data/ball/ball.csv"
    before = snapshot(csv)
    proc = project.run("dvc", "exp", "run", "-S", "ball.generate.rows=abc", "prepare_ball", check=False)
    assert proc.returncode != 0
    assert "error: params.yaml: ball.generate.rows must be an integer, got 'abc'\n" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "rows: abc" in (project.path / "params.yaml").read_text()  # left by DVC
    assert not csv.exists()  # removed by DVC before the stage ran

    # the README's recovery: `git checkout params.yaml && dvc checkout`
    project.run("git", "checkout", "params.yaml")
    project.run("dvc", "checkout", "generate_ball", "prepare_ball")  # (this copy never ran the other stages)
    assert snapshot(csv) == before
    status = project.run("dvc", "status", "generate_ball", "prepare_ball")
    assert status.stdout.strip() == "Data and pipelines are up to date.", status.stdout


@pytest.mark.slow
def test_a_failing_dvc_exp_run_temp_leaves_the_workspace_alone(ball_pipeline):
    """The way to try a value without risking the workspace: `--temp` runs in a copy."""
    project = ball_pipeline["project"]
    watched = [project.path / "params.yaml", project.path / "data/ball/ball.csv"]
    before = [snapshot(path) for path in watched]
    proc = project.run("dvc", "exp", "run", "--temp", "-S", "ball.generate.rows=abc", "prepare_ball", check=False)
    assert proc.returncode != 0
    assert "error: params.yaml: ball.generate.rows must be an integer, got 'abc'\n" in proc.stdout + proc.stderr
    assert [snapshot(path) for path in watched] == before


@pytest.mark.slow
def test_sigkill_mid_training_then_dvc_repro_completes_with_identical_results(ball_pipeline, tmp_path):
    project = ball_pipeline["project"]
    if "reference" not in ball_pipeline:  # run alone: make the uninterrupted reference first
        project.run("dvc", "repro", "train_ball@gru")
        ball_pipeline["reference"] = trained(project)
    # no cached result (as on the first run on a machine): the repro after the kill must retrain,
    # not check the previous result out of the cache
    shutil.rmtree(project.path / ".dvc/cache")
    killed = start_repro(project, "--force", "--single-item", "train_ball@gru", log=tmp_path / "killed.log")
    try:
        wait_for_training(killed, tmp_path / "killed.log")
    finally:
        os.killpg(killed.pid, signal.SIGKILL)  # dvc and the stage: kill -9, a lost machine
        killed.wait(timeout=60)
    # DVC removed the stage's outputs before running it; the kill left none half-written
    assert not (project.path / "models/ball/gru.pt").exists()
    history = project.path / "plots/ball/history/gru.csv"  # rewritten atomically while training: whole or absent
    assert not history.exists() or len({len(row.split(",")) for row in history.read_text().splitlines()}) == 1

    again = project.run("dvc", "repro", "train_ball@gru")
    assert "Running stage 'train_ball@gru'" in again.stdout, again.stdout
    assert trained(project) == ball_pipeline["reference"]
    for folder in ("models/ball", "plots/ball/history"):
        assert leftovers(project.path / folder) == []


@pytest.mark.slow
def test_a_killed_workspace_dvc_exp_run_leaves_head_detached_and_the_documented_recovery_reattaches_it(ball_pipeline, tmp_path):
    """DVC's, not ours to change: `kill -9` of a workspace `dvc exp run` leaves HEAD detached and its
    params and dvc.lock staged. Ours: the stage ends with dvc (it no longer trains on), and the
    recovery docs/reliability.md gives puts the workspace back on the branch."""
    project = ball_pipeline["project"]
    log = tmp_path / "exp.log"
    killed = start_dvc(project, "exp", "run", "-S", "ball.train.lr=0.05", "train_ball@gru", log=log)
    try:
        wait_for_training(killed, log)
    finally:
        os.kill(killed.pid, signal.SIGKILL)  # dvc alone: its stage must end with it
        killed.wait(timeout=60)
    deadline = time.monotonic() + 20
    while TERMINATED not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert TERMINATED in log.read_text(), "the stage trained on after dvc was killed"
    assert project.run("git", "symbolic-ref", "-q", "HEAD", check=False).returncode != 0, "DVC left HEAD on the branch"
    assert "params.yaml" in project.run("git", "diff", "--cached", "--name-only").stdout
    for command in (("git", "checkout", "-q", "main"), ("git", "reset", "-q"), ("git", "checkout", "HEAD", "--", "params.yaml")):
        project.run(*command)
    project.run("dvc", "repro", "train_ball@gru")
    assert project.run("git", "symbolic-ref", "HEAD").stdout.strip() == "refs/heads/main"
    assert project.run("git", "status", "--porcelain", "params.yaml").stdout == ""
    assert "train_ball@gru" not in project.run("dvc", "status", "train_ball@gru").stdout
