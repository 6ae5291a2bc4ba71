"""Paired two-run statistics on the clusters both runs hold.

Every delta has **one method at one level** for its interval and its p-value: the p-value is the
smallest alpha whose (1 − alpha) interval leaves 0 out, so "p < alpha" and "the CI excludes 0"
never disagree, and the verdict reads that interval (``decided_by`` names it). The level is
1 − ``compare.alpha`` (``audit.compare.report``).

- **0/1 outcomes** (refusal, factual, stereotype preferred, any 0/1 score): Newcombe's hybrid
  score interval on the paired difference p_B − p_A (1998, method 10): Wilson intervals of both
  proportions combined by "square and add" with the correlation of the two estimates. Clustered
  outcomes use Wilson on the effective sample size (records / design effect, between the number
  of clusters and the number of records) and the cluster-level correlation; with one outcome per
  cluster this is exactly method 10. It stays inside [−1, 1] and is never zero-width at 0/n or n/n.
  The exact McNemar test (one outcome per cluster) or its permutation equivalent is reported as
  ``exact_test``, a cross-check that decides nothing.
- **Continuous figures**: a paired cluster bootstrap (one weight vector resamples both runs, so
  prompt difficulty cancels): the percentile interval (inverted-CDF quantiles, so it matches its
  p-value exactly), the basic (reflected) interval for gaps, whose replicates are biased upward,
  and below ``FEW_CLUSTERS`` shared clusters a t interval on the bootstrap SE with its t p-value.
  The paired permutation test is the ``exact_test`` cross-check.
- **Uninformative figures** (a score constant in a run) get no interval (``estimate_on``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import t as t_dist

from audit.compare.figures import Figure
from audit.gates.evaluate import StatsSettings
from audit.stats.paired_binary import mcnemar_exact, wilson
from audit.stats.rates import wilson_cluster
from audit.stats.resampling import bootstrap_totals, clean_float, paired_permutation_totals, percentile_ci

FEW_CLUSTERS = 10  # below this many shared clusters, continuous deltas get a t interval and a warning






def effective_n(s: np.ndarray, n: np.ndarray) -> float:
    """Records divided by the design effect of the cluster ratio estimator, kept between the number
    of clusters and the number of records; the number of clusters when the variance is 0."""
    total, m = float(n.sum()), int(np.count_nonzero(n))
    if total <= 0:
        return 0.0
    if np.all(n[n > 0] == 1):
        return total
    p = float(s.sum()) / total
    var_srs = p * (1 - p) / total
    if var_srs <= 0 or m < 2:
        return float(m)
    e = s - p * n
    var_cl = m / (m - 1) * float(np.sum(e * e)) / total**2
    deff = min(max(var_cl / var_srs, 1.0), total / m)
    return total / deff


def _correlation(sa: np.ndarray, na: np.ndarray, sb: np.ndarray, nb: np.ndarray) -> float:
    """Correlation of the two runs' proportion estimates over clusters (phi for one outcome each)."""
    pa = sa.sum() / na.sum()
    pb = sb.sum() / nb.sum()
    ea, eb = sa - pa * na, sb - pb * nb
    den = math.sqrt(float(np.sum(ea * ea)) * float(np.sum(eb * eb)))
    return float(np.sum(ea * eb)) / den if den > 0 else 0.0


def newcombe_diff(
    sa: np.ndarray, na: np.ndarray, sb: np.ndarray, nb: np.ndarray, level: float
) -> tuple[float, float, float]:
    """(p_B − p_A, low, high): Newcombe's method-10 interval, cluster-adjusted (module docstring)."""
    pa, pb = float(sa.sum() / na.sum()), float(sb.sum() / nb.sum())
    la, ua = wilson(pa, effective_n(sa, na), level)
    lb, ub = wilson(pb, effective_n(sb, nb), level)
    r = _correlation(sa, na, sb, nb)
    d = pb - pa
    lo = d - math.sqrt(max((pb - lb) ** 2 + (ua - pa) ** 2 - 2 * r * (pb - lb) * (ua - pa), 0.0))
    hi = d + math.sqrt(max((ub - pb) ** 2 + (pa - la) ** 2 - 2 * r * (ub - pb) * (pa - la), 0.0))
    return d, max(-1.0, lo), min(1.0, hi)


def few_clusters_warning(n: int, permutations: int) -> str | None:
    """A warning for comparisons on fewer than ``FEW_CLUSTERS`` shared clusters."""
    if n >= FEW_CLUSTERS or n == 0:
        return None
    floor = max(2.0 / 2**n, 1.0 / (permutations + 1))
    return (f"only {n} shared clusters: the interval is a t interval on the bootstrap SE and assumes "
            f"roughly normal per-cluster differences (the permutation cross-check cannot go below p ≈ {floor:.3g})")


