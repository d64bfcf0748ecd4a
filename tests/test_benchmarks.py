"""The benchmarks run, and the faithful recipes agree with the texts' loops they time."""

import re
import sys

import pytest
import yaml

from rnnlab import references

from conftest import ROOT, run


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_ball_recipe_is_the_text_004_loop_number_for_number(kind):
    # the torch engine is the text's loop bit for bit; the compiled one agrees to float32 rounding
    proc = run([sys.executable, str(ROOT / "benchmarks/bench_ball.py"), "--rows", "600", "--epochs", "3",
                "--model", kind, "--rounds", "1"], ROOT)
    torch_line, compiled_line = (line for line in proc.stdout.splitlines() if " engine " in line)
    assert "(identical every epoch)" in torch_line, proc.stdout
    difference = float(compiled_line.split("max |difference| ")[1].split(")")[0]) if "max |" in compiled_line else 0.0
    assert difference < 1e-4, proc.stdout
    assert all("speed-up" in line for line in (torch_line, compiled_line)), proc.stdout


def test_the_default_ball_engine_stops_where_the_text_004_loop_stops_on_other_csvs():
    # three csvs the pipeline never made, to the end of text 004's rule (patience shortened to
    # keep the test quick; the rule, the comparison and the exit status are the script's own)
    proc = run([sys.executable, str(ROOT / "benchmarks/ball_engines.py"), "--csvs", "3", "--rows", "500",
                "--max-epochs", "60", "--patience", "5"], ROOT)
    torch_line = next(line for line in proc.stdout.splitlines() if line.startswith("torch engine:"))
    assert "the text's stop and best epoch on 3 of 3 csvs, every validation and the test accuracy bit for bit on 3" \
        in torch_line, proc.stdout
    stops = [int(row.split("|")[1].split()[0]) for row in proc.stdout.splitlines() if re.match(r"\s+\d+\s+500 ", row)]
    assert len(stops) == 3 and min(stops) < 60, f"no csv exercised the stopping rule:\n{proc.stdout}"


def sine_numbers(line: str) -> tuple[float, float]:
    """GRU train and test loss from one of bench_sine's result lines."""
    match = re.search(r"GRU train (\S+) test (\S+)", line)
    return float(match[1]), float(match[2])


def test_sine_benchmark_times_two_sides_that_compute_the_same_gru():
    proc = run([sys.executable, str(ROOT / "benchmarks/bench_sine.py"), "--epochs", "3", "--rounds", "1",
                "--no-compile-time"], ROOT)
    lines = proc.stdout.splitlines()
    text = next(line for line in lines if line.strip().startswith("text-style loop"))
    ours = next(line for line in lines if line.strip().startswith("rnnlab, seed"))
    # the same algorithm from the same initialisation: the GRU's numbers agree to float32 rounding
    assert sine_numbers(ours) == pytest.approx(sine_numbers(text), abs=1e-4), proc.stdout
    assert "speed-up, one seed" in proc.stdout and "seeds batched" in proc.stdout, proc.stdout


def test_scale_benchmark_times_the_same_training_on_every_side():
    # a loop size and a BLAS size, batch 1 and 3: rnnlab's losses are the plain path's and the texts' loop's
    proc = run([sys.executable, str(ROOT / "benchmarks/bench_scale.py"), "--hidden", "8", "64", "--batch", "1", "3",
                "--repeat", "1", "--steps", "4"], ROOT)
    rows = [line.split() for line in proc.stdout.splitlines() if line.split() and line.split()[0] in ("8", "64")]
    assert len(rows) == 4, proc.stdout
    for row in rows:
        plain, texts = float(row[11]), float(row[12])
        assert plain < 1e-5 and texts < 1e-5, proc.stdout
        assert all(float(ms) > 0 for ms in row[4:8]), proc.stdout


def test_the_series_contest_reads_two_series_not_in_the_box_from_statsmodels_and_scores_every_forecaster(tmp_path):
    # docs/series.md's elec_equip and US real GDP rows: the references are statsmodels' fits on the
    # training part, so they are the documented numbers whatever the networks' (tiny) training does
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["series"]["forecaster"].update(epochs=2, patience=1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = run([sys.executable, str(ROOT / "benchmarks/bench_series.py"), "--series", "elec_equip,gdp",
                "--models", "rnn", "--params", str(tmp_path / "params.yaml"), "--seeds", "2"], ROOT)
    rows = {line.split("|")[1].strip(): line.split("|")[2:4] for line in proc.stdout.splitlines() if line.startswith("| ")}
    assert [cell.strip() for cell in rows["autoreg"]] == ["0.260", "3.832"], proc.stdout
    assert [cell.strip() for cell in rows["arima"]] == ["0.554 (2, 1, 2)", "4.552 (2, 1, 0)"], proc.stdout
    assert re.fullmatch(r" \d+\.\d{3} / \d+\.\d{3} \(\d+ s\) ", rows["rnn"][0]), proc.stdout


def test_the_series_contest_runs_on_a_csv_of_yours_and_sets_each_network_against_the_best_reference(tmp_path):
    """`bench_series.py --csv my.csv --column sales`: the contest of docs/series.md on a user's own
    series, the same table as the named ones (here elec_equip, written out as a user's csv)."""
    from rnnlab import datasets

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["series"]["forecaster"].update(epochs=2, patience=1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "orders.csv").write_text(datasets.packaged_csv("elec_equip"))
    proc = run([sys.executable, str(ROOT / "benchmarks/bench_series.py"), "--csv", str(tmp_path / "orders.csv"),
                "--column", "STS.M.I7.W.TOVT.NS0016.4.000", "--season", "12", "--transform", "diff", "--models", "rnn",
                "--params", str(tmp_path / "params.yaml"), "--seeds", "2"], ROOT)
    rows = {line.split("|")[1].strip(): line.split("|")[2] for line in proc.stdout.splitlines() if line.startswith("| ")}
    assert rows["backtest MASE: networks median seed / ensemble"].strip() == "orders"
    assert rows["autoreg"].strip() == "0.260", proc.stdout  # as --series elec_equip gives it (docs/series.md)
    # the line below the table names the table's lowest classical forecaster (zero is a yardstick)
    classical = {name: float(rows[name].split()[0]) for name in references.NAMES if name in rows and name != "zero"}
    best = min(classical, key=classical.get)
    against = [line for line in proc.stdout.splitlines() if line.startswith("orders: ")]
    head = re.fullmatch(rf"orders: Against the best classical forecaster, {re.escape(references.NAMES[best])} "
                        r"\((\S+)\): each network's seeds", against[0])
    assert head and round(float(head.group(1)), 3) == classical[best], proc.stdout
    assert re.fullmatch(r"orders: (> )?RNN +median \S+ \[95% interval \S+, \S+\]: \d of 2 seeds below \(sign test p = \S+\)",
                        against[1]), proc.stdout
