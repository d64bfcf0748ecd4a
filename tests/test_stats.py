"""Statistics over seeds, against independent references: a plain-Python bootstrap loop on the
same draws, hand-computed exact p-values, brute-force pair counts, statsmodels' Holm and Wilson."""

import math
import statistics

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from rnnlab import stats


def percentile_by_hand(sorted_values: list[float], q: float) -> float:
    """The textbook linear interpolation between order statistics: position (n - 1) q."""
    position = (len(sorted_values) - 1) * q
    below = math.floor(position)
    above = min(below + 1, len(sorted_values) - 1)
    return sorted_values[below] + (sorted_values[above] - sorted_values[below]) * (position - below)


@pytest.mark.parametrize("n", [5, 30, 31])
def test_bootstrap_interval_equals_a_plain_loop_over_the_same_draws(n):
    values = np.random.default_rng(7).lognormal(size=n) * 0.1
    resamples = 2000
    median, low, high = stats.bootstrap_median(values, resamples=resamples, seed=11)

    rng = np.random.default_rng(11)
    picks = rng.integers(0, n, size=(resamples, n))  # the documented draw: one (resamples, n) matrix
    medians = sorted(statistics.median(float(values[i]) for i in row) for row in picks)
    assert median == statistics.median(values.tolist())
    assert low == pytest.approx(percentile_by_hand(medians, 0.025), rel=1e-12)
    assert high == pytest.approx(percentile_by_hand(medians, 0.975), rel=1e-12)
    assert low <= median <= high


def test_bootstrap_interval_narrows_with_more_seeds():
    rng = np.random.default_rng(0)
    few, many = rng.normal(size=10), rng.normal(size=400)
    width = lambda v: stats.bootstrap_median(v)[2] - stats.bootstrap_median(v)[1]  # noqa: E731
    assert width(many) < width(few) / 3


def test_mann_whitney_against_hand_computed_exact_cases():
    # a entirely below b: U_a = 0 of 9 pairs, exact two-sided p = 2 / C(6, 3) = 0.1
    c = stats.compare([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert c.p == pytest.approx(0.1, abs=1e-12) and c.beats == 1.0 and c.test == "Mann-Whitney U"
    # 4 pairs, a wins 2: no effect, p = 1
    c = stats.compare([1.0, 4.0], [2.0, 3.0])
    assert c.beats == 0.5 and c.p == pytest.approx(1.0)
    # 4 vs 4 all below: p = 2 / C(8, 4) = 2 / 70
    assert stats.compare([1, 2, 3, 4], [5, 6, 7, 8]).p == pytest.approx(2 / 70, abs=1e-12)


def test_probability_of_beating_equals_brute_force_pair_count_with_ties():
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 6, 25).astype(float), rng.integers(1, 7, 31).astype(float)  # many ties
    wins = sum(1.0 if x < y else 0.5 if x == y else 0.0 for x in a for y in b)
    assert stats.compare(a, b).beats == pytest.approx(wins / (len(a) * len(b)), abs=1e-12)


def test_sign_test_against_a_number_hand_computed():
    # 8 of 10 seeds below: two-sided exact p = 2 (C(10,8) + C(10,9) + C(10,10)) / 2^10
    a = [0.1] * 8 + [0.9, 0.8]
    c = stats.against_value(a, 0.5)
    assert c.p == pytest.approx(2 * (45 + 10 + 1) / 1024, abs=1e-12)
    assert c.beats == 0.8 and c.test == "sign test"
    assert stats.against_value([0.5, 0.5], 0.5).p == 1.0  # every seed ties: nothing to test


def test_holm_equals_statsmodels():
    p = [0.01, 0.04, 0.03, 0.5, 0.001, 0.2]
    comparisons = [stats.Comparison(v, 0.6, 30, 30, "Mann-Whitney U") for v in p]
    ours = [c.p_adjusted for c in stats.holm(comparisons)]
    np.testing.assert_allclose(ours, multipletests(p, method="holm")[1], rtol=1e-12)
    assert [c.verdict for c in stats.holm(comparisons)] == [
        "significant" if v < 0.05 else "within noise" for v in multipletests(p, method="holm")[1]]


def test_seeds_needed_follows_noether_and_the_binomial_rule():
    za, zb = 1.959963984540054, 0.8416212335729143  # z_0.975, z_0.8
    assert stats.seeds_needed(0.7) == math.ceil((za + zb) ** 2 / (3 * 0.2**2) / 2) == 33
    assert stats.seeds_needed(0.3) == 33           # symmetric
    assert stats.seeds_needed(0.5) == math.inf
    q = 0.7
    assert stats.seeds_needed(q, "sign test") == math.ceil(((za / 2 + zb * math.sqrt(q * (1 - q))) / 0.2) ** 2)


def test_hold_rate_and_its_wilson_interval_equal_statsmodels():
    values = [0.01, 0.02, 0.9, 1.1, 0.03, 0.04, 0.5]  # 4 hold below 0.5 / 10
    share, low, high = stats.hold_rate(values, 0.5)
    assert share == pytest.approx(4 / 7)
    np.testing.assert_allclose([low, high], proportion_confint(4, 7, alpha=0.05, method="wilson"), rtol=1e-9)
    assert stats.hold_rate([1.0, 2.0], 0.5)[0] == 0.0
