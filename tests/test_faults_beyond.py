"""Faults beyond the catalogue (issue 22): divergence, numbers that do not fit, params read two
ways, runs that overlap, inputs without bounds, and the small ones. One test per case, each
asserting the one-line message, the exit status, and that nothing was lost (docs/reliability.md).
"""

from __future__ import annotations

import gzip
import io
import math
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import test_faults
import torch
import yaml
from test_faults import leftovers, params_file, predict, run_stage_script, snapshot

from rnnlab import ball_data, cli, data, params, sine, stage
from rnnlab import io as rnnlab_io
from rnnlab.checkpoints import load_checkpoint
from rnnlab.errors import DataError, DivergedError, ParamsError, WriteError
from rnnlab.models import build_stack
from rnnlab.training import StatefulWindows, fit

from conftest import ROOT, Project, long_ball, tiny, tiny_project

ball_models = test_faults.ball_models  # the catalogue's fixtures: untrained ball models, shards, metrics
prepared = test_faults.prepared          # a good ball csv prepared into shards

# ---------------------------------------------------------------------------------------
# 1. A run that diverges stops, in one line, and writes nothing
# ---------------------------------------------------------------------------------------

DIVERGED = ("error: sine {kind} seed 0 diverged at epoch 1 (train loss nan); likely cause: lr 1e+06 too high "
            "for sgd, without grad_clip; lower sine.train.lr or set sine.train.grad_clip. Nothing was written\n")


@pytest.fixture
def series(tmp_path, monkeypatch, capsys):
    """A prepared sine (tiny params) and the folder the training stages write to."""
    p = params_file(tmp_path)
    csv = tmp_path / "sine.csv"
    csv.write_text(data.series_csv(data.noisy_sine(params.load(p).sine.data)))
    assert prepare(tmp_path, csv, monkeypatch) == 0
    capsys.readouterr()
    return tmp_path


def prepare(folder: Path, csv: Path, monkeypatch, params_path: Path | None = None) -> int:
    return run_stage_script("prepare_series.py", csv, "--series", folder / "series.csv", "--scaled", folder / "scaled.csv",
                            "--scaling", folder / "scaling.json", "--params", params_path or folder / "params.yaml",
                            monkeypatch=monkeypatch)


def train_sine(folder: Path, kind: str, monkeypatch) -> int:
    return run_stage_script("train_sine.py", "--model", kind, "--data", folder / "scaled.csv",
                            "--scaling", folder / "scaling.json", "--series", folder / "series.csv",
                            "--checkpoint", folder / f"models/{kind}.pt", "--history", folder / f"history/{kind}.csv",
                            "--timing", folder / f"timings/{kind}.json", "--params", folder / "params.yaml",
                            monkeypatch=monkeypatch)


@pytest.mark.parametrize("kind", ["mlp", "gru"])
def test_a_diverging_training_stage_exits_1_in_one_line_and_keeps_its_previous_checkpoint(series, kind, monkeypatch, capsys):
    assert train_sine(series, kind, monkeypatch) == 0  # the previous good output
    capsys.readouterr()
    before = [snapshot(series / f"models/{kind}.pt"), snapshot(series / f"history/{kind}.csv")]
    params_file(series, sine__train__optimizer="sgd", sine__train__lr=1e6)
    assert train_sine(series, kind, monkeypatch) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] + "\n" == DIVERGED.format(kind=kind)
    assert "Traceback" not in err
    assert [snapshot(series / f"models/{kind}.pt"), snapshot(series / f"history/{kind}.csv")] == before
    assert leftovers(series / "models") == []


def test_divergence_names_the_replica_and_epoch_where_it_happened():
    """fit stops at the first non-finite epoch and names the replica: replica 1 of a stack whose
    replica 0 is sound (its parameters made NaN by hand after epoch 1)."""
    p = params.parse(tiny(yaml.safe_load((ROOT / "params.yaml").read_text()), epochs=3))
    values = data.noisy_sine(p.sine.data)
    split = data.split_series(values, p.sine.data.train_fraction)
    model = build_stack(sine.model_config(p, "gru"), [0, 1])
    regime = StatefulWindows(data.stateful_windows(split.train, p.seq_len), split.test)

    def poison(epoch, row):
        if epoch == 1:
            with torch.no_grad():
                model.flat[model._replica_index() == 1] = math.nan

    with pytest.raises(DivergedError) as info:
        fit(model, regime, p.sine.train, poison)
    assert (info.value.epoch, info.value.replica) == (2, 1)
    assert str(info.value).startswith("training diverged at epoch 2 (replica 1: train loss nan); likely cause: lr 0.0005")


def test_the_divergence_line_names_the_seed_of_the_replica():
    stage.training_run("ball", "lstm", [7, 3, 5], "ball.train")
    try:
        line = stage.diverged_line(DivergedError(4, 2, "a parameter is not finite", "lr 10 too high for adam"))
    finally:
        stage._TRAINING.clear()
    assert line == ("ball lstm seed 5 diverged at epoch 4 (a parameter is not finite); likely cause: lr 10 too high "
                    "for adam; lower ball.train.lr or set ball.train.grad_clip. Nothing was written")


def test_an_absurd_but_finite_result_is_warned_about_naming_the_model_and_the_ratio():
    headline = {"mlp": {"rollout_mse": 1.8e7}, "gru": {"rollout_mse": 0.02}, "zero": {"rollout_mse": 0.52}}
    assert stage.absurd_results(headline, "rollout_mse", "zero", ["mlp", "gru"]) == [
        "warning: mlp rollout_mse 1.8e+07 is 3.46e+07x the zero reference's 0.52: a failed training "
        "(lr too high?), not a forecast"]


def test_json_with_nan_is_refused_naming_the_file_and_the_key_and_the_previous_version_stays(tmp_path):
    path = tmp_path / "metrics.json"
    rnnlab_io.write_json(path, {"S": {"gru": {"rollout_mse": 0.02}}})
    before = snapshot(path)
    with pytest.raises(WriteError) as info:
        rnnlab_io.write_json(path, {"S": {"gru": {"rollout_mse": 0.02}, "mlp": {"rollout_mse": math.nan}}})
    assert str(info.value) == (f"{path}: refused to write nan at S.mlp.rollout_mse (not a finite number); "
                               "the previous version is untouched")
    assert snapshot(path) == before and leftovers(tmp_path) == []


