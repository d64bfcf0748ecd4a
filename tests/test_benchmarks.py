"""The benchmarks run, and the faithful recipes agree with the seed-style loops they time."""

import sys

import pytest

from conftest import ROOT, run


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_ball_recipe_is_the_seed_004_loop_number_for_number(kind):
    proc = run([sys.executable, str(ROOT / "benchmarks/bench_ball.py"), "--rows", "600", "--epochs", "3",
                "--model", kind], ROOT)
    assert "identical validation accuracy every epoch: True" in proc.stdout, proc.stdout


def test_sine_benchmark_runs_and_reports_a_ratio():
    proc = run([sys.executable, str(ROOT / "benchmarks/bench_sine.py"), "--epochs", "2"], ROOT)
    assert "speed-up" in proc.stdout, proc.stdout
