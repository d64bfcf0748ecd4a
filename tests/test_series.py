"""Experiment S on a series of yours: every defect of the csv is refused, named by file and line,
before anything is written; a good csv is prepared exactly, in its units and the models'."""

import sys

import numpy as np
import pytest
import yaml

from rnnlab import data
from rnnlab.errors import DataError

from conftest import ROOT, run


def prepare(workdir, csv: str, **series):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["series"].update(series)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    return run([sys.executable, str(ROOT / "stages" / "prepare_series.py"), csv, "--series", "out/series.csv",
                "--scaled", "out/scaled.csv", "--scaling", "out/scaling.json"], workdir, check=False)


def sine_lines(points: int = 300) -> str:
    return "".join(f"{np.sin(k / 10):.6f}\n" for k in range(points))


# Each defect: the file's bytes, series.column, and the message after the file's name.
DEFECTS = {
    "empty": (b"", None, ": empty file, expected one number per line"),
    "empty line": (b"0.1\n\n0.3\n", None,
                   ":2: missing value (an empty field); set series.gaps: interpolate to fill gaps linearly"),
    "empty field": (b"year,spots\n1,2\n2,\n3,4\n", "spots",  # pandas' to_csv writes NaN so
                    ":3: missing value (an empty field); set series.gaps: interpolate to fill gaps linearly"),
    "blank row": (b"year,spots\n1,2\n\n3,4\n", "spots", ":3: blank line"),
    "not a number": (b"0.1\n0.2\nx\n", None, ":3: not a number: 'x'"),
    "trailing comma": (b"0.1\n0.2,\n", None, ":2: not a number: '0.2,'"),
    "nan": (b"0.1\nnan\n", None, ":2: not a finite number: 'nan'"),
    "inf": (b"0.1\n-inf\n", None, ":2: not a finite number: '-inf'"),
    "not utf-8": (b"0.1\n0.2\n\xff0.3\n", None, ":3: not UTF-8 text (byte 0xff)"),
    "no such column": (b"year,spots\n1,2\n", "count", ":1: no column 'count' in the header (year, spots)"),
    "header only": (b"year,spots\n", "spots", ": a header and no values"),
    "short row": (b"year,spots\n1,2\n3\n", "spots", ":3: 1 fields, the header has 2"),
    "bad cell": (b"year,spots\n1,2\n2,n/a\n", "spots", ":3: not a number: 'n/a'"),
    "too short for seq_len": (b"0.5\n" * 20, None,
                              ": 20 points are too short for seq_len 20: the training part (train_fraction 0.8) "
                              "has 16, a window needs seq_len + 1 = 21"),
}


@pytest.mark.parametrize("case", DEFECTS, ids=list(DEFECTS))
def test_a_defective_csv_is_refused_with_its_name_and_line(tmp_path, case):
    content, column, message = DEFECTS[case]
    (tmp_path / "my.csv").write_bytes(content)
    proc = prepare(tmp_path, "my.csv", column=column, season=None)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"error: my.csv{message}"
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(("setup", "message"), [
    (lambda d: None, "error: my.csv: no such file"),
    (lambda d: (d / "my.csv").mkdir(), "error: my.csv: is a directory, expected a csv file"),
], ids=["missing", "directory"])
def test_a_missing_file_or_a_folder_is_refused(tmp_path, setup, message):
    setup(tmp_path)
    proc = prepare(tmp_path, "my.csv", season=None)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == message


def test_a_test_part_shorter_than_the_backtest_horizon_is_refused(tmp_path):
    (tmp_path / "my.csv").write_text(sine_lines(120))  # test part: 24 points
    proc = prepare(tmp_path, "my.csv", season=None, horizon=30)
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: my.csv: 120 points leave a test part of 24, too short for series.horizon 30 (needs horizon + 1 = 31)")


def test_a_season_needs_two_of_itself_in_the_training_part(tmp_path):
    (tmp_path / "my.csv").write_text(sine_lines(300))  # 240 training points
    proc = prepare(tmp_path, "my.csv", season=200)
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: my.csv: the training part has 240 points, fewer than two seasons of series.season 200 "
        "(the seasonal references need two)")


