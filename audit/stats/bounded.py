"""Intervals for means and smooth figures that stay inside the figure's possible range.

Card.
- ``bounded_mean(sums, counts, low, high)``: the mean of a score declared to lie in [low, high]
  (sentiment -1..1, toxicity 0..1, expected maximum toxicity). The cluster-robust standard error
  of the ratio mean (as ``t_cluster_mean``) sets an effective size n_eff = p(1 − p) / se² for the
  mean rescaled to p in 0..1, and Wilson's score interval on n_eff with Student's t on clusters − 1
  degrees of freedom gives the bounds: inside the range by construction, asymmetric near a bound
  (where a skewed score makes the symmetric t interval under-cover). Far from the bounds it equals
  the t interval.
- ``delta_cluster_t(x, fn)``: any smooth function f of the cluster totals (the difference of a
  group's mean and the overall mean, the mean of group means): the standard error of its
  first-order expansion, se² = n/(n − 1) · Σ_i (∇f · (x_i − T/n))², and f ± t(n − 1) · se. For a
  ratio it is exactly the cluster-robust t interval. The gradient is numerical.
- ``icat_interval(ss, lms)``: StereoSet's ICAT = LMS · min(SS, 100 − SS) / 50 grows with LMS and
  with min(SS, 100 − SS), so the product of their (1 + level)/2 intervals (LMS: bounded mean; SS:
  Wilson) holds ICAT with at least the level (Bonferroni); conservative, inside 0..100.
- ``clip(lo, hi, low, high)``: an interval cut to the range, and whether it was cut.

Limits: both need 2 clusters (else no interval); a figure with no observed variance gets a
zero-width interval, which the summary flags as uninformative. Coverage: docs/statistics.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats as sps

from audit.stats.rates import wilson_cluster

BOUNDED_METHOD = "Wilson-type interval for a bounded mean (effective n = p(1 − p)/se², cluster-robust se, t on clusters − 1 df)"
ICAT_METHOD = "product of the 97.5% intervals of LMS (bounded mean) and min(SS, 100 − SS)/50 (Wilson), Bonferroni"
DELTA_METHOD = "linearized cluster t (delta method, cluster-robust se, t on clusters − 1 df)"

_NAN = {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "se": math.nan}


def _q(level: float, df: int) -> float:
    return float(sps.t.ppf(1 - (1 - level) / 2, max(df, 1)))


def bounded_mean(
    sums: np.ndarray, counts: np.ndarray, low: float, high: float, level: float = 0.95
) -> dict[str, Any]:
    """Mean sum(sums)/sum(counts) of a score in [low, high] with the range-respecting interval of
    the card; NaN bounds from fewer than 2 clusters."""
    s, m = np.asarray(sums, float), np.asarray(counts, float)
    keep = m > 0
    s, m = s[keep], m[keep]
    n, total = int(s.size), float(m.sum())
    if n == 0:
        return dict(_NAN)
    est = float(s.sum() / total)
    if n < 2:
        return {**_NAN, "estimate": est}
    se = math.sqrt(n / (n - 1) * float(np.sum((s - est * m) ** 2))) / total
    width = float(high - low)
    p = min(max((est - low) / width, 0.0), 1.0)
    if se == 0.0:
        return {"estimate": est, "ci_low": est, "ci_high": est, "se": 0.0}
    se_p = se / width
    n_eff = max(p * (1.0 - p), 1e-12) / (se_p * se_p)
    q = _q(level, n - 1)
    denom = 1.0 + q * q / n_eff
    centre = (p + q * q / (2.0 * n_eff)) / denom
    half = q * math.sqrt(p * (1.0 - p) / n_eff + q * q / (4.0 * n_eff * n_eff)) / denom
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    return {"estimate": est, "ci_low": low + width * lo, "ci_high": low + width * hi, "se": se}


def gradient(fn: Callable[[np.ndarray], np.ndarray], t: np.ndarray) -> np.ndarray:
    """Central-difference gradient of ``fn`` (vectorized over leading axes) at the totals ``t``."""
    t = np.asarray(t, float)
    h = 1e-6 * np.maximum(np.abs(t), 1.0)
    steps = np.diag(h)
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.asarray(fn(t[None, :] + steps), float)
        down = np.asarray(fn(t[None, :] - steps), float)
    return (up - down) / (2.0 * h)


def delta_cluster_t(x: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], level: float = 0.95) -> dict[str, Any]:
    """f(column totals of ``x``) (clusters x columns) with its linearized cluster t interval; NaN
    bounds from fewer than 2 contributing clusters or where f or its gradient is undefined."""
    x = np.asarray(x, float)
    if x.ndim == 1:
        x = x[:, None]
    x = x[np.any(x != 0, axis=1)]
    n = int(x.shape[0])
    if n == 0:
        return dict(_NAN)
    total = x.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = float(np.asarray(fn(total[None, :]), float)[0])
    if n < 2 or not math.isfinite(est):
        return {**_NAN, "estimate": est}
    g = gradient(fn, total)
    if not np.all(np.isfinite(g)):
        return {**_NAN, "estimate": est}
    u = (x - total / n) @ g
    se = math.sqrt(n / (n - 1) * float(np.sum(u * u)))
    half = _q(level, n - 1) * se
    return {"estimate": est, "ci_low": est - half, "ci_high": est + half, "se": se}


def clip(lo: float, hi: float, low: float | None, high: float | None) -> tuple[float, float, bool]:
    """(lo, hi) cut to [low, high] (None: unbounded on that side), and whether anything was cut."""
    cut_lo = low is not None and math.isfinite(lo) and lo < low
    cut_hi = high is not None and math.isfinite(hi) and hi > high
    return (low if cut_lo and low is not None else lo), (high if cut_hi and high is not None else hi), bool(cut_lo or cut_hi)


def icat_interval(ss: np.ndarray, lms: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """ICAT (0..100) bounds from per-cluster [SS successes, count] and [LMS sum in 0..1, count]."""
    half = 1 - (1 - level) / 2
    s = wilson_cluster(ss[:, 0], ss[:, 1], half)
    lm = bounded_mean(lms[:, 0], lms[:, 1], 0.0, 1.0, level=half)
    if not all(math.isfinite(v) for v in (s["ci_low"], s["ci_high"], lm["ci_low"], lm["ci_high"])):
        return math.nan, math.nan

    def g(p: float) -> float:
        return 2.0 * min(p, 1.0 - p)

    g_lo = min(g(s["ci_low"]), g(s["ci_high"]))
    g_hi = 1.0 if s["ci_low"] <= 0.5 <= s["ci_high"] else max(g(s["ci_low"]), g(s["ci_high"]))
    return 100.0 * lm["ci_low"] * g_lo, 100.0 * lm["ci_high"] * g_hi
