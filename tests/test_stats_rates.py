"""The rate interval (audit/stats/rates.py) and the range-respecting intervals (audit/stats/bounded.py):
monotone in the data (a property over many random data sets), the issue-24 example, seeded coverage
of the docs/statistics.md table's hardest settings, and every bound inside its range."""

from __future__ import annotations

import numpy as np
import pytest

from audit.gates.evaluate import three_way
from audit.stats.bounded import bounded_mean, clip, delta_cluster_t
from audit.stats.intervals import t_cluster_mean
from audit.stats.rates import mover_diff, mover_mean, multinomial_corr, wilson_cluster, zero_event_bound

ORDER = {"PASS": 0, "INCONCLUSIVE": 1, "FAIL": 2}


def _random_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.integers(1, 40))
    k = int(rng.choice([1, 2, 3, 5, 20, 25]))
    m = rng.integers(1, k + 1, n).astype(float) if rng.random() < 0.3 else np.full(n, float(k))
    p = float(rng.choice([0.0, 0.005, 0.05, 0.2, 0.5, 0.9, 1.0]))
    clustered = 0 < p < 1 and rng.random() < 0.5  # prompts differ in their true rate
    pi = rng.beta(p * 0.5, (1 - p) * 0.5, n) if clustered else np.full(n, p)
    return rng.binomial(m.astype(int), pi).astype(float), m


def test_adding_a_success_never_moves_a_gate_towards_pass() -> None:
    rng = np.random.default_rng(2024)
    checked = 0
    for _ in range(1500):
        s, m = _random_data(rng)
        room = np.flatnonzero(s < m)
        if room.size == 0:
            continue
        j = rng.choice(room)
        more = s.copy()
        more[j] += 1
        a, b = wilson_cluster(s, m), wilson_cluster(more, m)
        assert b["ci_high"] >= a["ci_high"] - 1e-12 and b["ci_low"] >= a["ci_low"] - 1e-12, (s, m, j)
        for t in rng.uniform(0, 1, 5):
            # adding a success never moves `<=` towards PASS; removing it never moves it towards FAIL
            assert ORDER[three_way("<=", t, b["ci_low"], b["ci_high"])] >= ORDER[three_way("<=", t, a["ci_low"], a["ci_high"])]
        checked += 1
    assert checked > 1000


def test_issue_example_cleaner_model_never_fares_worse() -> None:
    """8 prompts x 20 samples, gate <= 0.05: 0 toxic must not be judged worse than 1 toxic."""
    m = np.full(8, 20.0)
    zero = wilson_cluster(np.zeros(8), m)
    one = wilson_cluster(np.r_[1.0, np.zeros(7)], m)
    assert zero["ci_low"] == 0.0 and one["ci_high"] >= zero["ci_high"] > 0.05
    assert three_way("<=", 0.05, zero["ci_low"], zero["ci_high"]) == "INCONCLUSIVE"
    assert three_way("<=", 0.05, one["ci_low"], one["ci_high"]) == "INCONCLUSIVE"
    # the design effect does not collapse between 0 and 1 event
    assert one["deff"] > 5


def test_zero_event_bound_is_clopper_pearson_for_single_records() -> None:
    assert zero_event_bound(np.ones(55), 0.025) == pytest.approx(1 - 0.025 ** (1 / 55))
    # clustered samples count for more than one prompt but less than independent records
    clustered = wilson_cluster(np.zeros(55), np.full(55, 4.0))["ci_high"]
    assert 1 - 0.025 ** (1 / 220) < clustered < 1 - 0.025 ** (1 / 55)


@pytest.mark.parametrize(
    ("p", "k", "icc", "n"),
    [(0.05, 25, 0.6, 30), (0.05, 5, 0.6, 100), (0.01, 25, 0.6, 100), (0.5, 25, 0.6, 30),
     (0.5, 5, 0.3, 10), (0.5, 1, 0.0, 10), (0.05, 1, 0.0, 3), (0.05, 25, 0.3, 3)],
)
def test_rate_interval_coverage(p: float, k: int, icc: float, n: int) -> None:
    """The docs/statistics.md table's hardest cells (>= 93% there, 400 reps); here 300 reps, 2 SE slack."""
    rng = np.random.default_rng(int(1000 * p) + 7 * k + n)
    reps, hits = 300, 0
    for _ in range(reps):
        pi = rng.beta(p * (1 - icc) / icc, (1 - p) * (1 - icc) / icc, n) if icc else np.full(n, p)
        s = rng.binomial(k, pi).astype(float)
        r = wilson_cluster(s, np.full(n, float(k)))
        hits += r["ci_low"] <= p <= r["ci_high"]
    assert hits / reps >= 0.905