@pytest.mark.parametrize(("text", "line", "token"), [
    ('{"gru": {"mae": NaN}}', 1, "NaN"),
    ('{\n  "gru": {\n    "mae": -Infinity\n  }\n}', 3, "-Infinity"),
    ('{"gru": {"mae": 1e999}}', 1, "1e999"),
], ids=["nan", "infinity", "overflow"])
def test_json_readers_refuse_non_finite_numbers(tmp_path, text, line, token):
    path = tmp_path / "metrics.json"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        rnnlab_io.read_json(path)
    assert str(info.value) == f"{path}:{line}: not a finite number: {token}"


def nan_checkpoint(path: Path) -> None:
    saved = load_checkpoint(path)
    name = next(iter(saved.weights))
    saved.weights[name][0].view(-1)[0] = math.nan
    torch.save({**torch.load(path, weights_only=True), "weights": saved.weights}, path)


def test_a_checkpoint_holding_nan_is_refused(ball_models):
    nan_checkpoint(ball_models / "gru.pt")
    with pytest.raises(DataError) as info:
        load_checkpoint(ball_models / "gru.pt")
    assert re.fullmatch(rf"{re.escape(str(ball_models / 'gru.pt'))}: damaged checkpoint \(weight \S+ holds NaN or "
                        r"infinity, as a diverged training leaves; retrain it\)", str(info.value))


def test_predict_ball_never_answers_nan(ball_models, monkeypatch, capsys):
    nan_checkpoint(ball_models / "gru.pt")
    code, out, err = predict(ball_models, "1,3,5", "--model", "gru", monkeypatch=monkeypatch, capsys=capsys)
    assert (code, out) == (1, "") and "holds NaN or infinity" in err and len(err.splitlines()) == 1


def test_predict_ball_with_a_nan_mae_in_its_metrics_does_not_pick_that_model(ball_models, monkeypatch, capsys):
    (ball_models / "metrics.json").write_text('{"B": {"rnn": {"mae": NaN}, "gru": {"mae": 0.3}}}')
    code, out, err = predict(ball_models, "1,3,5", monkeypatch=monkeypatch, capsys=capsys)
    assert (code, out, err) == (1, "", f"error: {ball_models / 'metrics.json'}:1: not a finite number: NaN\n")


def test_forecast_never_prints_nan(series, monkeypatch, capsys):
    assert train_sine(series, "gru", monkeypatch) == 0
    nan_checkpoint(series / "models/gru.pt")
    capsys.readouterr()
    code = cli.main(["forecast", "--model", "gru", "--models", str(series / "models"), "--prepared", str(series),
                     "--params", str(series / "params.yaml")])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "") and "holds NaN or infinity" in err and len(err.splitlines()) == 1


# ---------------------------------------------------------------------------------------
# 2. Values that do not fit float32
# ---------------------------------------------------------------------------------------

def sine_values(folder: Path) -> np.ndarray:
    return data.noisy_sine(params.load(folder / "params.yaml").sine.data)


def assert_series_refused(folder: Path, values, message: str, monkeypatch, capsys, **changes) -> None:
    csv = folder / "bad.csv"
    csv.write_text(data.exact_csv(np.asarray(values, dtype=float)))
    p = params_file(folder / "other", **changes) if changes else folder / "params.yaml"
    before = [snapshot(folder / name) for name in ("series.csv", "scaled.csv", "scaling.json")]
    assert prepare(folder, csv, monkeypatch, p) == 1
    err = capsys.readouterr().err  # after a warning line or none
    assert err.splitlines()[-1] == f"error: {message.format(csv=csv)}" and "Traceback" not in err
    assert [snapshot(folder / name) for name in ("series.csv", "scaled.csv", "scaling.json")] == before
    assert leftovers(folder) == []


@pytest.fixture
def other(series):
    (series / "other").mkdir()
    return series


@pytest.mark.parametrize("factor", [1e300, 1e39], ids=["x1e300", "x1e39"])
def test_a_series_beyond_float32_is_refused_naming_the_line(series, factor, monkeypatch, capsys):
    values = sine_values(series) * factor
    csv = series / "bad.csv"
    csv.write_text(data.exact_csv(np.asarray(values, dtype=float)))
    before = snapshot(series / "scaled.csv")
    assert prepare(series, csv, monkeypatch) == 1
    err = capsys.readouterr().err
    first = next(k for k, v in enumerate(values, start=1) if abs(v) > 3.4028234663852886e38)
    assert err == f"error: {csv}:{first}: {float(values[first - 1])!r} does not fit float32 (at most 3.403e+38 either way)\n"
    assert snapshot(series / "scaled.csv") == before


def test_a_series_that_rounds_to_zero_in_float32_is_refused(series, monkeypatch, capsys):
    values = sine_values(series) * 1e-300
    first = next(k for k, v in enumerate(values, start=1) if v != 0)
    assert_series_refused(series, values, f"{{csv}}:{first}: {float(values[first - 1])!r} is too small for float32 (it would "
                          "round to 0 or lose digits below 1.175e-38); rescale the series", monkeypatch, capsys)


def test_a_constant_series_is_refused(series, monkeypatch, capsys):
    assert_series_refused(series, [3.0] * 1000, "{csv}: the training part is constant (3): nothing to learn, and "
                          "MASE would divide by its zero naive error", monkeypatch, capsys)


def test_unscaled_values_whose_squares_overflow_float32_are_refused(series, monkeypatch, capsys):
    values = sine_values(series) * 1e25
    peak = int(np.argmax(np.abs(values)))
    assert_series_refused(series, values, f"{{csv}}:{peak + 1}: {values[peak]:g} is too large for series.scaling none "
                          "(errors' squares overflow float32 beyond 1.84e+19); use series.scaling standard",
                          monkeypatch, capsys)


def test_unscaled_values_whose_squares_vanish_in_float32_are_refused(series, monkeypatch, capsys):
    assert_series_refused(series, sine_values(series) * 1e-25, "{csv}: every value is below 5.42e-20 in size, too small "
                          "for series.scaling none (errors' squares vanish in float32: any model would look perfect); "
                          "use series.scaling standard", monkeypatch, capsys)


