"""benchmarks/bench_peer.py without darts (an optional extra): the series it loads are the docs'
commands' and its score is rnnlab's backtest MASE, computed here with numpy."""

import importlib.util

import numpy as np
import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_peer", ROOT / "benchmarks" / "bench_peer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # darts is imported only when a darts model trains
    return module


def test_the_series_are_loaded_with_the_docs_params(bench):
    p, x = bench.load_series("co2", str(ROOT / "params.yaml"))
    assert len(x) == 526 and np.isfinite(x).all() and p.series.gaps == "interpolate" and p.series.recipe == "forecaster"
    p, x = bench.load_series("nile", str(ROOT / "params.yaml"))
    assert len(x) == 100 and p.series.horizon == 10 and p.series.arima_order is None


def test_the_score_is_the_backtest_mase_of_the_median_seed_and_of_the_ensemble(bench):
    p, x = bench.load_series("sunspots", str(ROOT / "params.yaml"))
    b = int(0.8 * len(x))
    origins = np.unique(np.linspace(b, len(x) - 1 - 20, 5).round().astype(int))
    truth = np.stack([x[o + 1 : o + 21] for o in origins])
    runs = truth[None] + np.random.default_rng(0).normal(0, 10, (3, *truth.shape))
    scale = np.abs(np.diff(x[:b])).mean()
    got = bench.score(p, x, runs)
    per_seed = np.abs(runs - truth).mean((1, 2)) / scale
    assert got["mase_median_seed"] == pytest.approx(np.median(per_seed), rel=1e-12)
    assert got["mase_ensemble"] == pytest.approx(np.abs(np.median(runs, 0) - truth).mean() / scale, rel=1e-12)
    np.testing.assert_allclose(got["per_seed"], per_seed, rtol=1e-12)  # what the seed-by-seed comparison reads
