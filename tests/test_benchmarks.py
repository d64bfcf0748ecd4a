"""The benchmarks run, and the faithful recipes agree with the seed-style loops they time."""

import sys

import pytest

from conftest import ROOT, run


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_ball_recipe_is_the_seed_004_loop_number_for_number(kind):
    # the torch engine is the seed's loop bit for bit; the compiled one agrees to float32 rounding
    proc = run([sys.executable, str(ROOT / "benchmarks/bench_ball.py"), "--rows", "600", "--epochs", "3",
                "--model", kind], ROOT)
    torch_line, compiled_line = (line for line in proc.stdout.splitlines() if "engine:" in line)
    assert "(identical every epoch)" in torch_line, proc.stdout
    difference = float(compiled_line.split("max |difference| ")[1].split(")")[0]) if "max |" in compiled_line else 0.0
    assert difference < 1e-4, proc.stdout


def test_sine_benchmark_runs_and_reports_a_ratio():
    proc = run([sys.executable, str(ROOT / "benchmarks/bench_sine.py"), "--epochs", "2"], ROOT)
    assert "speed-up" in proc.stdout, proc.stdout


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
