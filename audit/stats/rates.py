"""Rate intervals that are monotone in the data and hold their level on clustered rare events.

Card. ``wilson_cluster(sums, counts)`` gives the share sum(sums)/sum(counts) of 0/1 outcomes
observed in clusters (the samples of one prompt, or the members of one counterfactual set), with
a Wilson-type interval:

- **Effective size.** Wilson's score interval on n_eff = records / design effect, the design
  effect 1 + (m_w − 1)·ρ from the records per cluster (m_w = Σm²/Σm) and an intra-cluster
  correlation ρ that is the observed one (moment estimate) shrunk towards a prior ρ = 0.6 worth
  ``PRIOR_EVENTS`` events, counting min(successes, failures) as the data's events. So the design
  effect does not collapse between 0 and 1 event, and a handful of events cannot claim that the
  clusters are independent. With clusters of more than one record the quantile is Student's t on
  clusters − 1 degrees of freedom (Korn & Graubard 1998); one record per cluster is plain Wilson.
- **Few events.** With at most 2 (3 above 50 records) effective events on a side, that bound is
  the exact Poisson one (Brown, Cai & DasGupta 2001, "modified Wilson"); with none, the bound is
  exact for beta-binomial clusters at ρ = ``ICC_MAX``: the largest p at which seeing no event in
  any cluster still has probability (1 − level)/2 (Clopper–Pearson's when clusters hold one record).
- **Monotone.** The upper bound is the largest upper bound of any data set that has the same
  clusters and fewer successes (at most as many in every cluster), and the lower bound the
  smallest lower bound of any data set with more; so turning a failure into a success never
  lowers either bound, and a ``<=`` gate never moves towards PASS when a success is added.
  The maximum is exact: for a given number of successes the most clustered sub-data set (which
  has the widest interval) fills the clusters with the most successes first.

Range 0..1, never a zero-width interval. Coverage (docs/statistics.md, bench/bench_coverage.py):
at least 93% for p in {0, 0.01, 0.05, 0.5}, 1, 5 or 25 records per cluster, ICC up to 0.6 and 3 to
100 clusters. Limits: conservative with few clusters or few events (it assumes the strongest
clustering the data cannot rule out), and only as valid as ICC <= 0.6 beyond what the data show.

``mover_mean`` and ``mover_diff`` combine two such intervals into one for the mean or the
difference of two rates (MOVER: Newcombe 1998, Zou & Donner 2008).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats as sps
from scipy.optimize import brentq
from scipy.special import betaln

ICC_MAX = 0.6  # the strongest intra-cluster correlation the intervals are built to cover
PRIOR_EVENTS = 5.0  # weight of the prior ICC (= ICC_MAX), in events
METHOD = (
    "Wilson (cluster-adjusted: design effect with a prior ICC of 0.6 worth 5 events, t on clusters − 1 df; "
    "exact bounds at 0 to 3 events; monotone)"
)


def zero_event_bound(counts: np.ndarray, tail: float, icc: float = ICC_MAX) -> float:
    """The largest rate p at which no event in any cluster has probability ``tail`` (beta-binomial
    clusters with intra-cluster correlation ``icc``; Clopper–Pearson's bound for one record each)."""
    sizes, mult = np.unique(np.asarray(counts, float), return_counts=True)
    if sizes.size == 0:
        return 1.0
    if np.all(sizes <= 1):
        return float(1.0 - tail ** (1.0 / mult.sum()))
    k = (1.0 - icc) / icc

    def log_p0(p: float) -> float:
        a, b = p * k, (1.0 - p) * k
        return float(np.sum(mult * (betaln(a, b + sizes) - betaln(a, b)))) - math.log(tail)

    return float(brentq(log_p0, 1e-12, 1.0 - 1e-12, xtol=1e-12))


def _rho(x: np.ndarray, conc: np.ndarray, total: float, n_cl: int, mw: float) -> np.ndarray:
    """Shrunk ICC for data sets with ``x`` successes and concentration Σ s² = ``conc``."""
    if n_cl < 2:
        return np.full(x.shape, ICC_MAX)
    p = x / total
    with np.errstate(divide="ignore", invalid="ignore"):
        resid = np.maximum(conc - x * x * mw / total, 0.0)
        deff_obs = n_cl / (n_cl - 1) * resid / (total * p * (1.0 - p))
        rho_obs = np.where((p > 0) & (p < 1), np.clip((deff_obs - 1.0) / (mw - 1.0), 0.0, 1.0), ICC_MAX)
    events = np.minimum(x, total - x)
    return (events * rho_obs + PRIOR_EVENTS * ICC_MAX) / (events + PRIOR_EVENTS)


def _upper(s: np.ndarray, m: np.ndarray, level: float) -> float:
    """Upper bound: the largest per-data-set bound over the sub-data sets of ``s`` (see the card)."""
    tail = (1.0 - level) / 2.0
    n_cl, total = s.size, float(m.sum())
    x_obs = float(s.sum())
    best = zero_event_bound(m, tail)
    if x_obs <= 0:
        return best
    xs = np.arange(1.0, math.floor(x_obs + 1e-9) + 1.0)
    if xs.size == 0 or xs[-1] < x_obs - 1e-9:
        xs = np.append(xs, x_obs)
    caps = np.sort(s)[::-1]
    cum = np.cumsum(caps)
    j = np.minimum(np.searchsorted(cum, xs - 1e-9, side="left"), caps.size - 1)
    squares = np.concatenate([[0.0], np.cumsum(caps * caps)])
    before = np.concatenate([[0.0], cum])[j]
    conc = squares[j] + (xs - before) ** 2  # the most clustered sub-data set with xs successes
    mw = float(np.sum(m * m) / total)
    if mw > 1.0:
        deff = 1.0 + (mw - 1.0) * _rho(xs, conc, total, n_cl, mw)
        q = float(sps.t.ppf(1.0 - tail, max(n_cl - 1, 1)))
    else:
        deff = np.ones_like(xs)
        q = float(sps.norm.ppf(1.0 - tail))
    n_eff = total / deff
    p = xs / total
    denom = 1.0 + q * q / n_eff
    centre = (p + q * q / (2.0 * n_eff)) / denom
    upper = centre + q * np.sqrt(np.maximum(p * (1.0 - p) / n_eff + q * q / (4.0 * n_eff**2), 0.0)) / denom
    failures = (total - xs) / deff
    few = (failures > 0) & (failures <= (2 if total <= 50 else 3))
    if np.any(few):  # modified Wilson near 1: the exact Poisson bound on the few failures
        poisson = 1.0 - sps.gamma.ppf(tail, np.where(few, failures, 1.0)) / n_eff
        upper = np.where(few, np.maximum(upper, poisson), upper)
    return float(min(1.0, max(best, float(np.max(upper)))))


def design_effect(sums: np.ndarray, counts: np.ndarray) -> float | None:
    """The design effect the interval uses at the observed data (None without records)."""
    s, m = np.asarray(sums, float), np.asarray(counts, float)
    total = float(m.sum())
    if total <= 0:
        return None
    mw = float(np.sum(m * m) / total)
    if mw <= 1.0:
        return 1.0
    x = np.array([float(s.sum())])
    rho = _rho(x, np.array([float(np.sum(s * s))]), total, int(s.size), mw)
    return float(1.0 + (mw - 1.0) * rho[0])


def wilson_cluster(sums: np.ndarray, counts: np.ndarray, level: float = 0.95) -> dict[str, Any]:
    """Rate sum(sums)/sum(counts) of 0/1 outcomes in clusters, with the monotone cluster-adjusted
    Wilson interval of the module card; NaN without records."""
    s, m = np.asarray(sums, float), np.asarray(counts, float)
    keep = m > 0
    s, m = np.clip(s[keep], 0.0, m[keep]), m[keep]
    total = float(m.sum())
    if s.size == 0 or total <= 0:
        return {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "deff": None}
    x = float(s.sum())
    hi = 1.0 if x >= total else _upper(s, m, level)
    lo = 0.0 if x <= 0 else max(0.0, 1.0 - _upper(m - s, m, level))
    return {"estimate": x / total, "ci_low": lo, "ci_high": hi, "deff": design_effect(s, m)}


def mover_mean(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float]:
    """Interval of (p_a + p_b) / 2 for two independent rates from their own intervals (MOVER)."""
    pa, pb = a["estimate"], b["estimate"]
    est = (pa + pb) / 2.0
    lo = est - 0.5 * math.hypot(pa - a["ci_low"], pb - b["ci_low"])
    hi = est + 0.5 * math.hypot(a["ci_high"] - pa, b["ci_high"] - pb)
    return lo, hi


def mover_diff(a: dict[str, Any], b: dict[str, Any], corr: float = 0.0) -> tuple[float, float]:
    """Interval of p_a − p_b from the two rates' intervals and their correlation (MOVER; for two
    shares of one multinomial the correlation is −sqrt(p_a p_b / ((1 − p_a)(1 − p_b))))."""
    pa, pb = a["estimate"], b["estimate"]
    da_lo, da_hi = pa - a["ci_low"], a["ci_high"] - pa
    db_lo, db_hi = pb - b["ci_low"], b["ci_high"] - pb
    lo = (pa - pb) - math.sqrt(max(da_lo**2 + db_hi**2 - 2 * corr * da_lo * db_hi, 0.0))
    hi = (pa - pb) + math.sqrt(max(da_hi**2 + db_lo**2 - 2 * corr * da_hi * db_lo, 0.0))
    return lo, hi


def multinomial_corr(pa: float, pb: float) -> float:
    """Correlation of two shares of one multinomial (0 where undefined)."""
    if not (0 < pa < 1 and 0 < pb < 1):
        return 0.0
    return -math.sqrt(pa * pb / ((1 - pa) * (1 - pb)))