def test_crlf_line_ends_and_a_quoted_header_are_read(tmp_path):
    (tmp_path / "my.csv").write_bytes(b'"YEAR","SPOTS"\r\n1700,5\r\n1701,11.5\r\n')
    assert data.read_user_series(tmp_path / "my.csv", "SPOTS").tolist() == [5.0, 11.5]


def test_a_good_csv_is_prepared_exactly_and_standardised_on_its_training_part(tmp_path):
    lines = sine_lines(300)
    (tmp_path / "my.csv").write_text("t,value\n" + "".join(f"{k},{v}" for k, v in enumerate(lines.splitlines(True))))
    proc = prepare(tmp_path, "my.csv", column="value", scaling="standard", season=None)
    assert proc.returncode == 0, proc.stderr
    series = data.read_series(tmp_path / "out/series.csv")
    assert series.tolist() == [float(v) for v in lines.split()]                     # exact, own units
    scaled = data.read_series(tmp_path / "out/scaled.csv")
    train = scaled[:240]
    assert abs(train.mean()) < 1e-12 and abs(train.std() - 1) < 1e-12             # training part only
    to_series = data.Scaler.read(tmp_path / "out/scaling.json")
    np.testing.assert_allclose(to_series.unscale_values(scaled), series, atol=1e-12)


def test_without_scaling_the_prepared_series_is_the_csv_itself(tmp_path):
    (tmp_path / "my.csv").write_text(sine_lines(300))
    assert prepare(tmp_path, "my.csv", season=None).returncode == 0
    assert (tmp_path / "out/scaled.csv").read_text() == (tmp_path / "out/series.csv").read_text()
    assert data.Scaler.read(tmp_path / "out/scaling.json").identity


def test_a_constant_training_part_cannot_be_standardised():
    with pytest.raises(DataError, match=r"series.scaling standard: the training part is constant \(std 0\)"):
        data.Scaler.fit(np.r_[np.ones(80), np.arange(20.0)], 0.8, "standard")


def test_the_training_history_is_written_in_the_series_own_units():
    """Training on a standardised series logs MSEs in its units; the history multiplies them by
    std^2, so metrics, figures and interactive plots all read the series' units."""
    from rnnlab import params, sine

    from conftest import tiny

    p = params.parse(tiny(yaml.safe_load((ROOT / "params.yaml").read_text()), epochs=2))
    _, result, _ = sine.train(p, data.noisy_sine(p.sine.data), "gru")
    plain, scaled = sine.history_frame(result, list(p.seeds)), sine.history_frame(result, list(p.seeds), unit=4.0)
    for column in ("train_loss", "test_loss", "test_loss_min", "test_loss_seed1", "train_loss_seed0"):
        np.testing.assert_array_equal(scaled[column], plain[column] * 4.0)
    np.testing.assert_array_equal(scaled["train_grad_norm"], plain["train_grad_norm"])  # not an MSE
    np.testing.assert_array_equal(scaled["epoch"], plain["epoch"])


def test_gaps_are_interpolated_linearly_between_their_neighbours_when_asked(tmp_path):
    (tmp_path / "my.csv").write_text("t,v\n0,1.0\n1,\n2,\n3,4.0\n4,5\n")
    got = data.read_user_series(tmp_path / "my.csv", "v", gaps="interpolate")
    assert got.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    (tmp_path / "one.csv").write_text("1\n\n3\n")
    assert data.read_user_series(tmp_path / "one.csv", gaps="interpolate").tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(("text", "line", "end"), [("t,v\n0,\n1,2\n", 2, "first"), ("t,v\n0,1\n1,2\n2,\n", 4, "last")])
def test_a_gap_at_either_end_is_refused_even_when_interpolating(tmp_path, text, line, end):
    (tmp_path / "my.csv").write_text(text)
    with pytest.raises(DataError, match=rf"my.csv:{line}: missing value as the series' {end}: series.gaps interpolate"):
        data.read_user_series(tmp_path / "my.csv", "v", gaps="interpolate")


