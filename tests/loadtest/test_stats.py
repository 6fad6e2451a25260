"""loadtest/report/stats.py on known samples: the median's interval and its coverage on normal and
heavy-tailed data, the paired ratio, a tie where the intervals overlap, a winner where they do not,
a law judged by its interval."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from loadtest.report import stats


def test_order_statistic_rank_known_values():
    # n = 5: only min-max is possible, covering 1 - 2/32
    assert stats.order_statistic_rank(5) == (1, 1 - 2 / 32)
    # n = 10: [x(2), x(9)] covers 1 - 2 * 11/1024 = 97.9 %; [x(3), x(8)] 89 % is too little
    k, cov = stats.order_statistic_rank(10)
    assert k == 2 and cov == pytest.approx(1 - 2 * 11 / 1024)
    # n = 20: k = 6, the textbook value
    assert stats.order_statistic_rank(20)[0] == 6
    with pytest.raises(ValueError):
        stats.order_statistic_rank(0)


def test_median_ci_on_a_known_sample():
    ci = stats.median_ci([5, 1, 4, 2, 3])
    assert (ci.median, ci.low, ci.high, ci.n) == (3, 1, 5, 5)
    assert ci.confidence == pytest.approx(0.9375)
    assert stats.median_ci([float("nan"), 2.0]).n == 1
    with pytest.raises(ValueError):
        stats.median_ci([])


@pytest.mark.parametrize("draw", [
    lambda rng: rng.gauss(100.0, 10.0),                                   # normal
    lambda rng: 100.0 + math.tan(math.pi * (rng.random() - 0.5)),         # Cauchy: no mean, heavy tails
    lambda rng: 100.0 * rng.paretovariate(1.2),                           # one-sided heavy tail
], ids=["normal", "cauchy", "pareto"])
def test_median_interval_covers_the_population_median(draw):
    """Coverage over 2,000 seeded samples of 15: at least the promised 95 % (exact for continuous
    data, so not much more either: the interval is not simply made wide)."""
    rng = random.Random(1)
    true_median = statistics.median(draw(rng) for _ in range(200_001))
    trials, hits = 2000, 0
    for _ in range(trials):
        ci = stats.median_ci([draw(rng) for _ in range(15)])
        hits += ci.low <= true_median <= ci.high
    assert ci.confidence >= 0.95
    assert 0.94 <= hits / trials <= 0.995


def test_bootstrap_is_reproducible_from_its_seed():
    xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    a, b = stats.bootstrap_ci(xs, seed=7), stats.bootstrap_ci(xs, seed=7)
    assert a == b and a.method == "bootstrap" and a.low <= a.median <= a.high


def test_cv():
    assert stats.cv([10, 10, 10]) == 0
    assert stats.cv([9, 11]) == pytest.approx(statistics.stdev([9, 11]) / 10)
    assert stats.cv([1]) is None


def test_paired_ratio_pairs_by_round():
    a = {1: 110.0, 2: 220.0, 3: 330.0}
    b = {1: 100.0, 2: 200.0, 3: 300.0, 4: 1.0}  # round 4 has no A: left out
    r = stats.paired_ratio(a, b)
    assert r.n == 3 and r.median == pytest.approx(1.1) and r.low == pytest.approx(1.1)


def test_a_tie_where_the_intervals_overlap_and_a_winner_where_not():
    rng = random.Random(3)
    base = {r: 1000 * (1 + 0.2 * rng.random()) for r in range(1, 8)}  # drift from round to round
    tie = {r: v * (1 + rng.uniform(-0.05, 0.05)) for r, v in base.items()}
    assert stats.compare(tie, base).verdict == "tie"
    win = {r: v * 1.2 for r, v in base.items()}
    assert stats.compare(win, base).verdict == "A"
    assert stats.compare(base, win).verdict == "B"
    # 2 % better every round: real, but under the practical threshold -> a tie
    assert stats.compare({r: v * 1.02 for r, v in base.items()}, base).verdict == "tie"
    assert stats.compare({}, base).verdict == "unknown"


def test_rank_names_the_tie_set_and_counts_rounds_won():
    rounds = range(1, 6)
    values = {"fast": {r: 200.0 + r for r in rounds}, "also fast": {r: 199.0 + r for r in rounds},
              "slow": {r: 100.0 for r in rounds}}
    ranking = stats.rank(values)
    assert ranking.best == "fast" and set(ranking.winners) == {"fast", "also fast"} and not ranking.clear
    assert ranking.rounds_won == {"fast": 5, "also fast": 0, "slow": 0}
    # lower is better (a latency): the slow one's 100 wins, clearly
    low = stats.rank(values, higher_is_better=False)
    assert low.best == "slow" and low.winners == ("slow",) and low.clear


def test_judge_law_by_its_interval():
    assert stats.judge_law([98, 99, 100, 101, 102], low=90, high=110) == "held"
    assert stats.judge_law([50, 51, 52, 53, 54], low=90) == "broken"
    assert stats.judge_law([85, 90, 95, 100, 105], low=90) == "inconclusive"
    assert stats.judge_law([], low=1) == "unmeasured"


def test_halves():
    assert stats.halves([1, 2, 3, 4, 5]) == ([1, 3, 5], [2, 4])


def test_a_round_order_is_shuffled_and_reproduced_from_its_seed():
    from loadtest.experiments.base import Config

    def cfg(seed: int, rnd: int) -> Config:
        return Config(("threadpool", "processpool", "selectors", "asyncio"), True, 1.0, "", "", {}, (2,),
                      round=rnd, seed=seed)

    items = list(range(12))
    assert cfg(5, 1).order(items) == cfg(5, 1).order(items)          # the recorded seed reproduces it
    assert sorted(cfg(5, 1).order(items)) == items                     # a permutation
    assert len({tuple(cfg(5, r).order(items)) for r in range(1, 6)}) > 1  # rounds differ
    assert "selectors (A/A)" in cfg(5, 1).engine_names()
