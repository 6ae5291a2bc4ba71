"""Coverage of the 95% intervals lm-audit reports, by method and number of clusters.

Simulates clustered data with known truth and counts how often each interval covers it, for every
interval method the summary uses (docs/statistics.md quotes the table):

- rate (Wilson, cluster-adjusted, monotone; audit/stats/rates.py): prompts' true rates drawn from a
  beta distribution with mean p and intra-cluster correlation ICC, k records per prompt; p in
  {0, 0.01, 0.05, 0.5}, k in {1, 5, 25}, ICC in {0, 0.3, 0.6};
- group mean: set effect SD 0.3 + record noise SD 0.2 (cut to -1..1), k=3 samples per prompt;
- mean of a score with a declared range (the bounded-mean Wilson interval; the cluster t interval
  for reference): the group mean above on a -1..1 score, and a skewed 0..1 score (expected maximum
  toxicity, mean toxicity) with per-prompt values Beta(0.3, 3);
- gap, 3 groups in counterfactual sets (pairwise t): truth 0 and 0.15 (groups at 0, 0.05, 0.15);
- vs_overall and mean_of_groups (linearized cluster t): the same sets, the group at 0.15 against
  the overall mean, and the unweighted mean of the group means;
- ICAT (the product of the 97.5% intervals of LMS and SS, Bonferroni): items with SS ~
  Bernoulli(0.6), each LMS comparison won w.p. 0.9 (truth 72);
- balanced_error (MOVER of two Wilson intervals): safe prompts refused w.p. 0.1, unsafe complied
  with w.p. 0.3 (and 0.02 / 0.05: rare);
- BBQ bias_ambig (MOVER difference of two shares of one multinomial): biased 0.2, anti-biased 0.1,
  UNKNOWN 0.7 (and 0.02 / 0.01 / 0.97: rare);
- the percentile cluster bootstrap the summary used before, on the group mean and a rate, for reference.

    .venv/bin/python bench/bench_coverage.py [--reps 400]

Prints a markdown table. Seeded: the same output every time.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator

import numpy as np

from audit.stats.bounded import bounded_mean, delta_cluster_t, icat_interval
from audit.stats.intervals import pairwise_gap, t_cluster_mean
from audit.stats.rates import mover_diff, mover_mean, multinomial_corr, wilson_cluster

NS = (3, 10, 30, 100)
B = 500
Sim = Callable[[int, np.random.Generator], bool]


def _pct(s: np.ndarray, m: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    idx = rng.integers(0, s.size, (B, s.size))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = s[idx].sum(1) / m[idx].sum(1)
    lo, hi = np.quantile(r, [0.025, 0.975])
    return float(lo), float(hi)


def _rates(p: float, k: int, icc: float, n: int, rng: np.random.Generator) -> np.ndarray:
    if icc > 0 and 0 < p < 1:
        a, b = p * (1 - icc) / icc, (1 - p) * (1 - icc) / icc
        return rng.binomial(k, rng.beta(a, b, n)).astype(float)
    return rng.binomial(k, p, n).astype(float)


def rate_sim(p: float, k: int, icc: float, old: bool = False) -> Sim:
    def sim(n: int, rng: np.random.Generator) -> bool:
        s, m = _rates(p, k, icc, n, rng), np.full(n, float(k))
        lo, hi = _pct(s, m, rng) if old else (lambda r: (r["ci_low"], r["ci_high"]))(wilson_cluster(s, m))
        return lo <= p <= hi

    return sim


def _sets(n: int, rng: np.random.Generator, shift: tuple[float, ...]) -> np.ndarray:
    return rng.normal(0, 0.3, (n, 1)) + rng.normal(0, 0.14, (n, len(shift))) + np.asarray(shift)


def mean_sim(method: str) -> Sim:
    def sim(n: int, rng: np.random.Generator) -> bool:
        y = np.clip(rng.normal(0, 0.3, (n, 1)) + rng.normal(0, 0.2, (n, 3)), -1, 1)
        s, m = y.sum(1), np.full(n, 3.0)
        if method == "old":
            lo, hi = _pct(s, m, rng)
        else:
            r = bounded_mean(s, m, -1.0, 1.0) if method == "bounded" else t_cluster_mean(s, m)
            lo, hi = r["ci_low"], r["ci_high"]
        return lo <= 0 <= hi

    return sim


def skewed_sim(bounded: bool) -> Sim:
    def sim(n: int, rng: np.random.Generator) -> bool:
        y = rng.beta(0.3, 3.0, n)
        r = bounded_mean(y, np.ones(n), 0.0, 1.0) if bounded else t_cluster_mean(y, np.ones(n))
        return r["ci_low"] <= 0.3 / 3.3 <= r["ci_high"]

    return sim


def gap_sim(truth: float) -> Sim:
    shift = (0.0, 0.0, 0.0) if truth == 0 else (0.0, 0.05, 0.15)

    def sim(n: int, rng: np.random.Generator) -> bool:
        g = pairwise_gap(["a", "b", "c"], cells=_sets(n, rng, shift))
        return g["ci_low"] <= truth <= g["ci_high"]

    return sim


def _cell_columns(cells: np.ndarray) -> np.ndarray:
    """[sum, count] per group and overall, per set (one record per cell)."""
    cols = [np.column_stack([cells[:, g], np.ones(len(cells))]) for g in range(cells.shape[1])]
    return np.hstack([*cols, np.column_stack([cells.sum(1), np.full(len(cells), float(cells.shape[1]))])])


def _means(t: np.ndarray, k: int) -> np.ndarray:
    return np.stack([t[..., 2 * g] / t[..., 2 * g + 1] for g in range(k)], axis=-1)


def vs_overall_sim(n: int, rng: np.random.Generator) -> bool:
    shift = (0.0, 0.05, 0.15)
    x = _cell_columns(_sets(n, rng, shift))
    r = delta_cluster_t(x, lambda t: t[..., 4] / t[..., 5] - t[..., 6] / t[..., 7])
    return r["ci_low"] <= 0.15 - np.mean(shift) <= r["ci_high"]


def mean_of_groups_sim(n: int, rng: np.random.Generator) -> bool:
    shift = (0.0, 0.05, 0.15)
    x = _cell_columns(_sets(n, rng, shift))[:, :6]
    r = delta_cluster_t(x, lambda t: _means(t, 3).mean(axis=-1))
    return r["ci_low"] <= np.mean(shift) <= r["ci_high"]


def icat_sim(n: int, rng: np.random.Generator) -> bool:
    ss = (rng.random(n) < 0.6).astype(float)
    lms = ((rng.random(n) < 0.9).astype(float) + (rng.random(n) < 0.9)) * 0.5
    lo, hi = icat_interval(np.column_stack([ss, np.ones(n)]), np.column_stack([lms, np.ones(n)]))
    return lo <= 72.0 <= hi


def balanced_sim(p_safe: float, p_unsafe: float) -> Sim:
    def sim(n: int, rng: np.random.Generator) -> bool:
        a = wilson_cluster(rng.binomial(1, p_safe, n).astype(float), np.ones(n))
        b = wilson_cluster(rng.binomial(1, p_unsafe, n).astype(float), np.ones(n))
        lo, hi = mover_mean(a, b)
        return lo <= (p_safe + p_unsafe) / 2 <= hi

    return sim


def bias_ambig_sim(p_b: float, p_a: float) -> Sim:
    def sim(n: int, rng: np.random.Generator) -> bool:
        draw = rng.multinomial(1, [p_b, p_a, 1 - p_b - p_a], n)
        a = wilson_cluster(draw[:, 0].astype(float), np.ones(n))
        b = wilson_cluster(draw[:, 1].astype(float), np.ones(n))
        lo, hi = mover_diff(a, b, multinomial_corr(a["estimate"], b["estimate"]))
        return max(-1.0, lo) <= p_b - p_a <= min(1.0, hi)

    return sim


def settings() -> Iterator[tuple[str, str, Sim]]:
    wilson = "Wilson, cluster-adjusted, monotone"
    for p in (0.0, 0.01, 0.05, 0.5):
        for k in (1, 5, 25):
            for icc in (0.0,) if k == 1 else (0.0, 0.3, 0.6):
                yield f"rate p={p:g}, k={k}, ICC={icc:g}", wilson, rate_sim(p, k, icc)
    yield "rate p=0.05, k=5, ICC=0.3", "percentile bootstrap (old)", rate_sim(0.05, 5, 0.3, old=True)
    yield "group mean, -1..1 score", "bounded-mean Wilson", mean_sim("bounded")
    yield "group mean, -1..1 score", "cluster t (no range)", mean_sim("t")
    yield "group mean, -1..1 score", "percentile bootstrap (old)", mean_sim("old")
    yield "mean of a skewed 0..1 score (EMT)", "bounded-mean Wilson", skewed_sim(True)
    yield "mean of a skewed 0..1 score (EMT)", "cluster t (no range)", skewed_sim(False)
    yield "gap, true 0", "pairwise t", gap_sim(0.0)
    yield "gap, true 0.15", "pairwise t", gap_sim(0.15)
    yield "vs_overall", "linearized cluster t", vs_overall_sim
    yield "mean_of_groups", "linearized cluster t", mean_of_groups_sim
    yield "stereoset.icat", "product of 97.5% LMS and SS intervals", icat_sim
    yield "balanced_error 0.1/0.3", "MOVER of two Wilson", balanced_sim(0.1, 0.3)
    yield "balanced_error 0.02/0.05", "MOVER of two Wilson", balanced_sim(0.02, 0.05)
    yield "bbq bias_ambig 0.2/0.1", "MOVER difference (multinomial)", bias_ambig_sim(0.2, 0.1)
    yield "bbq bias_ambig 0.02/0.01", "MOVER difference (multinomial)", bias_ambig_sim(0.02, 0.01)


def coverage(sim: Sim, n: int, reps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    return sum(bool(sim(n, rng)) for _ in range(reps)) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=400)
    args = ap.parse_args()
    print("| figure | method | nominal | " + " | ".join(f"n={n}" for n in NS) + " |")
    print("|---|---|---|" + "---|" * len(NS))
    for i, (figure, method, sim) in enumerate(settings()):
        cells = [f"{coverage(sim, n, args.reps, 1000 * i + n):.0%}" for n in NS]
        print(f"| {figure} | {method} | 95% | " + " | ".join(cells) + " |", flush=True)
    print(f"\n{args.reps} simulated datasets per cell; n = clusters (prompts, items or counterfactual sets).")


if __name__ == "__main__":
    main()
