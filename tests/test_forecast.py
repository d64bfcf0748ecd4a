"""`rnnlab forecast`: a trained S model continues the series (or a history of yours); the seeds'
median is the forecast and their range the band; bad input is one named error, nothing written."""

import numpy as np
import pytest
import torch
import yaml

from rnnlab import data, evaluation, io, provenance, sine
from rnnlab import forecast as forecasting
from rnnlab.checkpoints import save_checkpoint, stack_checkpoint
from rnnlab.cli import main
from rnnlab.forecast import continue_series, load_model
from rnnlab.params import parse

from conftest import ROOT, tiny


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A prepared series (standardised, so units matter) and two-seed GRU and MLP trained on it."""
    root = tmp_path_factory.mktemp("forecast")
    params = tiny(yaml.safe_load((ROOT / "params.yaml").read_text()), epochs=3)
    params["series"]["scaling"] = "standard"
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    p = parse(params)
    raw = 40 + 10 * data.noisy_sine(p.sine.data)
    to_model = data.Scaler.fit(raw, p.sine.data.train_fraction, "standard")
    scaled = to_model.scale(raw)
    (root / "data").mkdir()
    io.write_text(root / "data/series.csv", data.exact_csv(raw))
    io.write_text(root / "data/scaled.csv", data.exact_csv(scaled))
    io.write_json(root / "data/scaling.json", to_model.to_json())
    for kind in ("gru", "mlp"):
        model, result, _ = sine.train(p, scaled, kind)
        saved = stack_checkpoint(model, list(p.seeds), result.state)
        saved.extra[provenance.KEY] = prepared_fingerprint(p, root / "data")
        save_checkpoint(root / "models" / f"{kind}.pt", saved)
    return root, p, scaled, to_model


def prepared_fingerprint(p, folder):
    return provenance.sine(p, folder / "series.csv", folder / "scaled.csv", folder / "scaling.json")


def forecast(root, *args):
    return main(["forecast", "--models", str(root / "models"), "--prepared", str(root / "data"),
                 "--params", str(root / "params.yaml"), *args])


def test_the_forecast_continues_the_series_in_its_own_units(trained):
    root, p, scaled, to_series = trained
    result = continue_series(p, root / "data", root / "models", "gru", steps=8)
    # the first step is the model's prediction after the last known value, read teacher-forced
    # from the state training left (the test range, as the backtest reads it)
    saved = load_model(p, root / "models", "gru", root / "data")
    boundary = data.split_series(scaled, p.sine.data.train_fraction).boundary
    test = torch.from_numpy(scaled[boundary:]).float()
    after_last = evaluation.one_step(saved.stack(), test, saved.state)[:, -1]
    np.testing.assert_allclose(result.runs[:, 0], to_series.unscale(after_last).double().numpy(), rtol=1e-5)
    assert result.runs.shape == (2, 8) and 20 < np.median(result.runs) < 60   # around 40 +- 10, not ~0 +- 1


def test_the_summary_is_the_seeds_median_and_range(trained):
    root, p, *_ = trained
    frame = continue_series(p, root / "data", root / "models", "mlp", steps=5).frame()
    seeds = frame[["seed0", "seed1"]].to_numpy()
    np.testing.assert_array_equal(frame["median"], np.median(seeds, axis=1))
    np.testing.assert_array_equal(frame["min"], seeds.min(axis=1))
    np.testing.assert_array_equal(frame["max"], seeds.max(axis=1))


def test_two_forecasts_are_identical(trained, tmp_path):
    root, *_ = trained
    for name in ("a.csv", "b.csv"):
        assert forecast(root, "--model", "gru", "--steps", "6", "--out", str(tmp_path / name)) == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_a_history_of_yours_is_read_from_a_zero_state(trained, tmp_path):
    root, p, _, to_series = trained
    history = 40 + 10 * np.sin(np.arange(30) / 5)
    (tmp_path / "mine.csv").write_text("value\n" + "".join(f"{v}\n" for v in history))
    assert forecast(root, "--model", "gru", "--steps", "4", "--history", str(tmp_path / "mine.csv"),
                    "--column", "value", "--out", str(tmp_path / "f.csv"), "--plot", str(tmp_path / "f.png")) == 0
    saved = load_model(p, root / "models", "gru", root / "data")
    known = torch.from_numpy(to_series.scale(history)).float()
    expected = to_series.unscale(evaluation.backtest(saved.stack(), known, None, (29,), 4)[:, 0]).double().numpy()
    got = io.read_text(tmp_path / "f.csv").splitlines()
    assert got[0] == "step,median,min,max,seed0,seed1"
    np.testing.assert_allclose([float(x) for x in got[1].split(",")[4:]], expected[:, 0])
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_a_history_of_yours_is_read_from_the_column_the_model_trained_on_unless_told_otherwise(trained, tmp_path):
    root, *_ = trained
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["series"]["column"] = "sales"  # as series.column names a user's csv column
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "mine.csv").write_text("date,sales\n" + "".join(f"2020-{m:02d},{40 + m}\n" for m in range(1, 13)))
    common = ["forecast", "--models", str(root / "models"), "--prepared", str(root / "data"), "--params",
              str(tmp_path / "params.yaml"), "--model", "gru", "--steps", "3", "--history", str(tmp_path / "mine.csv")]
    assert main([*common, "--out", str(tmp_path / "default.csv")]) == 0
    assert main([*common, "--column", "sales", "--out", str(tmp_path / "named.csv")]) == 0
    assert (tmp_path / "default.csv").read_bytes() == (tmp_path / "named.csv").read_bytes()


@pytest.mark.parametrize(("csv", "after"), [
    ("YEAR,SUNACTIVITY\n1700,5\n1701,11\n1702,16\n", [1703, 1704]),             # years, as integers
    ("month,co2\n1958-11,313\n1958-12,315\n1959-01,315\n", ["1959-02", "1959-03"]),  # across a year's end
    ("day,x\n2024-02-27,1\n2024-02-28,2\n2024-02-29,3\n", ["2024-03-01", "2024-03-02"]),
    ("year,x\n2000,1\n2005,2\n2010,3\n", [2015, 2020]),
], ids=["years", "months", "days", "every five years"])
def test_a_column_of_evenly_stepping_times_is_continued_as_the_csv_writes_it(tmp_path, csv, after):
    (tmp_path / "s.csv").write_text(csv)
    column = csv.split("\n")[0].split(",")[1]
    assert forecasting.calendar(tmp_path / "s.csv", column).after(2) == after


@pytest.mark.parametrize("csv", ["when,x\n2024-01-01,1\n2024-01-05,2\n2024-03-01,3\n",  # no one step
                                 "id,x\n3,1\n1,2\n2,3\n", "x\n1\n2\n3\n"])
def test_without_evenly_stepping_times_steps_stay_numbered(tmp_path, csv):
    (tmp_path / "s.csv").write_text(csv)
    assert forecasting.calendar(tmp_path / "s.csv", "x") is None
    assert forecasting.calendar(tmp_path / "s.csv", None) is None  # one number per line


def test_the_forecast_of_a_dated_history_is_dated(trained, tmp_path, capsys):
    root, *_ = trained
    (tmp_path / "mine.csv").write_text("month,sales\n" + "".join(f"2020-{m:02d},{40 + m}\n" for m in range(1, 13)))
    assert forecast(root, "--model", "gru", "--steps", "2", "--history", str(tmp_path / "mine.csv"), "--column",
                    "sales") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["step", "month", "median", "min", "max"]
    assert [line.split()[:2] for line in lines[1:]] == [["1", "2021-01"], ["2", "2021-02"]]


def test_without_a_model_named_the_run_s_chosen_network_continues_the_series(trained, tmp_path, capsys):
    """As predict-ball picks its best: the network chosen on the validation slice where there is one
    (here the MLP, though its backtest is worse), else the lowest median backtest MSE."""
    root, *_ = trained
    seeds = lambda backtest, validation=None: {  # noqa: E731
        str(s): {"backtest_mse": backtest, **({"validation_mse": validation} if validation else {})} for s in (0, 1)}
    detail = {"models": {"gru": {"seeds": seeds(0.1, 0.5)}, "mlp": {"seeds": seeds(0.3, 0.2)}}, "references": {}}
    io.write_json(tmp_path / "detail.json", detail)
    assert forecast(root, "--steps", "2", "--detail", str(tmp_path / "detail.json"), "--out", str(tmp_path / "a.csv")) == 0
    assert capsys.readouterr().err.startswith("--model mlp: the lowest median validation_mse")
    assert forecast(root, "--model", "mlp", "--steps", "2", "--out", str(tmp_path / "b.csv")) == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    detail = {"models": {"gru": {"seeds": seeds(0.1)}, "mlp": {"seeds": seeds(0.3)}}, "references": {}}
    io.write_json(tmp_path / "detail.json", detail)
    assert forecast(root, "--steps", "2", "--detail", str(tmp_path / "detail.json"), "--out", str(tmp_path / "c.csv")) == 0
    assert capsys.readouterr().err.startswith("--model gru: the lowest median backtest_mse (no validation slice")


def test_the_summary_is_printed_when_no_file_is_asked(trained, capsys):
    root, *_ = trained
    assert forecast(root, "--model", "mlp", "--steps", "3") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["step", "median", "min", "max"] and len(lines) == 4


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "gru", "--steps", "0"], "error: --steps must be 1 or more, got 0"),
    (["--model", "lstm"], "error: {root}/models/lstm.pt: no such file; run `dvc repro train_sine@lstm` first"),
    (["--model", "gru", "--history", "nowhere.csv"], "error: nowhere.csv: no such file"),
], ids=["no steps", "not trained", "no history file"])
def test_bad_input_is_one_named_error_and_nothing_is_written(trained, tmp_path, capsys, args, message):
    root, *_ = trained
    assert forecast(root, *args, "--out", str(tmp_path / "f.csv")) == 1
    assert capsys.readouterr().err.strip() == message.format(root=root)
    assert not (tmp_path / "f.csv").exists()


def test_a_bad_history_line_is_named(trained, tmp_path, capsys):
    root, *_ = trained
    (tmp_path / "mine.csv").write_text("1.0\n2.0\nabc\n")
    assert forecast(root, "--model", "gru", "--history", str(tmp_path / "mine.csv")) == 1
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'mine.csv'}:3: not a number: 'abc'"


def test_the_figure_footer_names_the_history_it_continued(trained, tmp_path, monkeypatch):
    from rnnlab import plotting

    captions = []
    draw = plotting.forecast
    monkeypatch.setattr(plotting, "forecast", lambda *a, **k: captions.append(k["caption"]) or draw(*a, **k))
    root, p, *_ = trained
    (tmp_path / "mine.csv").write_text("".join(f"{40 + v}\n" for v in range(30)))
    assert forecast(root, "--model", "gru", "--steps", "3", "--history", str(tmp_path / "mine.csv"),
                    "--plot", str(tmp_path / "f.png")) == 0
    assert f"data: {tmp_path / 'mine.csv'} (continued; trained on {p.series.csv_path})" in captions[0]
    assert forecast(root, "--model", "gru", "--steps", "3", "--plot", str(tmp_path / "g.png")) == 0
    assert "continued" not in captions[1]


def test_a_forecaster_recipe_model_continues_the_series_undoing_its_transform(tmp_path):
    """Differenced and standardised: the forecast is the last value plus the cumulated, unscaled
    differences the model runs free from the last seq_len differences (a zero state)."""
    from rnnlab import recipe

    raw = tiny(yaml.safe_load((ROOT / "params.yaml").read_text()), epochs=3)
    raw["series"].update(recipe="forecaster", transform="diff", scaling="standard", season=None, horizon=5, origins=2)
    raw["series"]["forecaster"].update(epochs=3, patience=1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    p = parse(raw)
    x = 300 + np.arange(p.sine.data.points) / 10 + data.noisy_sine(p.sine.data)
    units = recipe.Units.fit(x, p)
    z = units.to_model(x)
    (tmp_path / "data").mkdir()
    io.write_text(tmp_path / "data/series.csv", data.exact_csv(x))
    io.write_text(tmp_path / "data/scaled.csv", data.exact_csv(z))
    io.write_json(tmp_path / "data/scaling.json", units.to_json())
    model, *_ = recipe.train(p, x, z, units, "gru")
    saved = stack_checkpoint(model, list(p.seeds), None)
    saved.extra[provenance.KEY] = prepared_fingerprint(p, tmp_path / "data")
    save_checkpoint(tmp_path / "models/gru.pt", saved)
    assert forecast(tmp_path, "--model", "gru", "--steps", "6", "--out", str(tmp_path / "f.csv")) == 0
    frame = io.read_text(tmp_path / "f.csv").splitlines()
    got = np.array([[float(v) for v in line.split(",")[4:]] for line in frame[1:]]).T  # (seeds, steps)
    known = torch.from_numpy(z[-p.seq_len :]).float()
    diffs = evaluation.backtest(model, known, None, (p.seq_len - 1,), 6)[:, 0].double().numpy()
    expected = x[-1] + np.cumsum(diffs * units.scaler.std + units.scaler.mean, axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_a_model_of_another_series_or_another_seq_len_is_refused_naming_both(trained, tmp_path, capsys):
    """prepare_series has since prepared another series (`-S series.csv_path=...`), or params.yaml
    now cuts other windows: the model would answer for data it never saw."""
    root, *_ = trained
    other = tmp_path / "other"
    other.mkdir()
    for name in ("series.csv", "scaled.csv", "scaling.json"):
        (other / name).write_bytes((root / "data" / name).read_bytes())
    (other / "series.csv").write_text((root / "data" / "series.csv").read_text().replace("4", "5", 1))
    assert main(["forecast", "--models", str(root / "models"), "--prepared", str(other), "--params", str(root / "params.yaml"),
                 "--model", "gru", "--steps", "3"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {root / 'models' / 'gru.pt'}: trained on something else than it would be now: data ")
    assert err.endswith("retrain it: `dvc repro`") and "\n" not in err
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["seq_len"] = 5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["forecast", "--models", str(root / "models"), "--prepared", str(root / "data"),
                 "--params", str(tmp_path / "params.yaml"), "--model", "gru", "--steps", "3"]) == 1
    assert "seq_len 20 (now 5)" in capsys.readouterr().err


def test_a_checkpoint_that_records_nothing_of_its_data_is_refused(trained, tmp_path, capsys):
    root, p, *_ = trained
    model = load_model(p, root / "models", "gru", root / "data")
    model.extra.pop(provenance.KEY)
    save_checkpoint(tmp_path / "gru.pt", model)
    assert main(["forecast", "--models", str(tmp_path), "--prepared", str(root / "data"), "--params", str(root / "params.yaml"),
                 "--model", "gru", "--steps", "3"]) == 1
    assert "records nothing of what it was trained on" in capsys.readouterr().err