def test_bounded_mean_stays_in_range_and_matches_t_in_the_middle() -> None:
    rng = np.random.default_rng(3)
    y = rng.beta(0.3, 3.0, (4, 2))  # skewed 0..1 scores, 4 prompts x 2 samples
    r = bounded_mean(y.sum(1), np.full(4, 2.0), 0.0, 1.0)
    t = t_cluster_mean(y.sum(1), np.full(4, 2.0))
    assert t["ci_low"] < 0 <= r["ci_low"] < r["estimate"] < r["ci_high"] <= 1
    mid = rng.normal(0, 0.1, 200)
    a, b = bounded_mean(mid, np.ones(200), -1.0, 1.0), t_cluster_mean(mid, np.ones(200))
    assert a["ci_low"] == pytest.approx(b["ci_low"], abs=0.005) and a["ci_high"] == pytest.approx(b["ci_high"], abs=0.005)


def test_bounded_mean_covers_a_skewed_score_better_than_t() -> None:
    rng = np.random.default_rng(5)
    hits_b = hits_t = 0
    for _ in range(400):
        y = rng.beta(0.3, 3.0, 10)
        b, t = bounded_mean(y, np.ones(10), 0, 1), t_cluster_mean(y, np.ones(10))
        hits_b += b["ci_low"] <= 0.3 / 3.3 <= b["ci_high"]
        hits_t += t["ci_low"] <= 0.3 / 3.3 <= t["ci_high"]
    assert hits_b > hits_t and hits_b / 400 >= 0.88


def test_delta_t_of_a_ratio_is_the_cluster_t_interval() -> None:
    rng = np.random.default_rng(1)
    s, m = rng.normal(0, 1, 30), rng.integers(1, 4, 30).astype(float)
    a = delta_cluster_t(np.column_stack([s, m]), lambda t: t[..., 0] / t[..., 1])
    b = t_cluster_mean(s, m)
    assert a["ci_low"] == pytest.approx(b["ci_low"], rel=1e-6) and a["ci_high"] == pytest.approx(b["ci_high"], rel=1e-6)
    assert np.isnan(delta_cluster_t(np.array([[1.0, 2.0]]), lambda t: t[..., 0] / t[..., 1])["ci_low"])


def test_mover_combinations_stay_in_range_and_are_not_zero_width() -> None:
    zero = wilson_cluster(np.zeros(20), np.ones(20))
    lo, hi = mover_mean(zero, zero)
    assert lo == 0.0 < hi <= zero["ci_high"]
    lo, hi = mover_diff(zero, zero, multinomial_corr(0.0, 0.0))
    assert -1 <= lo < 0 < hi <= 1
    a = wilson_cluster(np.r_[np.ones(6), np.zeros(14)], np.ones(20))
    b = wilson_cluster(np.r_[np.ones(2), np.zeros(18)], np.ones(20))
    lo, hi = mover_diff(a, b, multinomial_corr(0.3, 0.1))
    assert -1 <= lo < 0.2 < hi <= 1
    assert clip(-0.3, 0.5, 0.0, 1.0) == (0.0, 0.5, True) and clip(0.1, 0.5, 0.0, 1.0) == (0.1, 0.5, False)


def _bench() -> object:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "bench_coverage.py"
    spec = importlib.util.spec_from_file_location("bench_coverage", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_setting_of_the_coverage_table_holds_its_level_at_10_clusters() -> None:
    """bench/bench_coverage.py's settings (docs/statistics.md's table), every method the summary
    uses, at 10 clusters with 150 seeded data sets each: >= 90% (the table, at 400, says >= 93% for
    rates; 2 SE slack), the skewed bounded mean >= 85% (the table says 90%), the old percentile
    bootstrap rows below the new methods' level."""
    bench = _bench()
    low = {}
    for i, (figure, method, sim) in enumerate(bench.settings()):
        c = bench.coverage(sim, 10, 150, 7000 + i)
        floor = 0.85 if "skewed" in figure else 0.90
        if "(old)" in method or "no range" in method:
            continue
        if c < floor:
            low[f"{figure} / {method}"] = c
    assert low == {}