def test_a_scaled_value_beyond_float32_is_refused(other, monkeypatch, capsys):
    values = np.r_[np.tile([1.0, 1.0 + 1e-9], 400), np.full(200, 1e30)]
    assert_series_refused(other, values, "series.scaling standard: a scaled value reaches 2e+39; its squared error "
                          "overflows float32", monkeypatch, capsys, series__scaling="standard")


def test_an_outlier_is_warned_about_and_the_series_prepared(series, monkeypatch, caplog):
    values = sine_values(series)
    values[900] = 1e12
    csv = series / "spike.csv"
    csv.write_text(data.exact_csv(np.asarray(values, dtype=float)))
    assert prepare(series, csv, monkeypatch) == 0
    err = caplog.text
    median = float(np.median(values))
    assert f"warning: {csv}:901: 1e+12 lies " in err and f"median absolute deviations from the median {median:g} " \
        "(more than 1000): an outlier?" in err
    assert data.read_series(series / "series.csv")[900] == 1e12


# ---------------------------------------------------------------------------------------
# 3. params.yaml read as DVC reads it
# ---------------------------------------------------------------------------------------

def edited_params(folder: Path, old: str, new: str) -> Path:
    text = (ROOT / "params.yaml").read_text()
    assert re.search(old, text, flags=re.M), old
    path = folder / "params.yaml"
    path.write_text(re.sub(old, new, text, count=1, flags=re.M))
    return path


def dvc_reads(path: Path):
    from dvc.utils.serialize import parse_yaml
    return parse_yaml(path.read_text(), str(path))


def test_a_leading_zero_reads_as_dvc_reads_it(tmp_path):
    path = edited_params(tmp_path, r"^seq_len: 20", "seq_len: 024")
    assert params.load(path).seq_len == 24 == dvc_reads(path)["seq_len"]  # PyYAML (YAML 1.1): 20, octal


@pytest.mark.parametrize(("old", "new", "message"), [
    (r"^seq_len: 20", "seq_len: 1:20", "seq_len must be an integer, got '1:20'"),         # YAML 1.1: 80
    (r"shuffle: false", "shuffle: yes", "ball.train.shuffle must be true or false, got 'yes'"),  # YAML 1.1: true
    (r"shuffle: false", "shuffle: on", "ball.train.shuffle must be true or false, got 'on'"),
    (r"shuffle: false", "shuffle: off", "ball.train.shuffle must be true or false, got 'off'"),
], ids=["sexagesimal", "yes", "on", "off"])
def test_a_value_yaml_1_1_reads_otherwise_is_refused_naming_the_key(tmp_path, old, new, message):
    path = edited_params(tmp_path, old, new)
    assert isinstance(dvc_reads(path)["seq_len" if "seq_len" in new else "ball"], str | dict)
    with pytest.raises(ParamsError) as info:
        params.load(path)
    assert str(info.value) == f"{path}: {message}"


def test_a_duplicate_key_is_refused_naming_its_line_as_dvc_refuses_it(tmp_path):
    path = edited_params(tmp_path, r"^(threads: .*)$", r"\1\nseq_len: 24")
    line = path.read_text().splitlines().index("seq_len: 24") + 1
    with pytest.raises(ParamsError) as info:
        params.load(path)
    assert str(info.value) == f"{path}:{line}: duplicate key 'seq_len' (DVC refuses it; keep one)"
    with pytest.raises(Exception, match="YAML file structure is corrupted"):
        dvc_reads(path)


def test_a_stage_reads_the_value_dvc_records(tmp_path, monkeypatch, capsys):
    """The stage's own reading, through run_stage: seq_len 024 trains windows of 24, as dvc.lock says."""
    path = edited_params(tmp_path, r"^seq_len: 20", "seq_len: 024")
    assert stage.load_params(path).seq_len == 24


# ---------------------------------------------------------------------------------------
# 5. Inputs without bounds
# ---------------------------------------------------------------------------------------

def forecast(folder: Path, *args: str) -> int:
    return cli.main(["forecast", "--model", "gru", "--models", str(folder / "models"), "--prepared", str(folder),
                     "--params", str(folder / "params.yaml"), *args])


def test_forecast_steps_beyond_the_bound_are_refused_before_any_work(tmp_path, capsys):
    assert forecast(tmp_path, "--steps", "1000000000", "--out", str(tmp_path / "f.csv")) == 1
    assert capsys.readouterr() == ("", "error: --steps must be at most 100000, got 1000000000\n")
    assert not (tmp_path / "f.csv").exists()


def test_forecast_history_from_a_device_is_refused(series, monkeypatch, capsys):
    assert train_sine(series, "gru", monkeypatch) == 0
    capsys.readouterr()
    assert forecast(series, "--history", "/dev/zero", "--out", str(series / "f.csv")) == 1
    assert capsys.readouterr() == ("", "error: /dev/zero: not a regular file (a device, pipe or socket); give a file\n")
    assert not (series / "f.csv").exists()


def test_a_series_csv_that_is_a_device_is_refused(series, monkeypatch, capsys):
    before = snapshot(series / "scaled.csv")
    started = time.monotonic()
    assert prepare(series, Path("/dev/zero"), monkeypatch) == 1
    assert time.monotonic() - started < 30
    assert capsys.readouterr().err == "error: /dev/zero: not a regular file (a device, pipe or socket); give a file\n"
    assert snapshot(series / "scaled.csv") == before


def test_a_series_csv_beyond_the_size_bound_is_refused_before_reading(series, monkeypatch, capsys):
    csv = series / "huge.csv"
    with csv.open("wb") as file:
        file.truncate(data.MAX_CSV_BYTES + 1)  # sparse: no disk used, nothing read
    assert prepare(series, csv, monkeypatch) == 1
    assert capsys.readouterr().err == (f"error: {csv}: {data.MAX_CSV_BYTES + 1} bytes, more than the "
                                       f"{data.MAX_CSV_BYTES} this input may hold\n")


@pytest.mark.parametrize(("key", "value", "message"), [
    ("sine.model.hidden_size", 100_000, "sine.model.hidden_size must be at most 4096, got 100000"),
    ("ball.model.num_layers", 17, "ball.model.num_layers must be at most 16, got 17"),
    ("windows.model.mlp_widths", [32, 5000], "windows.model.mlp_widths[1] must be at most 4096, got 5000"),
], ids=["hidden", "layers", "width"])
def test_a_model_size_beyond_the_bound_is_refused_naming_the_key(tmp_path, key, value, message):
    path = params_file(tmp_path, **{key.replace(".", "__"): value})
    with pytest.raises(ParamsError) as info:
        params.load(path)
    assert str(info.value) == f"{path}: {message}"