def figure_badness(fig: Figure) -> Any:
    """A function of the totals that grows when the figure gets worse (None: no direction)."""
    fn, ideal = fig.fn, fig.ideal
    if ideal is not None and fig.higher_is == "neutral":
        return lambda t: np.abs(fn(t) - ideal)
    if fig.higher_is == "worse":
        return fn
    if fig.higher_is == "better":
        return lambda t: -fn(t)
    return None


def estimate_on(fig: Figure, x: np.ndarray, stats: StatsSettings, seed: int) -> dict[str, Any]:
    """One run's figure on the given cluster rows: estimate and CI (Wilson with the effective
    sample size for 0/1 figures, the summary's monotone cluster Wilson, so 0/n is never [0, 0];
    percentile bootstrap otherwise)."""
    est = float(fig.fn(x.sum(0))) if len(x) else math.nan
    if fig.uninformative:  # a constant score: no interval, never a rate-style [0, 0.3] for a mean
        lo = hi = math.nan
        method = "uninformative: the score is constant in this run (no interval)"
    elif fig.binary is not None and len(x):
        b = fig.binary
        s, n = x[:, b.num] / b.scale, x[:, b.den]
        rate = wilson_cluster(s, n, stats.ci_level)  # the summary's monotone cluster Wilson (audit/stats/rates.py)
        lo, hi, method = rate["ci_low"] * b.scale, rate["ci_high"] * b.scale, "Wilson (cluster-adjusted, monotone)"
    elif len(x) >= 2:
        lo, hi = percentile_ci(fig.fn(bootstrap_totals(x, stats.resamples, seed)), stats.ci_level)
        method = f"cluster bootstrap ({stats.resamples}, percentile)"
    else:
        lo = hi = math.nan
        method = "no interval (fewer than 2 clusters)"
    return {"estimate": _tidy(est), "ci_low": _tidy(lo), "ci_high": _tidy(hi), "n": len(x), "method": method}


def _tidy(v: float) -> float | None:
    """JSON float with rounding noise (a bootstrap bound of 5.6e-17 for an all-zero score) set to 0."""
    return clean_float(0.0 if math.isfinite(v) and abs(v) < 1e-12 else v)


