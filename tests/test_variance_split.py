"""The variance split of paired group differences (audit/stats/variance.py): sampling noise vs
set-to-set variation, and what common random numbers save, recovered from seeded data with known
parts."""

from __future__ import annotations

import numpy as np
import pytest

from audit.stats.variance import variance_split


def _cube(n_sets: int, k: int, sd_set_diff: float, sd_sample: float, rho: float, seed: int) -> np.ndarray:
    """Two groups: set effect (cancels), a per-set true difference, and sample noise whose sample s
    is correlated rho between the members (shared seeds)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 0.5, n_sets)[:, None]
    true_diff = rng.normal(0, sd_set_diff, n_sets)[:, None]
    z0 = rng.normal(size=(n_sets, k))
    z1 = rho * z0 + np.sqrt(1 - rho**2) * rng.normal(size=(n_sets, k))
    a = base + true_diff / 2 + sd_sample * z0
    b = base - true_diff / 2 + sd_sample * z1
    return np.stack([a, b], axis=1)


def test_the_parts_are_recovered() -> None:
    out = variance_split(_cube(4000, 3, sd_set_diff=0.2, sd_sample=0.3, rho=0.5, seed=1))
    assert out is not None and out["samples_per_prompt"] == 3
    # one-sample difference: 2 * 0.09 * (1 - 0.5) = 0.09, so the sampling part is 0.03; sets 0.04
    assert out["samples"] == pytest.approx(0.03, rel=0.1)
    assert out["sets"] == pytest.approx(0.04, rel=0.15)
    assert out["crn"]["diff_var"] == pytest.approx(0.09, rel=0.1)
    assert out["crn"]["independent_var"] == pytest.approx(0.18, rel=0.1)
    assert out["crn"]["reduction"] == pytest.approx(0.5, abs=0.05)
    assert out["if_samples_doubled"] == pytest.approx((0.04 + 0.015) / 0.07, abs=0.05)


def test_independent_seeds_show_no_reduction_and_pure_sampling_noise_says_so() -> None:
    out = variance_split(_cube(4000, 2, sd_set_diff=0.0, sd_sample=0.3, rho=0.0, seed=2))
    assert out is not None
    assert abs(out["crn"]["reduction"]) < 0.05
    assert out["samples_share"] > 0.9
    assert out["if_samples_doubled"] == pytest.approx(0.5, abs=0.06)


def test_no_split_without_two_samples_or_two_sets() -> None:
    assert variance_split(np.zeros((10, 2, 1))) is None
    assert variance_split(np.zeros((1, 2, 3))) is None


def test_summary_json_carries_the_split_of_each_paired_comparison(tmp_path) -> None:
    from audit.summary.build import build_summary
    from tests.synthetic_runs import counterfactual_records, suite_manifest, write_run

    recs = counterfactual_records("bias", n_pairs=60, samples=3, noise=0.2, seed=3)
    run = write_run(tmp_path / "r", {"bias": suite_manifest(samples=3)}, recs)
    (entry,) = [g for g in build_summary(run)["suites"]["bias"]["groups"] if g["score"] == "sentiment"]
    split = entry["variance_split"]
    # independent noise of SD 0.2 per record and no per-set difference: one-sample difference 0.08,
    # sampling part 0.08 / 3; no common random numbers in these records
    assert split["samples_per_prompt"] == 3
    assert split["samples"] == pytest.approx(0.08 / 3, rel=0.3)
    assert split["samples_share"] > 0.6
    assert abs(split["crn"]["reduction"]) < 0.3
    one = counterfactual_records("bias", n_pairs=20, samples=1, seed=3)
    run1 = write_run(tmp_path / "r1", {"bias": suite_manifest(samples=1)}, one)
    assert all("variance_split" not in g for g in build_summary(run1)["suites"]["bias"]["groups"])
