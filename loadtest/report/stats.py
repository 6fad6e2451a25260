"""The statistics behind every figure of the report: a median with its interval, a paired ratio, a
verdict that knows a tie, a law judged by its interval.

Theory of operation. A *cell* (one configuration of one experiment at one load point) is measured
R times, once per *round*; each round visits every configuration in a shuffled order, so the drift
of a shared machine falls on all of them alike (Kalibera & Jones, "Rigorous benchmarking in
reasonable time", ISMM 2013). A cell is summarised by its median and a distribution-free confidence
interval of the median from order statistics (the binomial method: the interval between the k-th
smallest and the k-th largest of n values covers the population median with probability
1 - 2 P[Binomial(n, 1/2) < k]; Hollander & Wolfe, *Nonparametric Statistical Methods*, §3.6;
the same interval pyperf and criterion.rs show beside their medians). No distribution is assumed,
so heavy tails (one run slowed by a neighbour) widen the interval instead of breaking it.

Two configurations are compared by their **paired ratio**: one ratio per round (both measured in
that round, under the same drift), summarised the same way. "A beats B" only where that interval
lies wholly beyond :data:`THRESHOLD` (3 %) either side of 1; otherwise it is a *tie*.

With few values the nominal confidence may not be reachable: with n = 5 the widest interval (min to
max) covers the median with probability 1 - 2/32 = 93.75 %. :func:`median_ci` then returns min-max
and states the coverage it achieves (``Interval.confidence``); the report prints it.

Everything here is pure Python (no numpy): lists of floats in, frozen dataclasses out.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

__all__ = ["CONFIDENCE", "THRESHOLD", "Interval", "Comparison", "Ranking", "median_ci", "bootstrap_ci", "cv",
           "paired_ratio", "compare", "rank", "judge_law", "order_statistic_rank", "halves"]

#: the nominal confidence of every interval in the report
CONFIDENCE = 0.95
#: a practical threshold: "A beats B" only where the paired ratio's interval clears 1 +- 3 %
THRESHOLD = 0.03


@dataclass(frozen=True, kw_only=True, slots=True)
class Interval:
    """A median and its confidence interval: ``low <= median <= high``, in the unit of the values.

    ``n``: how many values; ``confidence``: the coverage the interval achieves (at most
    :data:`CONFIDENCE`'s target, less where n is too small to reach it: 0.9375 at n = 5); ``method``:
    ``"order statistics"`` or ``"bootstrap"``."""

    median: float
    low: float
    high: float
    n: int
    confidence: float
    method: str = "order statistics"

    def contains(self, x: float) -> bool:
        """Whether ``x`` lies inside the closed interval."""
        return self.low <= x <= self.high

    @property
    def half_width(self) -> float:
        """Half the interval's width relative to the median (0.05 = +-5 %); inf for a zero median."""
        return (self.high - self.low) / 2 / abs(self.median) if self.median else math.inf


def _binom_cdf_below(k: int, n: int) -> float:
    """P[Binomial(n, 1/2) < k]."""
    return sum(math.comb(n, i) for i in range(k)) / 2 ** n


def order_statistic_rank(n: int, confidence: float = CONFIDENCE) -> tuple[int, float]:
    """The largest k (1-based) such that [x(k), x(n+1-k)] covers the median with at least
    ``confidence``, and that coverage; where even k = 1 (min-max) falls short, (1, its coverage).

    Raises:
        ValueError: n < 1.
    """
    if n < 1:
        raise ValueError("an interval needs at least one value")
    best = (1, 1 - 2 * _binom_cdf_below(1, n))
    for k in range(1, (n + 1) // 2 + 1):
        coverage = 1 - 2 * _binom_cdf_below(k, n)
        if coverage >= confidence:
            best = (k, coverage)
        else:
            break
    return best


def median_ci(values: Iterable[float], confidence: float = CONFIDENCE) -> Interval:
    """The median of ``values`` and its distribution-free interval (module docstring).

    NaNs are dropped. One value gives a zero-width interval with confidence 0.

    Raises:
        ValueError: no (non-NaN) value.
    """
    xs = sorted(float(v) for v in values if v is not None and not math.isnan(float(v)))
    if not xs:
        raise ValueError("median_ci of no values")
    n = len(xs)
    if n == 1:
        return Interval(median=xs[0], low=xs[0], high=xs[0], n=1, confidence=0.0)
    k, coverage = order_statistic_rank(n, confidence)
    return Interval(median=statistics.median(xs), low=xs[k - 1], high=xs[n - k], n=n, confidence=coverage)


def bootstrap_ci(values: Sequence[float], *, seed: int, resamples: int = 2000,
                 confidence: float = CONFIDENCE) -> Interval:
    """The median of ``values`` with a percentile-bootstrap interval (Efron & Tibshirani, *An
    Introduction to the Bootstrap*, 1993, ch. 13): ``resamples`` resamples with replacement drawn by
    ``random.Random(seed)`` (record the seed to reproduce the interval).

    Raises:
        ValueError: no value.
    """
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("bootstrap_ci of no values")
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(resamples))
    tail = (1 - confidence) / 2
    lo, hi = meds[int(tail * resamples)], meds[min(resamples - 1, int((1 - tail) * resamples))]
    return Interval(median=statistics.median(xs), low=lo, high=hi, n=len(xs), confidence=confidence,
                    method="bootstrap")


def cv(values: Sequence[float]) -> float | None:
    """The coefficient of variation: sample standard deviation / mean (0.05 = 5 %); None for fewer
    than two values or a zero mean."""
    xs = [float(v) for v in values]
    if len(xs) < 2:
        return None
    mean = statistics.fmean(xs)
    return statistics.stdev(xs) / abs(mean) if mean else None


def paired_ratio(a: Mapping[int, float], b: Mapping[int, float], confidence: float = CONFIDENCE) -> Interval | None:
    """A over B, one ratio per round both were measured in (``{round: value}``), summarised by
    :func:`median_ci`; None where no round pairs two positive values."""
    ratios = [a[r] / b[r] for r in sorted(set(a) & set(b))
              if a[r] is not None and b[r] is not None and not math.isnan(a[r]) and not math.isnan(b[r])
              and b[r] > 0]
    return median_ci(ratios, confidence) if ratios else None


@dataclass(frozen=True, kw_only=True, slots=True)
class Comparison:
    """The paired ratio A / B and what it says: ``verdict`` is ``"A"`` (A's value is larger beyond
    the threshold), ``"B"``, ``"tie"`` (the interval reaches into 1 +- threshold) or ``"unknown"``
    (no paired round)."""

    ratio: Interval | None
    verdict: str
    threshold: float = THRESHOLD


def compare(a: Mapping[int, float], b: Mapping[int, float], threshold: float = THRESHOLD) -> Comparison:
    """Compare A and B by their paired ratio (values by round): A wins only where the whole interval
    is above ``1 + threshold``, B only where it is below ``1 / (1 + threshold)``."""
    r = paired_ratio(a, b)
    if r is None:
        return Comparison(ratio=None, verdict="unknown", threshold=threshold)
    if r.low > 1 + threshold:
        return Comparison(ratio=r, verdict="A", threshold=threshold)
    if r.high < 1 / (1 + threshold):
        return Comparison(ratio=r, verdict="B", threshold=threshold)
    return Comparison(ratio=r, verdict="tie", threshold=threshold)


@dataclass(frozen=True, kw_only=True, slots=True)
class Ranking:
    """Who wins among several configurations: ``best`` (the highest median, or lowest where lower is
    better), ``winners`` (best and every configuration the paired ratio cannot tell from it, best
    first), ``clear`` (True where best beats every other beyond the threshold), ``rounds_won``
    ({name: rounds in which it had the best value}), ``versus`` ({name: its Comparison against best})."""

    best: str
    winners: tuple[str, ...]
    clear: bool
    rounds_won: dict[str, int]
    versus: dict[str, Comparison]
    medians: dict[str, Interval]


def rank(values: Mapping[str, Mapping[int, float]], *, higher_is_better: bool = True,
         threshold: float = THRESHOLD) -> Ranking:
    """Rank configurations measured in rounds (``{name: {round: value}}``): the best by median, and
    the set that ties with it by :func:`compare`.

    Raises:
        ValueError: no configuration has a value.
    """
    medians = {n: median_ci(v.values()) for n, v in values.items() if v}
    if not medians:
        raise ValueError("rank of no values")
    sign = 1 if higher_is_better else -1
    best = max(medians, key=lambda n: sign * medians[n].median)
    versus = {}
    winners = [best]
    for name in sorted(medians, key=lambda n: -sign * medians[n].median):
        if name == best:
            continue
        c = compare(values[best], values[name], threshold)
        versus[name] = c
        beaten = c.verdict == ("A" if higher_is_better else "B")
        if not beaten:
            winners.append(name)
    rounds = sorted({r for v in values.values() for r in v})
    won = {n: 0 for n in values}
    for r in rounds:
        here = {n: v[r] for n, v in values.items() if r in v and v[r] is not None and not math.isnan(v[r])}
        if here:
            won[max(here, key=lambda n: sign * here[n])] += 1
    return Ranking(best=best, winners=tuple(winners), clear=len(winners) == 1, rounds_won=won, versus=versus,
                   medians=medians)


def judge_law(values: Iterable[float], *, low: float | None = None, high: float | None = None) -> str:
    """A law ``low <= x <= high`` (either bound may be open) judged by the median's interval:
    ``"held"`` where the whole interval lies inside the bounds, ``"broken"`` where it lies wholly
    outside, ``"inconclusive"`` where it straddles a bound, ``"unmeasured"`` with no value."""
    try:
        ci = median_ci(values)
    except ValueError:
        return "unmeasured"
    inside_low = low is None or ci.low >= low
    inside_high = high is None or ci.high <= high
    if inside_low and inside_high:
        return "held"
    if (low is not None and ci.high < low) or (high is not None and ci.low > high):
        return "broken"
    return "inconclusive"


def halves(rounds: Iterable[int]) -> tuple[list[int], list[int]]:
    """The odd and the even rounds (1-based round numbers): the report's verdict is computed from
    each, to show whether it reproduces."""
    rs = sorted(set(rounds))
    return [r for r in rs if r % 2 == 1], [r for r in rs if r % 2 == 0]
