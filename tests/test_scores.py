"""`rnnlab scores`: every forecaster of experiment S sorted, the winner marked, in 120 columns."""

import json
import statistics
import sys
from pathlib import Path

import pytest

from rnnlab import references, scores
from rnnlab.errors import DataError

from conftest import ROOT, run

DETAIL = {
    "models": {
        "gru": {"seeds": {"0": {"backtest_mse": 0.02}, "1": {"backtest_mse": 0.04}, "2": {"backtest_mse": 0.03}},
                "ensemble": {"backtest_mse": 0.025}},
        "mlp": {"seeds": {"0": {"backtest_mse": 0.5}, "1": {"backtest_mse": 0.7}}, "ensemble": {"backtest_mse": 0.55}},
    },
    "references": {"clean_sine": {"backtest_mse": 0.001}, "exp_smoothing": {"backtest_mse": 0.028},
                   "arima": {"backtest_mse": 0.1, "order": [2, 0, 1]}},
}


def test_every_forecaster_is_sorted_and_the_best_one_marked_never_the_noise_floor():
    found = scores.scores(DETAIL, "backtest_mse")
    assert [s.name for s in found] == ["the clean sine (noise floor)", "GRU, seed ensemble (median forecast)", "Holt-Winters",
                                       "GRU, median of 3 seeds", "ARIMA", "MLP, seed ensemble (median forecast)",
                                       "MLP, median of 2 seeds"]
    assert found[3].value == statistics.median([0.02, 0.04, 0.03]) and found[3].spread == (0.02, 0.04)
    text = scores.render(found, "backtest_mse")
    marked = [line for line in text.splitlines() if line.startswith("* ")]
    assert marked[0].startswith("* GRU, seed ensemble (median forecast)") and marked[1].endswith("(network)")


def test_a_measure_the_seeds_lack_is_refused_naming_the_choices():
    with pytest.raises(DataError, match="gru: no rollout_mse per seed; choose from backtest_mse, rollout_mse"):
        scores.scores(DETAIL, "rollout_mse")


def test_the_command_on_the_committed_run_fits_120_columns_and_marks_the_lowest(root=ROOT):
    detail = json.loads((ROOT / "metrics/sine_detail.json").read_text())
    for measure in ("backtest_mse", "rollout_mse"):
        out = run([str(Path(sys.executable).parent / "rnnlab"), "scores", "--measure", measure], ROOT).stdout
        assert max(map(len, out.splitlines())) <= 120
        models = detail["models"].items()
        candidates = {f"{k.upper()}, seed ensemble (median forecast)": m["ensemble"][measure] for k, m in models}
        candidates |= {f"{k.upper()}, median of {len(m['seeds'])} seeds":
                       statistics.median(s[measure] for s in m["seeds"].values()) for k, m in models}
        candidates |= {references.NAMES[name]: r[measure] for name, r in detail["references"].items() if name != "clean_sine"}
        best = min(candidates, key=candidates.get)
        assert f"* the lowest {measure}: {best} (" in out, out


def test_each_network_is_set_against_the_best_classical_forecaster_seed_by_seed():
    """Holt-Winters (0.028) is the best reference (the noise floor is no forecaster): the GRU's seeds
    0.02 and 0.03, 0.04 put 1 of 3 below it; the sign test's p is the binomial's (scipy's own)."""
    from scipy.stats import binomtest

    lines = scores.against_best_reference(DETAIL, "backtest_mse")
    assert lines[0].startswith("Against the best classical forecaster, Holt-Winters (0.028)")
    gru = next(line for line in lines if line.split()[0] == "GRU")
    assert gru.startswith("  GRU   median 0.03 [95% interval ")
    assert gru.endswith(f"1 of 3 seeds below (sign test p = {binomtest(1, 3, 0.5).pvalue:.2g})")
    low, high = (float(x) for x in gru.split("[95% interval ")[1].split("]")[0].split(", "))
    assert 0.02 <= low <= 0.03 <= high <= 0.04
    mlp = next(line for line in lines if line.split()[0] == "MLP")
    assert mlp.endswith(f"0 of 2 seeds below (sign test p = {binomtest(0, 2, 0.5).pvalue:.2g})")


def test_the_run_s_network_is_chosen_on_validation_never_on_the_test_range():
    """The MLP is worse on the test backtest, but better on the validation slice: it is the run's
    forecaster, and the line set against the reference is marked for it, not the GRU's."""
    detail = json.loads(json.dumps(DETAIL))
    for kind, validation in (("gru", (0.3, 0.2, 0.4)), ("mlp", (0.1, 0.25))):
        for seed, value in zip(detail["models"][kind]["seeds"].values(), validation):
            seed["validation_mse"] = value
    assert scores.chosen_on_validation(detail) == "mlp"  # medians 0.175 against 0.3
    lines = scores.against_best_reference(detail, "backtest_mse")
    assert [line.split()[1] for line in lines if line.startswith("> ")] == ["MLP", "the"]
    assert lines[-1].endswith("(never the test range): MLP")
    assert scores.chosen_on_validation(DETAIL) is None  # no slice held out: nothing to choose by


def test_a_named_reference_stands_in_for_the_best_and_an_unknown_one_is_refused():
    lines = scores.against_best_reference(DETAIL, "backtest_mse", "arima")
    assert lines[0].startswith("Against the classical forecaster, ARIMA (0.1)")
    assert next(line for line in lines if line.split()[0] == "GRU").endswith("3 of 3 seeds below (sign test p = 0.25)")
    with pytest.raises(DataError, match="no reference 'autoreg' with backtest_mse in this run; choose from arima, "):
        scores.against_best_reference(DETAIL, "backtest_mse", "autoreg")