def test_prepare_series_fills_gaps_with_series_gaps_interpolate(tmp_path):
    lines = sine_lines(300).splitlines()
    lines[100] = ""
    (tmp_path / "my.csv").write_text("\n".join(lines) + "\n")
    assert prepare(tmp_path, "my.csv", season=None).returncode == 1
    assert prepare(tmp_path, "my.csv", season=None, gaps="interpolate").returncode == 0
    series = data.read_series(tmp_path / "out/series.csv")
    assert series[100] == pytest.approx((float(lines[99]) + float(lines[101])) / 2, abs=1e-15)


def test_the_forecaster_recipe_prepares_the_transformed_series_and_says_how_to_undo_it(tmp_path):
    from rnnlab import recipe

    (tmp_path / "my.csv").write_text("".join(f"{10 + k / 7 + np.sin(k / 3):.6f}\n" for k in range(300)))
    proc = prepare(tmp_path, "my.csv", season=None, recipe="forecaster", transform="diff", scaling="standard")
    assert proc.returncode == 0, proc.stderr
    series, scaled = data.read_series(tmp_path / "out/series.csv"), data.read_series(tmp_path / "out/scaled.csv")
    units = recipe.Units.read(tmp_path / "out/scaling.json")
    assert units.transform == recipe.Transform("diff", 1) and len(scaled) == 299
    np.testing.assert_allclose(scaled * units.scaler.std + units.scaler.mean, np.diff(series), atol=1e-12)
    assert abs(scaled[:239].mean()) < 1e-12  # scaled on the transformed training part (x[:240] -> 239 diffs)


TREND = np.array([10 + k / 7 + np.sin(k / 3) for k in range(300)]).round(6)  # rises past its training part
# the share of its test part (the last 60 points) above its training part's maximum; a log keeps the order
BEYOND = f"{100 * np.mean(TREND[240:] > TREND[:240].max()):.0f}%"  # 95%


@pytest.mark.parametrize(("series", "warned"), [
    ({"scaling": "standard"}, f"{BEYOND} of the test part lies beyond the training part's range in the models' "
                              "units (series.transform none)"),
    ({"recipe": "forecaster", "scaling": "standard", "transform": "log"}, f"{BEYOND} of the test part lies beyond"),
    ({"recipe": "forecaster", "scaling": "standard", "transform": "diff"}, None),
], ids=["texts-recipe", "log", "diff"])
def test_a_trend_the_networks_cannot_follow_is_warned_with_the_transform_that_can(tmp_path, series, warned):
    (tmp_path / "my.csv").write_text("".join(f"{v:.6f}\n" for v in TREND))
    proc = prepare(tmp_path, "my.csv", season=None, **series)
    assert proc.returncode == 0, proc.stderr
    if warned:
        assert f"warning: my.csv: {warned}" in proc.stderr, proc.stderr
        assert "use series.recipe=forecaster with series.transform=diff" in proc.stderr
    else:
        assert "warning" not in proc.stderr, proc.stderr


def test_the_packaged_sine_and_a_stationary_series_prepare_without_the_trend_warning(tmp_path):
    (tmp_path / "my.csv").write_text(sine_lines(300))
    assert "beyond the training part" not in prepare(tmp_path, "my.csv", season=None).stderr
    assert "beyond the training part" not in prepare(tmp_path, str(ROOT / "data/sine/sindata_1000.csv")).stderr


def test_the_training_log_prints_mse_in_the_series_units_and_says_so(caplog):
    """Issue 24: with series.scaling standard the log printed standardised MSEs without a word."""
    import logging

    from rnnlab import params, sine

    from conftest import tiny

    p = params.parse(tiny(yaml.safe_load((ROOT / "params.yaml").read_text()), epochs=2))
    values = data.noisy_sine(p.sine.data)
    with caplog.at_level(logging.INFO, logger="rnnlab.sine"):
        _, result, _ = sine.train(p, values, "gru", unit=4.0)
    line = [r.getMessage() for r in caplog.records if "final train loss" in r.getMessage()][-1]
    test = float(np.median(result.history["test_loss"][-1].numpy())) * 4.0
    assert f"rollout test MSE {test:.4g}" in line and "in the series' units" in line, line
