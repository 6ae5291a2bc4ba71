"""Paired 0/1 outcomes (the same prompt plain and attacked): exact McNemar test and Newcombe's
interval on the difference of the two rates.

Card. ``paired_binary(a, b, clusters, level)`` takes one (a, b) outcome pair per element (a: plain,
b: attacked; True = the event, e.g. complied) and the cluster of each pair (the prompt):

- **Test.** Exact McNemar: two-sided binomial test of the discordant counts (a only, b only)
  at p = 1/2 (McNemar 1947; exact form as in Fagerland, Lydersen & Laake 2013).
- **Interval** on p_b − p_a: Newcombe's hybrid score interval (1998, method 10): the Wilson
  intervals of both margins combined by "square and add" with the phi correlation of the pairs.
  With several pairs per cluster (several samples or seeded variants of one prompt) each margin's
  Wilson interval uses the effective size records / design effect (``audit.stats.rates.design_effect``);
  with one pair per cluster this is exactly method 10.

Range: the difference −1..1 (its interval is clipped there, never zero-width at 0/n or n/n).
Limits: with several pairs per cluster the pairs are not independent, and the exact test treats
them as if they were; the result says so (``clustered``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import binom, norm

from audit.stats.rates import design_effect


def mcnemar_exact(n10: int, n01: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts."""
    n = n10 + n01
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(n10, n01), n, 0.5)))


def wilson(p: float, n: float, level: float) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` on (effective) sample size ``n`` (NaN without one)."""
    if n <= 0 or not math.isfinite(p):
        return (math.nan, math.nan)
    z = float(norm.ppf(0.5 + level / 2))
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def _effective_n(x: np.ndarray, clusters: np.ndarray) -> float:
    _, inv = np.unique(clusters, return_inverse=True)
    sums = np.bincount(inv, weights=x.astype(float))
    counts = np.bincount(inv).astype(float)
    return float(x.size) / (design_effect(sums, counts) or 1.0)


def paired_binary(a: np.ndarray, b: np.ndarray, clusters: np.ndarray | None = None,
                  level: float = 0.95) -> dict[str, Any] | None:
    """McNemar and Newcombe's interval for paired outcomes ``a`` (before) and ``b`` (after); None
    without pairs. ``delta`` = mean(b) − mean(a)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    n = int(a.size)
    if n == 0:
        return None
    cl = np.arange(n) if clusters is None else np.asarray(clusters)
    n10, n01 = int(np.sum(b & ~a)), int(np.sum(a & ~b))
    pa, pb = float(a.mean()), float(b.mean())
    la, ua = wilson(pa, _effective_n(a, cl), level)
    lb, ub = wilson(pb, _effective_n(b, cl), level)
    both, neither = int(np.sum(a & b)), int(np.sum(~a & ~b))
    den = math.sqrt((both + n01) * (n10 + neither) * (both + n10) * (n01 + neither))
    phi = (both * neither - n10 * n01) / den if den else 0.0
    d = pb - pa
    lo = d - math.sqrt(max((pb - lb) ** 2 + (ua - pa) ** 2 - 2 * phi * (pb - lb) * (ua - pa), 0.0))
    hi = d + math.sqrt(max((ub - pb) ** 2 + (pa - la) ** 2 - 2 * phi * (ub - pb) * (pa - la), 0.0))
    n_clusters = int(np.unique(cl).size)
    return {"n_pairs": n, "n_clusters": n_clusters, "before": pa, "after": pb, "delta": d,
            "ci_low": max(-1.0, lo), "ci_high": min(1.0, hi), "ci_level": level,
            "p_value": mcnemar_exact(n10, n01), "test": "mcnemar-exact",
            "discordant": {"after_only": n10, "before_only": n01}, "clustered": n > n_clusters}
