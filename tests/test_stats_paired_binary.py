"""audit/stats/paired_binary.py: exact McNemar and Newcombe's paired interval, by hand and by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from audit.stats.paired_binary import mcnemar_exact, paired_binary


def test_mcnemar_exact_by_hand() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 1) == pytest.approx(2 * (1 + 4) / 16)
    assert mcnemar_exact(10, 0) == pytest.approx(2 * 0.5**10)
    assert mcnemar_exact(7, 3) == mcnemar_exact(3, 7) == pytest.approx(2 * binom.cdf(3, 10, 0.5))


@pytest.mark.parametrize("table", [(8, 5, 4, 9), (36, 12, 2, 0), (0, 3, 0, 17), (10, 0, 0, 10)])
def test_newcombe_method_10_equals_the_compare_implementation(table: tuple[int, int, int, int]) -> None:
    """One pair per prompt: the same interval as lm-audit compare's paired interval (an independent
    implementation in audit/compare/paired.py), and the difference of the margins."""
    from audit.compare.paired import newcombe_diff

    both, first_only, second_only, neither = table
    first = np.array([1] * both + [1] * first_only + [0] * second_only + [0] * neither, dtype=bool)
    second = np.array([1] * both + [0] * first_only + [1] * second_only + [0] * neither, dtype=bool)
    res = paired_binary(first, second)
    ones = np.ones(first.size)
    d, lo, hi = newcombe_diff(first.astype(float), ones, second.astype(float), ones, 0.95)
    assert res["delta"] == pytest.approx(d) == pytest.approx((second_only - first_only) / first.size)
    assert res["ci_low"] == pytest.approx(lo) and res["ci_high"] == pytest.approx(hi)
    assert res["discordant"] == {"after_only": second_only, "before_only": first_only}


def test_no_pairs_and_degenerate_tables() -> None:
    assert paired_binary(np.array([], bool), np.array([], bool)) is None
    res = paired_binary(np.zeros(20, bool), np.zeros(20, bool))
    assert res["delta"] == 0 and res["ci_low"] < 0 < res["ci_high"] and res["p_value"] == 1.0


def test_type_i_error_and_coverage_by_simulation() -> None:
    """Seeded: under no change the exact test rejects at most 5% of the time; the interval covers
    the true difference at least 93% of the time (n = 40 pairs, a correlated pair model)."""
    rng = np.random.default_rng(0)
    reject = cover = 0
    sims = 1500
    for _ in range(sims):
        before = rng.random(40) < 0.3
        flip = rng.random(40) < 0.2  # each answer changes with prob. 0.2, symmetric under the null
        after = np.where(flip, rng.random(40) < 0.3, before)
        res = paired_binary(before, after)
        reject += res["p_value"] < 0.05
        cover += res["ci_low"] <= 0.0 <= res["ci_high"]
    assert reject / sims <= 0.05
    assert cover / sims >= 0.93
    # and with a real change, the interval covers it and the test sees it
    before = rng.random(400) < 0.2
    after = before | (rng.random(400) < 0.25)
    res = paired_binary(before, after)
    true = 0.8 * 0.25
    assert res["ci_low"] <= true <= res["ci_high"] and res["p_value"] < 1e-6 and not math.isnan(res["delta"])


def test_clusters_widen_the_interval() -> None:
    """Several pairs per prompt with identical outcomes carry less information than independent pairs."""
    before = np.repeat(np.array([0, 0, 1, 0, 0, 0, 1, 0, 0, 0], bool), 5)
    after = np.repeat(np.array([1, 1, 1, 0, 1, 0, 1, 1, 0, 0], bool), 5)
    flat = paired_binary(before, after)
    clustered = paired_binary(before, after, np.repeat(np.arange(10), 5))
    assert clustered["clustered"] and not flat["clustered"]
    assert clustered["ci_high"] - clustered["ci_low"] > flat["ci_high"] - flat["ci_low"]
