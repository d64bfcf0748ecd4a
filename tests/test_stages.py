"""Stage scripts on bad input: one line naming the problem, exit 1, nothing written."""

import sys

import pytest
import yaml

from conftest import ROOT, run


def stage(name: str, *args: str, cwd) -> "run":
    return run([sys.executable, str(ROOT / "stages" / f"{name}.py"), *args], cwd, check=False)


@pytest.fixture
def workdir(tmp_path, default_params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(default_params))
    (tmp_path / "scaling.json").write_text('{"mean": 0.0, "std": 1.0}')  # prepare_series' identity
    return tmp_path


def train_args(csv="series.csv"):
    return ["--model", "gru", "--data", csv, "--scaling", "scaling.json", "--series", csv, "--checkpoint", "out/gru.pt",
            "--history", "out/gru.csv", "--timing", "out/gru.json"]


def assert_failed_cleanly(proc, workdir, message):
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: "), proc.stderr
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    leftovers = list((workdir / "out").rglob("*")) if (workdir / "out").exists() else []
    assert leftovers == [], f"partial outputs left: {leftovers}"


def test_non_numeric_csv_line(workdir):
    (workdir / "series.csv").write_text("0.1\n0.2\nabc\n" + "0.3\n" * 100)
    proc = stage("train_sine", *train_args(), cwd=workdir)
    assert_failed_cleanly(proc, workdir, "series.csv:3: not a number: 'abc'")


def test_nan_in_csv(workdir):
    (workdir / "series.csv").write_text("0.1\nnan\n" + "0.3\n" * 100)
    proc = stage("train_sine", *train_args(), cwd=workdir)
    assert_failed_cleanly(proc, workdir, "series.csv:2: not a finite number: 'nan'")


def test_too_few_points_for_one_window(workdir, default_params):
    (workdir / "series.csv").write_text("0.5\n" * 20)  # 16 training points, windows of 21
    proc = stage("train_sine", *train_args(), cwd=workdir)
    assert_failed_cleanly(proc, workdir, "seq_len 20 leaves no training window: 16 training points")


def test_unknown_model_name(workdir):
    (workdir / "series.csv").write_text("0.5\n" * 100)
    args = train_args()
    args[1] = "transformer"
    proc = stage("train_sine", *args, cwd=workdir)
    assert_failed_cleanly(proc, workdir, "sine.models: unknown model 'transformer'")


@pytest.mark.parametrize(("key", "value", "message"), [
    (("seq_len",), 0, "seq_len must be > 0, got 0"),
    (("seq_len",), -3, "seq_len must be > 0, got -3"),
    (("sine", "train", "epochs"), 0, "sine.train.epochs must be > 0, got 0"),
    (("sine", "train", "lr"), -0.1, "sine.train.lr must be > 0, got -0.1"),
    (("sine", "model", "hidden_size"), 0, "sine.model.hidden_size must be > 0, got 0"),
    (("sine", "train", "momentum"), 0.9, "unknown key sine.train.momentum"),
])
def test_bad_params_key(workdir, default_params, key, value, message):
    section = default_params
    for part in key[:-1]:
        section = section[part]
    section[key[-1]] = value
    (workdir / "params.yaml").write_text(yaml.safe_dump(default_params))
    (workdir / "series.csv").write_text("0.5\n" * 100)
    proc = stage("train_sine", *train_args(), cwd=workdir)
    assert_failed_cleanly(proc, workdir, f"params.yaml: {message}")


def test_generate_writes_nothing_on_bad_params(workdir, default_params):
    default_params["sine"]["data"]["points"] = -1
    (workdir / "params.yaml").write_text(yaml.safe_dump(default_params))
    proc = stage("generate_sine", "out/sine.csv", cwd=workdir)
    assert_failed_cleanly(proc, workdir, "sine.data.points must be > 0")


@pytest.mark.parametrize(("text", "message"), [
    ("1,2,3\n4,five,6\n", "balls.csv:2: not an integer position: 'five'"),
    ("1,2,3\n\n4,5,6\n", "balls.csv:2: empty position"),
    ("1,2,3\n4\n", "balls.csv:2: a history needs at least 2 positions"),
    ("1,2\n" + ",".join(["3"] * 10_001) + "\n", "balls.csv:2: 10001 values on one line"),
    ("", "balls.csv: empty file"),
], ids=["non-integer", "empty-line", "single-value", "too-long", "empty-file"])
def test_prepare_ball_refuses_a_bad_csv_and_writes_no_shard(workdir, text, message):
    (workdir / "balls.csv").write_text(text)
    proc = stage("prepare_ball", "balls.csv", "out/shards", cwd=workdir)
    assert_failed_cleanly(proc, workdir, message)