def test_a_forged_checkpoint_claiming_a_huge_model_is_refused_before_allocating(ball_models):
    path = ball_models / "gru.pt"
    forged = torch.load(path, weights_only=True)
    forged["model_config"]["hidden_size"] = 300_000
    torch.save(forged, path)
    assert path.stat().st_size < 10_000
    with pytest.raises(DataError) as info:
        load_checkpoint(path)
    assert str(info.value) == f"{path}: damaged checkpoint (model_config.hidden_size must be at most 4096, got 300000)"


def test_a_huge_token_is_echoed_shortened(ball_models, monkeypatch, capsys):
    token = "x" * 150_000  # within the line's bound: the token itself is echoed, shortened
    code, out, err = predict(ball_models, f"1,{token}", monkeypatch=monkeypatch, capsys=capsys)
    assert (code, out, err) == (1, "", f"error: not an integer position: '{'x' * 40}... (150000 characters)'\n")


def test_a_huge_history_line_is_refused_by_its_length(ball_models, monkeypatch, capsys):
    line = "1" * 300_000
    code, out, err = predict(ball_models, line, monkeypatch=monkeypatch, capsys=capsys)
    assert (code, out, err) == (1, "", "error: a history of 300000 characters (at most 200000)\n")


def test_a_large_series_says_up_front_what_training_will_cost(series, monkeypatch, caplog):
    csv = series / "long.csv"
    values = np.sin(np.linspace(0, 2000 * np.pi, 200_000)) + np.random.default_rng(0).normal(0, 0.1, 200_000)
    csv.write_text(data.exact_csv(np.asarray(values, dtype=float)))
    assert prepare(series, csv, monkeypatch) == 0
    p = params.load(series / "params.yaml")
    windows = int(0.8 * 200_000) // (p.seq_len + 1)
    steps = windows * p.sine.train.epochs
    default = int(0.8 * 1000) // (p.seq_len + 1) * p.sine.train.epochs
    assert (f"warning: {csv}: 200000 points: {windows} training windows x {p.sine.train.epochs} epochs = {steps} "
            f"optimizer steps per model ({len(p.sine.models)} models), {steps / default:.0f}x those of a 1000-point "
            "series") in caplog.text


