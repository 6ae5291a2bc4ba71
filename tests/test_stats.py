"""Statistics: known values, simulation checks of coverage and null p-values, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from audit.stats.resampling import (
    ColumnBank,
    bootstrap_mean_ci,
    bootstrap_totals,
    bootstrap_weights,
    cohens_dz,
    holm,
    paired_permutation_totals,
    percentile_ci,
    ratio,
    sign_flip_test,
)


def test_bootstrap_weights_are_multinomial_counts() -> None:
    w = bootstrap_weights(7, 50, np.random.default_rng(0))
    assert w.shape == (50, 7)
    assert (w.sum(axis=1) == 7).all()
    assert (w >= 0).all()


def test_point_estimate_is_the_plain_mean_and_ci_brackets_it() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    e = bootstrap_mean_ci(values, resamples=2000, seed=1)
    assert e.estimate == pytest.approx(4.0)
    assert e.ci_low < 4.0 < e.ci_high
    assert e.ci_low >= 1.0 and e.ci_high <= 10.0


def test_constant_data_gives_a_zero_width_interval() -> None:
    e = bootstrap_mean_ci([0.3] * 20, resamples=500, seed=0)
    assert (e.estimate, e.ci_low, e.ci_high) == pytest.approx((0.3, 0.3, 0.3))


def test_same_seed_same_interval_other_seed_other_interval() -> None:
    v = np.random.default_rng(3).normal(size=40)
    a = bootstrap_mean_ci(v, resamples=500, seed=7)
    b = bootstrap_mean_ci(v, resamples=500, seed=7)
    c = bootstrap_mean_ci(v, resamples=500, seed=8)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)


def test_chunked_bootstrap_equals_its_own_definition(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunking (memory bound) must not change the replicates' distribution of totals: every
    replicate of a count column sums to n."""
    import audit.stats.resampling as st

    monkeypatch.setattr(st, "_CHUNK_CELLS", 30)  # force many small chunks
    x = np.column_stack([np.arange(10.0), np.ones(10)])
    reps = bootstrap_totals(x, 95, seed=0)
    assert reps.shape == (95, 2)
    assert (reps[:, 1] == 10).all()


def test_bootstrap_ci_covers_the_true_mean_at_about_the_nominal_rate() -> None:
    rng = np.random.default_rng(2024)
    true_mean, hits, n_sims = 0.3, 0, 200
    for i in range(n_sims):
        data = rng.normal(true_mean, 1.0, size=60)
        e = bootstrap_mean_ci(data, resamples=1000, seed=i)
        hits += e.ci_low <= true_mean <= e.ci_high
    coverage = hits / n_sims
    # nominal 0.95; percentile intervals run slightly narrow at n=60; binomial sd ~0.015
    assert 0.89 <= coverage <= 0.99, coverage


def test_cluster_bootstrap_is_wider_than_naive_when_samples_are_correlated() -> None:
    """Samples of one prompt share the prompt's effect: resampling prompts (clusters) must give a
    wider, honest interval than resampling samples as if independent."""
    rng = np.random.default_rng(5)
    prompt_effect = np.repeat(rng.normal(0, 1, 30), 10)
    values = prompt_effect + rng.normal(0, 0.1, 300)
    clusters = np.repeat(np.arange(30), 10)
    naive = bootstrap_mean_ci(values, resamples=1000, seed=0)
    clustered = bootstrap_mean_ci(values, resamples=1000, seed=0, clusters=clusters)
    assert clustered.estimate == pytest.approx(naive.estimate)
    assert (clustered.ci_high - clustered.ci_low) > 2 * (naive.ci_high - naive.ci_low)


def test_column_bank_estimates_several_figures_jointly() -> None:
    bank = ColumnBank(4)
    s1 = bank.add(np.array([[1.0, 1], [2, 1], [3, 1], [4, 1]]))
    s2 = bank.add(np.array([[10.0, 2], [0, 2], [0, 2], [10, 2]]))
    bank.run(300, seed=0)
    assert bank.estimate(s1, ratio).estimate == pytest.approx(2.5)
    assert bank.estimate(s2, ratio).estimate == pytest.approx(2.5)
    with pytest.raises(ValueError):
        bank.add(np.ones((3, 1)))


def test_percentile_ci_ignores_nan_replicates() -> None:
    lo, hi = percentile_ci(np.array([np.nan, 1.0, 2.0, 3.0, np.nan]), level=0.5)
    assert 1.0 <= lo <= hi <= 3.0
    assert all(np.isnan(percentile_ci(np.array([np.nan, np.nan]))))


def test_sign_flip_exact_p_value_matches_hand_count() -> None:
    # d = (1, 2, 3): |sum| = 6 is reached by ++ + and --- only -> p = 2/8
    t = sign_flip_test([1.0, 2.0, 3.0])
    assert t.p_value == pytest.approx(0.25)
    assert t.n_pairs == 3
    assert t.mean_diff == pytest.approx(2.0)
    assert "exact" in t.method


def test_cohens_dz_known_value() -> None:
    d = np.array([1.0, 2.0, 3.0, 4.0])
    assert cohens_dz(d) == pytest.approx(2.5 / np.std(d, ddof=1))
    assert cohens_dz(np.array([1.0])) != cohens_dz(np.array([1.0]))  # NaN for one pair


