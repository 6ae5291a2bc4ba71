"""Coverage of the 95% intervals lm-audit reports, by method and number of clusters.

Simulates clustered data with known truth and counts how often each interval covers it:
- group mean: set effect SD 0.3 + record noise SD 0.2, k=3 samples per prompt; truth 0;
- rate: prompts' true rates Beta(1, 19) (mean 0.05), k=4 samples per prompt; truth 0.05;
- gap, 3 groups in counterfactual sets (set effect SD 0.3, cell noise SD 0.14): truth 0 (no bias)
  and 0.15 (groups at 0, 0.05, 0.15).
Methods: the percentile cluster bootstrap (what lm-audit used before), the cluster t interval,
the cluster-adjusted Wilson interval, and the pairwise-t gap interval (audit/stats/intervals.py).

    .venv/bin/python bench/bench_coverage.py [--reps 400] [--markdown]

Prints a markdown table (docs/statistics.md quotes it). Seeded: the same output every time.
"""

from __future__ import annotations

import argparse

import numpy as np

from audit.stats.intervals import pairwise_gap, t_cluster_mean, wilson_cluster

NS = (3, 10, 30, 100)
B = 500


def _pct_ratio(s: np.ndarray, m: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    idx = rng.integers(0, s.size, (B, s.size))
    r = s[idx].sum(1) / m[idx].sum(1)
    lo, hi = np.quantile(r, [0.025, 0.975])
    return float(lo), float(hi)


def _pct_gap(cells: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    idx = rng.integers(0, cells.shape[0], (B, cells.shape[0]))
    means = cells[idx].mean(axis=1)
    g = means.max(1) - means.min(1)
    lo, hi = np.quantile(g, [0.025, 0.975])
    return float(lo), float(hi)


def coverage(reps: int) -> list[tuple[str, str, int, float]]:
    rows: list[tuple[str, str, int, float]] = []
    for n in NS:
        rng = np.random.default_rng(n)
        hit = {k: 0 for k in ("mean-pct", "mean-t", "rate-pct", "rate-wilson", "gap0-pct", "gap0-new", "gap15-pct", "gap15-new")}
        for _ in range(reps):
            y = rng.normal(0, 0.3, (n, 1)) + rng.normal(0, 0.2, (n, 3))
            s, m = y.sum(1), np.full(n, 3.0)
            lo, hi = _pct_ratio(s, m, rng)
            hit["mean-pct"] += lo <= 0 <= hi
            r = t_cluster_mean(s, m)
            hit["mean-t"] += r["ci_low"] <= 0 <= r["ci_high"]
            succ = rng.binomial(4, rng.beta(1, 19, n)).astype(float)
            lo, hi = _pct_ratio(succ, np.full(n, 4.0), rng)
            hit["rate-pct"] += lo <= 0.05 <= hi
            w = wilson_cluster(succ, np.full(n, 4.0))
            hit["rate-wilson"] += w["ci_low"] <= 0.05 <= w["ci_high"]
            for truth, shift in ((0.0, (0, 0, 0)), (0.15, (0, 0.05, 0.15))):
                cells = rng.normal(0, 0.3, (n, 1)) + rng.normal(0, 0.14, (n, 3)) + np.asarray(shift)
                tag = "gap0" if truth == 0 else "gap15"
                lo, hi = _pct_gap(cells, rng)
                hit[f"{tag}-pct"] += lo <= truth <= hi
                g = pairwise_gap(["a", "b", "c"], cells=cells)
                hit[f"{tag}-new"] += g["ci_low"] <= truth <= g["ci_high"]
        names = {
            "mean-pct": ("group mean", "percentile bootstrap (old)"),
            "mean-t": ("group mean", "cluster t (new)"),
            "rate-pct": ("rate p=0.05", "percentile bootstrap (old)"),
            "rate-wilson": ("rate p=0.05", "Wilson, cluster-adjusted (new)"),
            "gap0-pct": ("gap, true 0", "percentile max-min (old)"),
            "gap0-new": ("gap, true 0", "pairwise t (new)"),
            "gap15-pct": ("gap, true 0.15", "percentile max-min (old)"),
            "gap15-new": ("gap, true 0.15", "pairwise t (new)"),
        }
        for k, v in hit.items():
            rows.append((*names[k], n, v / reps))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=400)
    args = ap.parse_args()
    rows = coverage(args.reps)
    figures = list(dict.fromkeys((f, m) for f, m, _, _ in rows))
    print("| figure | method | nominal | " + " | ".join(f"n={n}" for n in NS) + " |")
    print("|---|---|---|" + "---|" * len(NS))
    for f, m in figures:
        cells = [f"{c:.0%}" for ff, mm, _, c in rows if (ff, mm) == (f, m)]
        print(f"| {f} | {m} | 95% | " + " | ".join(cells) + " |")
    print(f"\n{args.reps} simulated datasets per cell; clusters = prompts (mean, rate) or counterfactual sets (gap).")


if __name__ == "__main__":
    main()