def test_a_large_series_with_the_forecasters_recipe_counts_its_overlapping_windows_and_minibatches(series, monkeypatch,
                                                                                                  caplog):
    csv = series / "long.csv"
    values = np.sin(np.linspace(0, 2000 * np.pi, 200_000)) + np.random.default_rng(0).normal(0, 0.1, 200_000)
    csv.write_text(data.exact_csv(np.asarray(values, dtype=float)))
    raw = yaml.safe_load((series / "params.yaml").read_text())
    raw["series"].update(recipe="forecaster", scaling="standard", season=None)
    (series / "params.yaml").write_text(yaml.safe_dump(raw))
    assert prepare(series, csv, monkeypatch) == 0
    fc, seq_len = raw["series"]["forecaster"], raw["seq_len"]
    # windows of seq_len + 1 starting every stride steps in the training part less its validation slice
    fitted = int(0.8 * 200_000) - int(fc["validation_fraction"] * 200_000)
    windows = len(range(0, fitted - seq_len, fc["stride"]))
    per_epoch = -(-windows // fc["batch_size"])
    assert (f"warning: {csv}: 200000 points: {windows} training windows (stride {fc['stride']}) in minibatches of "
            f"{fc['batch_size']} = {per_epoch} optimizer steps an epoch, up to {fc['epochs']} epochs = "
            f"{per_epoch * fc['epochs']} per model") in caplog.text


# ---------------------------------------------------------------------------------------
# 6. The small ones
# ---------------------------------------------------------------------------------------

def test_a_utf8_bom_is_dropped_from_a_series_csv_with_a_header(tmp_path):
    csv = tmp_path / "bom.csv"
    csv.write_bytes("\ufeffvalue,other\n1.5,a\n2.5,b\n".encode())
    assert data.read_user_series(csv, "value").tolist() == [1.5, 2.5]


def test_a_utf8_bom_is_dropped_from_a_file_read_as_text(tmp_path):
    csv = tmp_path / "bom.csv"
    csv.write_bytes("\ufeff1,2,3\n".encode())
    assert rnnlab_io.read_text(csv) == "1,2,3\n"


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_outputs_get_the_modes_open_and_mkdir_give(tmp_path, umask, file_mode, dir_mode):
    old = os.umask(umask)
    try:
        rnnlab_io.write_json(tmp_path / "metrics.json", {"a": 1})
        with rnnlab_io.atomic_dir(tmp_path / "shards") as folder:
            rnnlab_io.write_text(folder / "x.csv", "1\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "shards").stat().st_mode) == dir_mode
    assert stat.S_IMODE((tmp_path / "shards/x.csv").stat().st_mode) == file_mode


def test_predict_ball_with_metrics_listing_no_model(ball_models, monkeypatch, capsys):
    (ball_models / "metrics.json").write_text("{}")
    code, out, err = predict(ball_models, "1,3,5", monkeypatch=monkeypatch, capsys=capsys)
    metrics = ball_models / "metrics.json"
    assert (code, out, err) == (1, "", f"error: {metrics}: lists no model; run `dvc repro evaluate_ball` (or pass --model)\n")


# ---------------------------------------------------------------------------------------
# End to end: real dvc on a copy of the project, tiny params
# ---------------------------------------------------------------------------------------

@pytest.fixture
def sine_project(tmp_path) -> Project:
    return tiny_project(tmp_path / "project", lambda params: params["sine"].update(models=["mlp", "gru"]))


def no_nan_in(project: Project) -> list[str]:
    """Files under metrics/, models/ and dvc.lock holding a NaN or infinity (a checkpoint: in a weight)."""
    found = []
    for path in [project.path / "dvc.lock", *(project.path / "metrics").rglob("*"), *(project.path / "models").rglob("*")]:
        if not path.is_file():
            continue
        if path.suffix == ".pt":
            weights = torch.load(path, weights_only=True)["weights"]
            if not all(torch.isfinite(w).all() for w in weights.values()):
                found.append(str(path))
        elif re.search(r"\b(nan|NaN|-?Infinity|inf)\b", path.read_text()):
            found.append(str(path))
    return found


@pytest.mark.slow
def test_dvc_exp_run_of_a_diverging_recipe_exits_non_zero_with_our_line_and_leaves_no_nan(sine_project):
    project = sine_project
    metrics = snapshot(project.path / "metrics")
    proc = project.run("dvc", "exp", "run", "-S", "sine.train.optimizer=sgd", "-S", "sine.train.lr=1e6",
                       "evaluate_sine", check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert re.search(r"^error: sine (mlp|gru) seed 0 diverged at epoch 1 \(train loss nan\); likely cause: lr 1e\+06 "
                     r"too high for sgd, without grad_clip; lower sine.train.lr or set sine.train.grad_clip\. "
                     r"Nothing was written$", output, flags=re.M), output
    assert "Traceback" not in output
    assert no_nan_in(project) == []
    assert snapshot(project.path / "metrics") == metrics  # evaluate_sine never ran: the committed metrics stand


@pytest.mark.slow
def test_a_series_csv_path_with_a_space_runs(sine_project):
    project = sine_project
    spaced = project.path / "my data" / "sine copy.csv"
    spaced.parent.mkdir()
    spaced.write_text(data.series_csv(data.noisy_sine(params.parse(project.params()).sine.data)))
    changed = project.params()
    changed["series"]["csv_path"] = "my data/sine copy.csv"
    project.write_params(changed)
    project.commit("a csv path with a space")
    proc = project.run("dvc", "repro", "prepare_series", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert data.read_series(project.path / "data/series/series.csv").tolist() == data.read_series(spaced).tolist()


@pytest.mark.slow
def test_a_killed_evaluate_leaves_its_cache_false_metrics_missing_and_the_documented_recovery_restores_them(sine_project):
    """docs/reliability.md: `dvc checkout` cannot bring back a `cache: false` output (it was never
    cached); `git checkout metrics/` does (the committed version), `dvc repro` remakes it."""
    project = sine_project
    project.run("dvc", "repro", "evaluate_sine")
    project.commit("evaluated")
    before = snapshot(project.path / "metrics/sine.json")
    (project.path / "metrics/sine.json").unlink()  # what DVC's remove_outs before a killed run leaves
    project.run("dvc", "checkout", "evaluate_sine", check=False)
    assert not (project.path / "metrics/sine.json").exists()  # the README's old line: wrong for cache: false
    project.run("git", "checkout", "--", "metrics/")
    assert snapshot(project.path / "metrics/sine.json") == before
    status = project.run("dvc", "status", "evaluate_sine")
    assert "evaluate_sine" not in status.stdout, status.stdout


if sys.platform != "linux":  # /dev/zero and umask cases assume a POSIX system with /dev
    pytestmark = pytest.mark.skip("POSIX only")


def test_a_diverging_ball_training_exits_1_in_one_line_and_writes_no_checkpoint(prepared, monkeypatch, capsys):
    """`-S ball.train.lr=1e6`: the compiled engine, two seeds; the first replica to diverge stops the stage."""
    p = params_file(prepared, ball__train__lr=1e6, ball__train__engine="compiled", ball__train__seeds=[3, 4],
                    ball__train__epochs=50, ball__train__patience=50)
    code = run_stage_script("train_ball.py", "--model", "gru", "--shards", prepared / "shards", "--checkpoint",
                            prepared / "models/gru.pt", "--history", prepared / "history/gru.csv", "--timing",
                            prepared / "timings/gru.json", "--params", p, monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert re.fullmatch(r"error: ball gru seed [34] diverged at epoch \d+ \(train loss (nan|inf)\); likely cause: lr 1e\+06 too "
                        r"high for sgd, without grad_clip; lower ball.train.lr or set ball.train.grad_clip\. Nothing was "
                        r"written", err.splitlines()[-1]), err
    assert not (prepared / "models/gru.pt").exists() and not (prepared / "timings").exists()


# ---------------------------------------------------------------------------------------
# 4. Runs that overlap
# ---------------------------------------------------------------------------------------

def test_a_stage_whose_params_changed_while_it_ran_fails_in_one_line(tmp_path, capsys):
    """What a `dvc exp run -S` during a `dvc repro` does to the running stage's params.yaml: the
    stage ends with exit 1, so DVC does not record its outputs under values it was not run with."""
    path = params_file(tmp_path)

    def main():
        stage.load_params(path)
        params_file(tmp_path, ball__train__lr=0.02)  # the experiment's rewrite, mid-run

    with pytest.raises(SystemExit) as info:
        stage.run_stage(main)
    assert info.value.code == 1
    assert capsys.readouterr().err == (f"error: {path} changed while this stage ran (a `dvc exp run -S` or an edit): its "
                                       "outputs were made with the old values, so DVC must not record them; run "
                                       "`dvc repro` again\n")


def test_a_stage_whose_params_did_not_change_ends_cleanly(tmp_path):
    path = params_file(tmp_path)
    stage.run_stage(lambda: stage.load_params(path))  # no SystemExit


@pytest.fixture
def long_ball_training(tmp_path) -> Project:
    """A project copy with prepared ball data whose training (torch engine, 3000 epochs) lasts
    about a minute: long enough for a second DVC command to start while it runs."""
    project = tiny_project(tmp_path / "project", long_ball(3000), "tiny ball params")
    project.run("dvc", "repro", "prepare_ball")
    project.commit("prepared ball data")
    return project


@pytest.mark.slow
def test_dvc_exp_run_while_dvc_repro_runs_is_refused_by_dvc_and_nothing_is_recorded_wrongly(long_ball_training, tmp_path):
    """Pins the limit docs/reliability.md states. DVC refuses the experiment (its lock on the
    running stage's data), but only after rewriting params.yaml; the running stage sees the
    rewrite when it ends and fails, so dvc.lock never records lr 0.02 for a run made with 0.1."""
    project = long_ball_training
    log = tmp_path / "first.log"
    first = test_faults.start_repro(project, "train_ball@gru", log=log)
    try:
        test_faults.wait_for_training(first, log)
        second = project.run("dvc", "exp", "run", "-S", "ball.train.lr=0.02", "train_ball@gru", check=False)
        assert first.poll() is None, "the first run ended before the experiment started: no overlap to test"
    finally:
        code = first.wait(timeout=900)
    assert second.returncode != 0
    assert "is busy, it is being blocked by:" in second.stderr and f"(PID {first.pid}): " in second.stderr, second.stderr
    assert "lr: 0.02" in (project.path / "params.yaml").read_text()  # DVC's rewrite, before its lock refused
    output = log.read_text()
    assert code != 0 and "Traceback" not in output
    assert "error: params.yaml changed while this stage ran (a `dvc exp run -S` or an edit): its outputs were made " \
           "with the old values, so DVC must not record them; run `dvc repro` again" in output.splitlines(), output
    lock = project.path / "dvc.lock"
    assert not lock.exists() or "train_ball@gru" not in lock.read_text()

    # the documented recovery: put params.yaml back, and run again
    project.run("git", "checkout", "params.yaml")
    data_ = project.params()
    data_["ball"]["train"].update(epochs=2, patience=2)
    project.write_params(data_)
    project.run("dvc", "repro", "train_ball@gru")
    assert "lr: 0.1" in lock.read_text()


def test_evaluate_sine_warns_of_an_absurd_but_finite_result(series, monkeypatch, capsys):
    """`-S sine.train.lr=1000`: the MLP trains to finite nonsense; evaluate_sine says so, and writes its metrics."""
    params_file(series, sine__models=["mlp"], sine__train__lr=1000.0)
    assert train_sine(series, "mlp", monkeypatch) == 0
    (series / "models").mkdir(exist_ok=True)
    code = run_stage_script("evaluate_sine.py", "--series", series / "series.csv", "--data", series / "scaled.csv",
                            "--scaling", series / "scaling.json", "--models", series / "models", "--histories",
                            series / "history", "--metrics", series / "metrics.json", "--detail", series / "detail.json",
                            "--predictions", series / "predictions.csv", "--params", series / "params.yaml",
                            monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert code == 0, err
    detail = rnnlab_io.read_json(series / "detail.json")
    mse, zero = detail["models"]["mlp"]["median"]["rollout_mse"], detail["references"]["zero"]["rollout_mse"]
    assert rnnlab_io.read_json(series / "metrics.json") == {"S": {"mlp": {"rollout_mse": mse}}}
    assert mse >= 100 * zero
    assert (f"warning: mlp rollout_mse {mse:.4g} is {mse / zero:.3g}x the zero reference's {zero:.4g}: a failed "
            "training (lr too high?), not a forecast") in err.splitlines()


@pytest.mark.parametrize(("recipe", "headline"), [("texts", "rollout_mse"), ("forecaster", "backtest_mse")])
def test_evaluate_sine_declares_one_number_per_model_the_recipe_s_own_test(series, recipe, headline, monkeypatch, capsys):
    """metrics/sine.json is what `dvc exp show` prints: each model's median seed on the texts' free run, or
    on the backtest under the forecaster's recipe; the references and every other measure are detail."""
    params_file(series, sine__models=["mlp"], series__recipe=recipe)
    assert train_sine(series, "mlp", monkeypatch) == 0
    code = run_stage_script("evaluate_sine.py", "--series", series / "series.csv", "--data", series / "scaled.csv",
                            "--scaling", series / "scaling.json", "--models", series / "models", "--histories",
                            series / "history", "--metrics", series / "metrics.json", "--detail", series / "detail.json",
                            "--predictions", series / "predictions.csv", "--params", series / "params.yaml",
                            monkeypatch=monkeypatch)
    assert code == 0, capsys.readouterr().err
    detail = rnnlab_io.read_json(series / "detail.json")
    median = detail["models"]["mlp"]["median"]
    assert rnnlab_io.read_json(series / "metrics.json") == {"S": {"mlp": {headline: median[headline]}}}
    # the best classical forecaster's rollout beside the networks' (plots_sine draws it)
    best = min((name for name in detail["references"] if name not in ("clean_sine", "zero")),
               key=lambda name: detail["references"][name]["rollout_mse"])
    header = (series / "predictions.csv").read_text().splitlines()[0].split(",")
    assert [c for c in header if c.startswith("reference_")] == [f"reference_{best}"]


def test_the_ar_residual_hybrid_runs_through_the_stages_and_rnnlab_forecast(tmp_path, monkeypatch, capsys):
    """series.transform ar_residual end to end: prepare_series fits the AR and keeps its coefficients in
    scaling.json, the stages train on and score its residuals, and rnnlab forecast undoes them."""
    p = params_file(tmp_path, sine__models=["gru"], series__recipe="forecaster", series__transform="ar_residual",
                    series__scaling="standard")
    csv = tmp_path / "sine.csv"
    csv.write_text(data.series_csv(data.noisy_sine(params.load(p).sine.data)))
    assert prepare(tmp_path, csv, monkeypatch) == 0
    saved = rnnlab_io.read_json(tmp_path / "scaling.json")
    assert saved["transform"] == "ar_residual" and len(saved["coefficients"]) == saved["lag"] + 1 >= 2
    assert train_sine(tmp_path, "gru", monkeypatch) == 0
    code = run_stage_script("evaluate_sine.py", "--series", tmp_path / "series.csv", "--data", tmp_path / "scaled.csv",
                            "--scaling", tmp_path / "scaling.json", "--models", tmp_path / "models", "--histories",
                            tmp_path / "history", "--metrics", tmp_path / "metrics.json", "--detail",
                            tmp_path / "detail.json", "--predictions", tmp_path / "predictions.csv", "--params", p,
                            monkeypatch=monkeypatch)
    assert code == 0, capsys.readouterr().err
    detail = rnnlab_io.read_json(tmp_path / "detail.json")
    assert math.isfinite(detail["models"]["gru"]["median"]["backtest_mse"])
    capsys.readouterr()
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    for name in ("series.csv", "scaled.csv", "scaling.json"):
        (prepared / name).write_bytes((tmp_path / name).read_bytes())
    assert cli.main(["forecast", "--model", "gru", "--steps", "3", "--models", str(tmp_path / "models"), "--prepared",
                     str(prepared), "--params", str(p)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_params_that_are_a_device_are_refused(capsys):
    with pytest.raises(ParamsError) as info:
        params.load("/dev/zero")
    assert str(info.value) == "/dev/zero: not a regular file (a device, pipe or socket); give a file"


@pytest.mark.parametrize("how", ["replaced", "rewritten"])
def test_a_csv_changed_while_prepare_series_reads_it_fails_the_stage(series, how, monkeypatch, capsys):
    """DVC hashes a stage's deps when it ends: a csv swapped mid-run (`mv small.csv big.csv`, or
    rewritten in place) would be recorded in dvc.lock beside outputs made from the old one."""
    csv = series / "sine.csv"
    read = data.read_user_series

    def read_then_change(path, *args):
        values = read(path, *args)
        if how == "replaced":
            (series / "new.csv").write_text("1.0\n" * 300)
            os.replace(series / "new.csv", csv)
        else:
            with open(csv, "a") as handle:
                handle.write("1.0\n")
        return values

    monkeypatch.setattr(data, "read_user_series", read_then_change)
    assert prepare(series, csv, monkeypatch) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: {csv} changed while this stage ran: its outputs were made from what it held before, so DVC must not "
        "record them; run `dvc repro` again")


@pytest.mark.parametrize(("content", "message"), [
    ('{"mean": 0, "std": 0}', "mean 0.0 and std 0.0 are no scaling (std must be above 0)"),
    ('{"mean": 0, "std": -1}', "mean 0.0 and std -1.0 are no scaling (std must be above 0)"),
    ("{}", "not a scaling (a JSON object with a number mean and std)"),
    ('"a string"', "not a scaling (a JSON object with a number mean and std)"),
])
def test_a_hand_damaged_scaling_is_refused_naming_the_file(tmp_path, content, message):
    """A std of 0 made `rnnlab forecast` print the mean at every step, with exit 0."""
    (tmp_path / "scaling.json").write_text(content)
    with pytest.raises(DataError) as caught:
        data.Scaler.read(tmp_path / "scaling.json")
    assert str(caught.value) == f"{tmp_path / 'scaling.json'}: {message}; run `dvc repro prepare_series`"


@pytest.mark.parametrize("command", [["forecast", "--model", "gru", "--plot", "f.txt"], ["report", "--figure", "r.txt"]])
def test_a_figure_in_a_format_matplotlib_cannot_write_is_refused_before_any_work(command, capsys):
    """Both were a matplotlib traceback after the work was done."""
    with pytest.raises(SystemExit) as caught:
        cli.main(command)
    assert caught.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(": a figure is written as .png, .pdf, .svg, not .txt")


def test_an_endless_line_on_standard_input_is_refused_after_a_bounded_read(ball_models, monkeypatch, capsys):
    """`rnnlab predict-ball < /dev/zero` read one endless line (2.4 GB, then a MemoryError)."""
    class Endless(io.StringIO):
        def readline(self, size=-1):
            assert 0 < size <= 200_001, "an unbounded read"
            return "\0" * size

    monkeypatch.setattr(sys, "stdin", Endless())
    code = cli.main(["predict-ball", "--models", str(ball_models), "--metrics", str(ball_models / "metrics.json"),
                     "--shards", str(ball_models / "shards")])
    assert code == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: standard input: a line of more than 200000 characters (a history has at most 200000); stopped reading")


def test_a_header_naming_the_column_twice_is_refused(tmp_path):
    (tmp_path / "twice.csv").write_text("value,value\n1,2\n3,4\n")
    with pytest.raises(DataError) as caught:
        data.read_user_series(tmp_path / "twice.csv", "value")
    assert str(caught.value) == f"{tmp_path / 'twice.csv'}:1: 2 columns are named 'value'; which one is meant? rename the others"


@pytest.mark.parametrize(("section", "value", "message"), [
    ("sine.data.span_pi", 1e308, "sine.data.span_pi 1e+308 and sine.data.noise 0.1 give values that are not finite numbers"),
    ("windows.data.noise", 1e39, "windows.data.x_max 100 and windows.data.noise 1e+39 give values that are not finite numbers"),
])
def test_generator_params_that_overflow_are_refused_instead_of_writing_nan(tmp_path, section, value, message):
    """`sine.data.span_pi=1e308` wrote 1000 `nan` lines with exit 0."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    *parents, key = section.split(".")
    target = raw
    for part in parents:
        target = target[part]
    target[key] = value
    p = params.parse(raw)
    make = data.noisy_sine if section.startswith("sine") else data.windows_series
    with pytest.raises(ParamsError, match=re.escape(message)):
        make(p.sine.data if section.startswith("sine") else p.windows.data)


@pytest.mark.parametrize(("length", "start", "message"), [
    ([2, 20000], [-10, 10], "ball.generate.length: at most 10000 positions a row (prepare_ball's bound), got 20000"),
    ([5, 10], [-100000000, 100000000], "ball.generate: start [-100000000, 100000000], speed_max 5 and length [5, 10] reach "
                                       "position 100000045, beyond 16777216"),
])
def test_generate_ball_refuses_params_whose_csv_prepare_ball_would_refuse(length, start, message):
    from rnnlab import ball_csv

    with pytest.raises(ParamsError, match=re.escape(message)):
        ball_csv.check_generated(tuple(start), 5, tuple(length))


@pytest.mark.parametrize(("scale", "message"), [(1e-300, "overflow float32"), (1e300, "underflows to 0 in float32")])
def test_a_ball_scale_that_destroys_the_positions_is_refused(scale, message):
    """`ball.prepare.scale=1e-300` wrote shards of inf, then training reported a divergence."""
    with pytest.raises(ParamsError, match=re.escape(f"ball.prepare.scale {scale:g}: ") + f".*{message}"):
        list(ball_data.make_shards([[1, 2, 3], [4, 5, 6]] * 5, 10, scale, (0.6, 0.8), 0))


def test_an_analysis_window_beyond_the_training_part_is_refused_not_cut(series, monkeypatch, capsys):
    """`analysis.window=1e8` was silently cut to the 799 steps there are."""
    (series / "other").mkdir()
    p = params_file(series / "other", analysis__window=100_000_000)
    code = run_stage_script("analyze_gradients.py", "--data", series / "scaled.csv", "--models", series / "models",
                            "--histories", series / "history", "--metrics", series / "g.json", "--curves", series / "g.csv",
                            "--figure", series / "g.png", "--params", p, monkeypatch=monkeypatch)
    assert code == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: analysis.window 100000000 is more steps than the training part holds (799); choose at most that")
    assert not (series / "g.json").exists()


@pytest.mark.parametrize(("lines", "chunk_lines", "message"), [
    (2, 2000, "lines 1-2 (chunk 0) split into 1 training, 0 validating and 1 testing rows"),
    (10, 1, "lines 1-1 (chunk 0) split into 0 training, 0 validating and 1 testing rows"),
    (1001, 200, "lines 1001-1001 (chunk 5) split into 0 training, 0 validating and 1 testing rows"),
])
def test_a_chunk_with_an_empty_split_is_refused_by_prepare_ball(lines, chunk_lines, message):
    """An empty shard crashed train_ball later: a traceback on the torch engine ("Cannot pack empty
    tensors"), a NaN validation accuracy reported as a divergence on the compiled one."""
    rows = [[1, 2, 3]] * lines
    with pytest.raises(DataError, match=re.escape(message)):
        list(ball_data.make_shards(rows, chunk_lines, 50.0, (0.6, 0.8), 0))


STAGE_THAT_WAITS = """
import sys, time
sys.argv = ['waiting_stage.py']
from rnnlab.stage import run_stage

def main():
    print("ready", flush=True)  # past run_stage's start: the request to die with the parent is made
    time.sleep(60)

run_stage(main)
"""


def test_a_stage_is_interrupted_when_the_process_that_started_it_is_killed():
    """`kill -9` of `dvc repro` left its stage training on; the orphan later overwrote a checkpoint
    that `dvc checkout` had restored. Now the stage gets SIGTERM and ends the clean way, also where
    it inherited SIGINT ignored (a background job of a non-interactive shell: `nohup dvc repro &`,
    pytest-xdist's workers), as here."""
    starter = (f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', {STAGE_THAT_WAITS!r}]); "
               "print(p.pid, flush=True); p.wait()")
    parent = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    stage_pid = int(parent.stdout.readline())
    assert parent.stdout.readline().strip() == "ready"  # the stage waits in its main() (however loaded the machine)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 20
    state = "running"
    while time.monotonic() < deadline and state not in ("Z", "gone"):
        try:
            state = Path(f"/proc/{stage_pid}/status").read_text().split("State:")[1].split()[0]
        except FileNotFoundError:
            state = "gone"
        time.sleep(0.1)
    if state not in ("Z", "gone"):
        os.kill(stage_pid, signal.SIGKILL)
    assert state in ("Z", "gone"), f"the stage outlived the process that started it (state {state})"
    assert stage.TERMINATED in parent.stderr.read()


def test_a_shard_that_unpacks_beyond_any_shard_is_refused_after_a_bounded_read(tmp_path, monkeypatch):
    """A 3 MB gzip of 3 GiB of zeros took 6.6 GB of memory: the bound is now the read's, here 1 MB."""
    monkeypatch.setattr(ball_data, "MAX_SHARD_BYTES", 1 << 20)
    bomb = tmp_path / "training_set.0.pt"
    bomb.write_bytes(gzip.compress(bytes(4 << 20)))
    with pytest.raises(DataError, match=re.escape(f"{bomb}: unpacks to more than 1 MB, more than any shard holds; refused")):
        ball_data.load_shard(bomb)


def test_a_checkpoint_whose_archive_entries_are_compressed_is_refused_before_unpacking(tmp_path):
    """torch.save stores entries as they are; a 4 MB forged checkpoint held a deflated 4 GiB tensor."""
    import zipfile

    path = tmp_path / "made.pt"
    torch.save({"weights": torch.zeros(1000)}, path)
    forged = tmp_path / "forged.pt"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(forged, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
    with pytest.raises(DataError, match=re.escape(f"{forged}: refused to load: its archive entry ") + r".* is compressed"):
        rnnlab_io.load_torch(forged)
    assert rnnlab_io.load_torch(path)["weights"].shape == (1000,)  # torch.save's own: loads


@pytest.mark.parametrize(("content", "message"), [
    ("", "not a csv table (No columns to parse from file)"),
    ("epoch,test_loss\n1,0.5\n", "no column 'train_loss' (it has epoch, test_loss)"),
])
def test_a_history_that_is_empty_or_foreign_is_one_named_error(tmp_path, content, message):
    """An empty history csv was a pandas traceback in evaluate_sine."""
    (tmp_path / "gru.csv").write_text(content)
    with pytest.raises(DataError) as caught:
        rnnlab_io.read_frame(tmp_path / "gru.csv", ("epoch", "train_loss"))
    assert str(caught.value) == f"{tmp_path / 'gru.csv'}: {message}; run `dvc repro` to rewrite it"


def test_a_ball_csv_beyond_its_bound_is_refused_before_any_shard(tmp_path, monkeypatch):
    """An 85 MB ball csv made prepare_ball write 15 000 shard files (2 GB)."""
    from rnnlab import ball_csv

    monkeypatch.setattr(ball_csv, "MAX_CSV_BYTES", 1000)
    (tmp_path / "big.csv").write_text("1,2,3\n" * 200)
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'big.csv'}: 1200 bytes, more than the 1000 this input may hold")):
        ball_csv.read_rows(tmp_path / "big.csv")


@pytest.mark.parametrize("points", [27, 40, 52])
def test_a_series_too_short_for_the_references_autoregression_is_refused_by_prepare_series(points):
    """27-40 points with series.horizon 5 passed prepare and training, then statsmodels' AutoReg on
    seq_len lags with a constant failed in evaluate_sine with a traceback."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["series"].update(horizon=5, season=None)
    p = params.parse(raw)
    train = int(0.8 * points)
    with pytest.raises(DataError, match=re.escape(f"short.csv: {points} points are too short for seq_len 20: the references "
                                                  "fit an autoregression on seq_len lags with a constant, which needs a "
                                                  f"training part of 2 x seq_len + 2 = 42 points; it has {train}")):
        data.check_length(np.sin(np.arange(points) / 3.0), p, "short.csv")
    data.check_length(np.sin(np.arange(53) / 3.0), p, "short.csv")  # 42 training points: evaluate_sine runs
