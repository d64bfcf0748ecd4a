"""Statistics over seeds: how sure a study's numbers are.

A free run's MSE over seeds is heavy-tailed and often bimodal (the run holds the phase or it
drifts), so everything here is rank-based or resampled, never a mean with a normal interval:

* ``bootstrap_median``: the median and its 95% percentile-bootstrap interval over seeds;
* ``compare``: two samples of seeds (lower is better), the Mann-Whitney U test (two-sided) and
  the common-language effect size P(a < b) + P(a = b) / 2 (McGraw & Wong 1992), i.e. the
  chance that a seed of ``a`` beats a seed of ``b``;
* ``against_value``: seeds against one number (the linear AR, fitted in closed form, has no
  seeds): the sign test (exact binomial, two-sided) on how many seeds beat it;
* ``holm``: Holm's step-down adjustment within a family of comparisons;
* ``seeds_needed``: the power rule, seeds per side for a two-sided test at 5% with 80% power
  at the observed effect (Noether 1987 for Mann-Whitney; the normal approximation of the
  binomial for the sign test);
* ``hold_rate``: the share of seeds whose free run holds (MSE below predict-zero's / 10) and its
  95% Wilson interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

ALPHA = 0.05          # two-sided level of every test and 1 - the intervals' coverage
POWER = 0.80          # the power the seeds-needed rule asks for
RESAMPLES = 10_000    # bootstrap resamples
BOOTSTRAP_SEED = 0    # the resamples are drawn from np.random.default_rng(BOOTSTRAP_SEED): a report is reproducible
HOLD_FRACTION = 0.1   # a free run holds when its MSE is below predict-zero's MSE times this


def bootstrap_median(values, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """(median, low, high): the median of ``values`` and the 2.5% and 97.5% percentiles (numpy's
    linear interpolation) of the medians of ``resamples`` resamples with replacement, drawn as one
    (resamples, n) matrix of indices from ``np.random.default_rng(seed)``."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))    # (resamples, n)
    medians = np.median(values[picks], axis=1)                              # (resamples,)
    low, high = np.percentile(medians, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
    return float(np.median(values)), float(low), float(high)


@dataclass(frozen=True)
class Comparison:
    """a against b, lower is better."""

    p: float                 # two-sided p-value
    beats: float             # P(a beats b): the chance a seed of a is below a seed of b (ties count half)
    n_a: int
    n_b: int
    test: str                # "Mann-Whitney U" or "sign test"
    p_adjusted: float | None = None  # Holm's, within the comparison's family
    below: tuple[int, int] | None = None  # sign test: (seeds below the value, seeds not equal to it)

    @property
    def resolved(self) -> bool:
        return (self.p if self.p_adjusted is None else self.p_adjusted) < ALPHA

    @property
    def verdict(self) -> str:
        return "significant" if self.resolved else "within noise"

    def seeds_needed(self) -> float:
        """Seeds per side the power rule asks for at this effect (inf: no effect seen)."""
        return seeds_needed(self.beats, self.test)


def compare(a, b) -> Comparison:
    """Mann-Whitney U (two-sided, scipy's default method) of seeds ``a`` against seeds ``b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    result = scipy_stats.mannwhitneyu(a, b, alternative="two-sided")
    # scipy's U counts the pairs with a > b (ties half): a beats b in the others
    beats = 1.0 - float(result.statistic) / (len(a) * len(b))
    return Comparison(float(result.pvalue), beats, len(a), len(b), "Mann-Whitney U")


def against_value(a, value: float) -> Comparison:
    """The sign test of seeds ``a`` against one number: how many seeds are below it (a seed equal
    to it is dropped, as the sign test does), exact two-sided binomial p against 1/2."""
    a = np.asarray(a, dtype=np.float64)
    below, above = int((a < value).sum()), int((a > value).sum())
    n = below + above
    p = float(scipy_stats.binomtest(below, n, 0.5).pvalue) if n else 1.0
    beats = below / n if n else 0.5
    return Comparison(p, beats, len(a), 1, "sign test", below=(below, n))


def holm(comparisons: list[Comparison]) -> list[Comparison]:
    """Each comparison with Holm's step-down adjusted p within the list (one family)."""
    m = len(comparisons)
    order = sorted(range(m), key=lambda k: comparisons[k].p)
    adjusted, running = [0.0] * m, 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (m - rank) * comparisons[k].p))
        adjusted[k] = running
    return [Comparison(c.p, c.beats, c.n_a, c.n_b, c.test, adjusted[k], c.below) for k, c in enumerate(comparisons)]


def _z(q: float) -> float:
    return float(scipy_stats.norm.ppf(q))


def seeds_needed(beats: float, test: str = "Mann-Whitney U") -> float:
    """Seeds per side for a two-sided test at ``ALPHA`` with ``POWER`` at effect ``beats``.

    Mann-Whitney (Noether 1987, equal groups): N = (z_{1-a/2} + z_{power})^2 / (3 (beats - 1/2)^2)
    seeds in all, N / 2 per side. Sign test against a number, normal approximation of the
    binomial: n = ((z_{1-a/2} / 2 + z_{power} sqrt(q (1 - q))) / (q - 1/2))^2 with q = ``beats``.
    inf when the observed effect is none (beats = 1/2)."""
    d = beats - 0.5
    if d == 0:
        return math.inf
    za, zb = _z(1 - ALPHA / 2), _z(POWER)
    if test == "sign test":
        return math.ceil(((za * 0.5 + zb * math.sqrt(beats * (1 - beats))) / d) ** 2)
    return math.ceil((za + zb) ** 2 / (3 * d * d) / 2)


def hold_rate(values, zero_mse: float) -> tuple[float, float, float]:
    """(share, low, high): the share of seeds whose MSE is below ``zero_mse`` x ``HOLD_FRACTION``,
    and its 95% Wilson score interval."""
    values = np.asarray(values, dtype=np.float64)
    n, k = len(values), int((values < zero_mse * HOLD_FRACTION).sum())
    z = _z(1 - ALPHA / 2)
    share = k / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return share, max(0.0, centre - half), min(1.0, centre + half)