def test_sign_flip_p_values_are_uniform_under_the_null() -> None:
    """Two samples from one distribution: the p-value must be roughly uniform."""
    rng = np.random.default_rng(11)
    ps = []
    for i in range(300):
        a, b = rng.normal(size=25), rng.normal(size=25)
        ps.append(sign_flip_test(a - b, permutations=1000, seed=i).p_value)
    ps = np.array(ps)
    assert sps.kstest(ps, "uniform").pvalue > 0.01
    deciles = np.histogram(ps, bins=10, range=(0, 1))[0]
    assert deciles.min() >= 12 and deciles.max() <= 50, deciles
    assert 0.02 <= np.mean(ps < 0.05) <= 0.09


def test_sign_flip_finds_a_planted_shift_and_is_reproducible() -> None:
    rng = np.random.default_rng(12)
    d = rng.normal(0.5, 1.0, size=60)
    t1 = sign_flip_test(d, permutations=5000, seed=3)
    t2 = sign_flip_test(d, permutations=5000, seed=3)
    assert t1.p_value < 0.01
    assert t1.p_value == t2.p_value
    assert t1.p_value >= 1 / 5001  # never 0
    assert t1.effect_size > 0.2


def test_paired_permutation_on_totals_matches_sign_flip_for_means() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=30)
    b = a + rng.normal(0.8, 0.5, size=30)
    xa = np.column_stack([a, np.ones(30)])
    xb = np.column_stack([b, np.ones(30)])
    obs, p = paired_permutation_totals(xa, xb, ratio, permutations=2000, seed=0)
    assert obs == pytest.approx(np.mean(b - a))
    assert p < 0.01
    _, p_null = paired_permutation_totals(xa, xa + rng.normal(0, 1e-9, xa.shape) * [1, 0], ratio, 500, 0)
    assert p_null > 0.2


def test_holm_known_values() -> None:
    adj = holm([0.01, 0.04, 0.03, None])
    # sorted: 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert adj[0] == pytest.approx(0.03)
    assert adj[2] == pytest.approx(0.06)
    assert adj[1] == pytest.approx(0.06)
    assert adj[3] is None
    assert holm([0.9, 0.8]) == [pytest.approx(1.0), pytest.approx(1.0)]


def test_gap_tests_are_uniform_under_the_null_and_find_a_planted_gap() -> None:
    from audit.stats.resampling import gap_test_between_units, gap_test_within_sets

    rng = np.random.default_rng(21)
    p_sets, p_units = [], []
    for i in range(150):
        set_effect = rng.normal(0, 1, size=(30, 1))
        p_sets.append(gap_test_within_sets(set_effect + rng.normal(0, 0.5, (30, 3)), 300, seed=i)[1])
        labels = np.arange(45) % 3
        p_units.append(gap_test_between_units(rng.normal(size=45), np.ones(45), labels, 3, 300, seed=i)[1])
    for ps in (np.array(p_sets), np.array(p_units)):
        assert sps.kstest(ps, "uniform").pvalue > 0.01
        assert np.mean(ps < 0.05) <= 0.12
    cells = rng.normal(0, 1, size=(30, 1)) + rng.normal(0, 0.5, (30, 3)) + [0.0, 0.0, 0.6]
    obs, p = gap_test_within_sets(cells, 500, seed=0)
    assert p < 0.01 and obs == pytest.approx(np.ptp(cells.mean(axis=0)))
    labels = np.arange(60) % 2
    _, p = gap_test_between_units(rng.normal(size=60) + 1.0 * labels, np.ones(60), labels, 2, 500, seed=0)
    assert p < 0.01


def test_gap_test_p_values_do_not_depend_on_the_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The permutations are drawn in chunks to bound memory; the p-value must be the same at any
    chunk size (the standard profile's summary.json did not change when the chunk shrank 20x)."""
    from audit.stats import resampling

    rng = np.random.default_rng(4)
    cells = rng.normal(0, 1, size=(40, 1)) + rng.normal(0, 0.5, (40, 4))
    cells[3, 1] = np.nan  # a set lacking a group
    labels = np.arange(90) % 3
    sums, counts = rng.normal(size=90) * 3, rng.integers(1, 4, size=90).astype(float)
    results = []
    for cells_per_chunk in (20_000_000, 1_000, 7):  # all at once, a few permutations, one at a time
        monkeypatch.setattr(resampling, "_PERM_CELLS", cells_per_chunk)
        results.append((resampling.gap_test_within_sets(cells, 999, seed=5),
                        resampling.gap_test_between_units(sums, counts, labels, 3, 999, seed=5)))
    assert 0.05 < results[0][0][1] < 0.95 and 0.05 < results[0][1][1] < 0.95  # p-values that count hits
    assert results[1] == results[0] and results[2] == results[0]


def test_no_interval_from_a_single_resampling_unit() -> None:
    bank = ColumnBank(3)
    sl = bank.add(np.array([[2.0, 4], [0, 0], [0, 0]]))  # only the first cluster holds data
    bank.run(200, seed=0)
    e = bank.estimate(sl, ratio)
    assert e.estimate == pytest.approx(0.5)
    assert np.isnan(e.ci_low) and np.isnan(e.ci_high)
    assert e.to_dict()["ci_high"] is None
