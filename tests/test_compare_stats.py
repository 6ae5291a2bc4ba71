"""Seeded simulations of the model-vs-model statistics: the exact McNemar test and its clustered
permutation equivalent hold their 5% level when two models do not differ, the Newcombe interval on
the paired difference covers the true difference (also at the 0 boundary and with k samples per
prompt), and the significance letters follow the significant pairs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from audit.compare import letter_groups
from audit.compare.figures import Binary, Figure
from audit.compare.paired import mcnemar_exact, newcombe_diff, paired, wilson
from audit.gates.evaluate import StatsSettings
from audit.stats.resampling import ratio


def _outcomes(
    rng: np.random.Generator, n: int, pa: float, pb: float, k: int = 1, prompt_sd: float = 0.0, rho: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """(n prompts x k samples) 0/1 outcomes of models A and B with exact marginals pa, pb; outcomes
    are correlated between the models (rho) and within a prompt (prompt_sd)."""
    s = np.sqrt(1 + prompt_sd**2)
    u = rng.normal(0, prompt_sd, n)[:, None]
    z = rng.normal(size=(n, k))
    za = np.sqrt(rho) * z + np.sqrt(1 - rho) * rng.normal(size=(n, k))
    zb = np.sqrt(rho) * z + np.sqrt(1 - rho) * rng.normal(size=(n, k))
    return (za + u < norm.ppf(pa) * s).astype(float), (zb + u < norm.ppf(pb) * s).astype(float)


def test_exact_mcnemar_matches_the_binomial_and_holds_its_level() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 * 0.5**6)  # 0.03125
    assert mcnemar_exact(3, 3) == 1.0
    rng = np.random.default_rng(1)
    rejections = 0
    reps = 1500
    for _ in range(reps):
        xa, xb = _outcomes(rng, 60, 0.3, 0.3)
        rejections += mcnemar_exact(int(np.sum((xa == 1) & (xb == 0))), int(np.sum((xa == 0) & (xb == 1)))) < 0.05
    assert rejections / reps <= 0.05 + 0.012  # exact: at or below alpha (measured 2.7%)
    # and it has power against a real difference
    power = sum(
        mcnemar_exact(int(np.sum((a == 1) & (b == 0))), int(np.sum((a == 0) & (b == 1)))) < 0.05
        for a, b in (_outcomes(rng, 100, 0.2, 0.4) for _ in range(200))
    )
    assert power / 200 > 0.8


def _binary_fig(x: np.ndarray) -> Figure:
    cols = np.column_stack([x.sum(1), np.full(len(x), x.shape[1], dtype=float)])
    return Figure("rate", cols, [f"p{i}" for i in range(len(x))], ratio, "better", None, binary=Binary(0, 1, 1.0))


def test_clustered_permutation_test_holds_its_level() -> None:
    """k = 3 samples per prompt with a strong prompt effect: the deciding interval (cluster-adjusted
    Newcombe) and its p-value, and the cluster permutation cross-check (McNemar's permutation
    equivalent), each keep about 5% false positives."""
    stats = StatsSettings(resamples=200, permutations=400)
    rng = np.random.default_rng(2)
    reps = 300
    hits = exact = 0
    for r in range(reps):
        xa, xb = _outcomes(rng, 40, 0.25, 0.25, k=3, prompt_sd=1.0)
        fa, fb = _binary_fig(xa), _binary_fig(xb)
        res = paired(fa, fb, fa.keys, stats, seed=r)
        assert res["test"] == "Newcombe hybrid score interval (cluster-adjusted)"
        assert res["exact_test"]["test"] == "permutation"
        hits += res["p_value"] < 0.05
        exact += res["exact_test"]["p_value"] < 0.05
    assert 0.02 <= hits / reps <= 0.08 and 0.02 <= exact / reps <= 0.08


@pytest.mark.parametrize(
    ("n", "pa", "pb", "k", "prompt_sd", "most"),
    [
        (80, 0.10, 0.15, 1, 0.0, 0.985),
        (40, 0.20, 0.30, 1, 0.0, 0.985),
        (55, 0.001, 0.03, 1, 0.0, 1.0),  # near 0 a discrete interval is conservative, never zero-width
        (50, 0.10, 0.20, 3, 1.0, 0.985),  # 3 samples per prompt, strong prompt effect
    ],
)
def test_newcombe_interval_covers_the_paired_difference(
    n: int, pa: float, pb: float, k: int, prompt_sd: float, most: float
) -> None:
    rng = np.random.default_rng(3)
    reps = 1000
    covered = 0
    for _ in range(reps):
        xa, xb = _outcomes(rng, n, pa, pb, k=k, prompt_sd=prompt_sd)
        trials = np.full(n, float(k))
        _, lo, hi = newcombe_diff(xa.sum(1), trials, xb.sum(1), trials, 0.95)
        covered += lo <= pb - pa <= hi
    assert 0.93 <= covered / reps <= most  # measured 0.95-0.96 (0.998 at the boundary)


def test_intervals_are_honest_at_the_boundary() -> None:
    lo, hi = wilson(0.0, 55, 0.95)
    assert lo == 0.0 and 0.05 < hi < 0.08  # 0/55 is not [0, 0]
    zeros = np.zeros(55)
    ones = np.ones(55)
    d, lo, hi = newcombe_diff(zeros, ones, zeros, ones, 0.95)  # both models 0/55
    assert d == 0 and lo < -0.04 and hi > 0.04
    d, lo, hi = newcombe_diff(ones, ones, ones, ones, 0.95)  # both 55/55
    assert lo < 0 < hi and lo >= -1 and hi <= 1
    res = paired(_binary_fig(zeros[:, None]), _binary_fig(zeros[:, None]), [f"p{i}" for i in range(55)],
                 StatsSettings(resamples=200, permutations=200), 0)
    assert res["test"] == "Newcombe hybrid score interval" and res["exact_test"] == {"test": "mcnemar-exact", "p_value": 1.0}
    assert res["p_value"] == 1.0 and res["ci_low"] < 0 < res["ci_high"]


def test_letters_follow_the_significant_pairs() -> None:
    assert letter_groups(["A", "B", "C"], set()) == {"A": "a", "B": "a", "C": "a"}
    assert letter_groups(["A", "B", "C"], {frozenset("AC")}) == {"A": "a", "B": "ab", "C": "b"}
    every = {frozenset(p) for p in ("AB", "AC", "BC")}
    assert letter_groups(["A", "B", "C"], every) == {"A": "a", "B": "b", "C": "c"}
    got = letter_groups(list("ABCD"), {frozenset("AC"), frozenset("AD"), frozenset("BD")})
    for x, y in [("A", "B"), ("B", "C"), ("C", "D")]:  # not significant: share a letter
        assert set(got[x]) & set(got[y])
    for x, y in [("A", "C"), ("A", "D"), ("B", "D")]:  # significant: share none
        assert not set(got[x]) & set(got[y])


def _mean_fig(x: np.ndarray, higher_is: str = "worse", kind: str = "metric") -> Figure:
    """A continuous figure: the mean of per-prompt scores (one record per prompt)."""
    cols = np.column_stack([x, np.ones_like(x)])
    return Figure("m", cols, [f"p{i}" for i in range(len(x))], lambda t: ratio(t, 0, 1), higher_is, None, kind=kind)


@pytest.mark.parametrize("kind", ["binary", "mean", "few", "ideal"])
def test_interval_and_p_value_come_from_one_method_and_agree(kind: str) -> None:
    """#24 item 7: "delta -0.555 [-0.882, -0.229], p=0.0706" cannot happen: the p-value is the smallest
    alpha whose interval leaves 0 out, so across random datasets "the CI excludes 0" and "p < 0.05"
    agree every time, and the verdict follows both; the result says which interval decided."""
    from audit.compare.paired import verdict

    rng = np.random.default_rng({"binary": 1, "mean": 2, "few": 3, "ideal": 4}[kind])
    stats = StatsSettings(resamples=400, permutations=200)
    outcomes = set()
    for trial in range(40):
        n = 6 if kind == "few" else 50
        if kind == "binary":
            xa, xb = _outcomes(rng, n, 0.3, float(rng.uniform(0.2, 0.5)))
            fa, fb = _binary_fig(xa), _binary_fig(xb)
        elif kind == "ideal":  # distance from an ideal: the worsening has its own interval and p
            xa = rng.normal(0.5, 0.2, n)
            xb = xa + rng.normal(float(rng.uniform(-0.15, 0.15)), 0.2, n)
            fa, fb = (Figure("m", np.column_stack([x, np.ones_like(x)]), [f"p{i}" for i in range(n)],
                             lambda t: ratio(t, 0, 1), "neutral", 0.5) for x in (xa, xb))
        else:
            xa = rng.normal(0.3, 0.2, n)
            xb = xa + rng.normal(float(rng.uniform(-0.15, 0.15)), 0.2, n)
            fa, fb = _mean_fig(xa), _mean_fig(xb)
        res = paired(fa, fb, fa.keys, stats, seed=trial)
        lo, hi, p = res["worsening_ci_low"], res["worsening_ci_high"], res["p_worse"]
        excludes = lo > 0 or hi < 0
        assert excludes == (p < 0.05), (trial, res)
        assert (verdict(res, True, 0.05) != "no significant change") == excludes
        assert (res["ci_low"] > 0 or res["ci_high"] < 0) == (res["p_value"] < 0.05)
        assert res["decided_by"].startswith("the 95% CI of the worsening")
        outcomes.add(excludes)
    assert outcomes == {True, False}  # both kinds of result were met