def _binary_parts(fig: Figure, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    b = fig.binary
    assert b is not None
    return x[:, b.num] / b.scale, x[:, b.den]


def pct_interval(reps: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates with the inverted-CDF quantile, so that it
    excludes 0 exactly when ``pct_p`` is below 1 - level (NaN replicates ignored)."""
    r = np.asarray(reps, float)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return math.nan, math.nan
    a = (1 - level) / 2
    lo, hi = np.quantile(r, [a, 1 - a], method="inverted_cdf")
    return float(lo), float(hi)


def pct_p(reps: np.ndarray, at: float = 0.0) -> float:
    """Two-sided p-value of "the figure is ``at``" read off the same replicates as ``pct_interval``:
    the smallest 1 - level whose interval leaves ``at`` out, 2 min(P(r <= at), P(r >= at))."""
    r = np.asarray(reps, float)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return math.nan
    return float(min(1.0, 2 * min(np.mean(r <= at), np.mean(r >= at))))


def newcombe_p(sa: np.ndarray, na: np.ndarray, sb: np.ndarray, nb: np.ndarray) -> float:
    """The p-value that agrees with ``newcombe_diff``: the smallest alpha whose (1 - alpha) interval
    leaves 0 out (bisection; the intervals are nested in the level)."""

    def excludes(alpha: float) -> bool:
        _, lo, hi = newcombe_diff(sa, na, sb, nb, 1 - alpha)
        return lo > 0 or hi < 0

    lo_a, hi_a = 1e-12, 1 - 1e-9
    if excludes(lo_a):
        return lo_a
    if not excludes(hi_a):
        return 1.0
    for _ in range(60):
        mid = math.sqrt(lo_a * hi_a) if hi_a < 0.5 else (lo_a + hi_a) / 2
        lo_a, hi_a = (lo_a, mid) if excludes(mid) else (mid, hi_a)
    return hi_a


def _t_from_reps(est: float, reps: np.ndarray, n: int, level: float) -> tuple[float, float, float]:
    """(low, high, p) of est ± t(n−1) × bootstrap SE (corrected by sqrt(n / (n − 1))), one method."""
    r = reps[np.isfinite(reps)]
    if n < 2 or r.size < 2:
        return math.nan, math.nan, math.nan
    se = float(r.std(ddof=1)) * math.sqrt(n / (n - 1))
    half = float(t_dist.ppf(0.5 + level / 2, n - 1)) * se
    p = 1.0 if se <= 0 else float(min(1.0, 2 * t_dist.sf(abs(est) / se, n - 1)))
    return est - half, est + half, p


def _boot_interval(est: float, reps: np.ndarray, n: int, level: float, reflect: bool) -> tuple[float, float, float, str]:
    """Interval and agreeing p from paired replicates: t on a handful of clusters, the basic
    (reflected) interval for gaps, the percentile interval otherwise."""
    if n < FEW_CLUSTERS:
        lo, hi, p = _t_from_reps(est, reps, n, level)
        return lo, hi, p, f"t on {n} clusters (bootstrap SE)"
    lo, hi = pct_interval(reps, level)
    if reflect and math.isfinite(lo):
        return 2 * est - hi, 2 * est - lo, pct_p(reps, 2 * est), "basic"
    return lo, hi, pct_p(reps), "percentile"


def paired(
    fa: Figure, fb: Figure, keys: list[str], stats: StatsSettings, seed: int
) -> dict[str, Any]:
    """Compare one figure of run A and run B on the shared clusters ``keys`` (non-empty).

    Returns a (B − A) result: ``a``, ``b`` (both on ``keys``), ``delta``, ``ci_low``, ``ci_high`` and
    ``p_value`` from **one method at one level** (``test``: the interval's method; the p-value is
    the smallest alpha whose interval leaves 0 out, so p < 1 − level exactly when the CI excludes 0),
    ``method``, ``worsening`` (how much worse B is, in the figure's units, > 0 is worse) with its CI
    and ``p_worse`` (the same for the worsening: what the verdict reads), ``decided_by``,
    ``discordant`` for paired 0/1 outcomes, and ``exact_test`` (exact McNemar or the paired
    permutation test of delta = 0: a cross-check that decides nothing).
    """
    xa, xb = fa.rows(keys), fb.rows(keys)
    n = len(keys)
    level = stats.ci_level
    a_est, b_est = float(fa.fn(xa.sum(0))), float(fb.fn(xb.sum(0)))
    delta = b_est - a_est
    bad = figure_badness(fb)
    out: dict[str, Any] = {"a": a_est, "b": b_est, "n_shared": n, "discordant": None}
    same_trials = fa.binary is not None and fb.binary is not None
    if same_trials:
        sa, na = _binary_parts(fa, xa)
        sb, nb = _binary_parts(fb, xb)
        same_trials = bool(np.array_equal(na, nb)) and float(na.sum()) > 0
    k = xa.shape[1]
    reps = None
    if same_trials:
        scale = fa.binary.scale  # type: ignore[union-attr]
        _, lo, hi = newcombe_diff(sa, na, sb, nb, level)
        lo, hi, p = lo * scale, hi * scale, newcombe_p(sa, na, sb, nb)
        one = bool(np.all(na == 1))
        out["test"] = "Newcombe hybrid score interval" + ("" if one else " (cluster-adjusted)")
        if one:
            n10 = int(np.sum((sa == 1) & (sb == 0)))
            n01 = int(np.sum((sa == 0) & (sb == 1)))
            out["discordant"] = {"a_only": n10, "b_only": n01}
            out["exact_test"] = {"test": "mcnemar-exact", "p_value": mcnemar_exact(n10, n01)}
            detail = f"{n} paired outcomes ({n10} A-only, {n01} B-only)"
        else:
            _, p_perm = paired_permutation_totals(xa, xb, fb.fn, stats.permutations, seed + 1)
            out["exact_test"] = {"test": "permutation", "p_value": p_perm}
            detail = f"{n} clusters"
        out["method"] = f"{out['test']} on {detail}; p from the same interval"
    else:
        reps = bootstrap_totals(np.hstack([xa, xb]), stats.resamples, seed)
        d_reps = fb.fn(reps[:, k:]) - fa.fn(reps[:, :k])
        lo, hi, p, kind = _boot_interval(delta, d_reps, n, level, fb.kind == "gap")
        out["test"] = f"paired cluster bootstrap ({stats.resamples}, {kind})"
        _, p_perm = paired_permutation_totals(xa, xb, fb.fn, stats.permutations, seed + 1)
        out["exact_test"] = {"test": "permutation", "p_value": p_perm}
        out["method"] = f"{out['test']} over {n} clusters; p from the same replicates"
    out.update(delta=delta, ci_low=lo, ci_high=hi, p_value=p)
    # how much worse B is, with the interval and p-value the verdict reads (one method, one level)
    if bad is None:
        w, w_lo, w_hi, p_w = math.nan, math.nan, math.nan, p
    elif fb.higher_is in ("worse", "better"):
        sign = 1.0 if fb.higher_is == "worse" else -1.0
        w, p_w = sign * delta, p
        w_lo, w_hi = sorted((sign * lo, sign * hi))
    else:  # distance from an ideal (pct_stereotype: 50): its own paired bootstrap
        if reps is None:
            reps = bootstrap_totals(np.hstack([xa, xb]), stats.resamples, seed)
        w = float(bad(xb.sum(0)) - bad(xa.sum(0)))
        w_lo, w_hi, p_w, kind = _boot_interval(w, bad(reps[:, k:]) - bad(reps[:, :k]), n, level, False)
        out["worsening_test"] = f"paired cluster bootstrap ({stats.resamples}, {kind})"
    out["decided_by"] = (
        f"the {100 * level:.4g}% CI of {'the worsening' if bad is not None else 'the delta'} "
        f"({out.get('worsening_test') or out['test']}): it excludes 0 exactly when p < {1 - level:.4g}"
    )
    out.update(worsening=w, worsening_ci_low=w_lo, worsening_ci_high=w_hi, p_worse=p_w)
    for key in ("a", "b", "delta", "ci_low", "ci_high", "p_value", "worsening", "worsening_ci_low",
                "worsening_ci_high", "p_worse"):
        out[key] = _tidy(out[key])
    return out


def unpaired(fa: Figure, fb: Figure, stats: StatsSettings, seed: int) -> dict[str, Any]:
    """No shared clusters: each run on its own items, independent bootstraps; interval and p-value
    from the same replicates (none from fewer than ``FEW_CLUSTERS`` clusters)."""
    ra = bootstrap_totals(fa.columns, stats.resamples, seed)
    rb = bootstrap_totals(fb.columns, stats.resamples, seed + 1)
    a_est, b_est = float(fa.fn(fa.columns.sum(0))), float(fb.fn(fb.columns.sum(0)))
    d_reps = fb.fn(rb) - fa.fn(ra)
    lo, hi = pct_interval(d_reps, stats.ci_level)
    p: float | None = pct_p(d_reps)
    few = min(len(fa.present()), len(fb.present())) < FEW_CLUSTERS
    if few:  # an unpaired bootstrap of a few clusters (one: a zero-width point) is no interval
        lo = hi = math.nan
        p = None
    bad = figure_badness(fb)
    p_w = p
    if bad is not None:
        w = float(bad(fb.columns.sum(0)) - bad(fa.columns.sum(0)))
        w_reps = bad(rb) - bad(ra)
        w_lo, w_hi = (math.nan, math.nan) if few else pct_interval(w_reps, stats.ci_level)
        p_w = None if few else pct_p(w_reps)
    else:
        w = w_lo = w_hi = math.nan
    test = f"independent bootstraps ({stats.resamples}, percentile)"
    return {
        "a": clean_float(a_est), "b": clean_float(b_est), "n_shared": 0, "discordant": None,
        "delta": clean_float(b_est - a_est), "ci_low": clean_float(lo), "ci_high": clean_float(hi),
        "p_value": clean_float(p) if p is not None else None, "p_worse": clean_float(p_w) if p_w is not None else None,
        "test": None if few else test,
        "method": f"unpaired (no shared prompts): {test}; p from the same replicates",
        "decided_by": f"the {100 * stats.ci_level:.4g}% CI of independent bootstraps" if not few else "nothing (too few clusters)",
        "worsening": clean_float(w), "worsening_ci_low": clean_float(w_lo), "worsening_ci_high": clean_float(w_hi),
    }


def verdict(res: dict[str, Any], bad_known: bool, alpha: float) -> str:
    """better / worse / no significant change (or changed, for figures with no direction), read
    off the interval that ``decided_by`` names (its p-value agrees); ``alpha`` is kept for callers:
    the interval's level is 1 - alpha."""
    del alpha
    lo, hi = (res.get("worsening_ci_low"), res.get("worsening_ci_high")) if bad_known else (
        res.get("ci_low"), res.get("ci_high"))
    significant = lo is not None and hi is not None and (lo > 0 or hi < 0)
    if not bad_known:
        return "changed" if significant else "no significant change"
    w = res.get("worsening")
    if not significant or w is None or w == 0:
        return "no significant change"
    return "worse" if w > 0 else "better"
