"""Deferred estimates of one suite's summary: each figure's per-cluster columns are registered
while the summary is built and its interval filled in at the end, by the figure's kind:

- ``proportion``: a share of 0/1 outcomes, the monotone cluster-adjusted Wilson interval
  (``audit.stats.rates.wilson_cluster``); ``rate`` (a + b · share, e.g. BBQ's s_DIS = 2p − 1) the same,
  mapped;
- ``mean``: a mean of a score with a declared range, the range-respecting Wilson-type interval
  (``audit.stats.bounded.bounded_mean``); without a range, the cluster t interval;
- ``smooth``: any smooth function of the totals (vs_overall, mean_of_groups), the linearized
  cluster t interval (``audit.stats.bounded.delta_cluster_t``);
- ``rates_mean`` / ``rates_diff``: the mean or difference of two shares (over-refusal's
  balanced_error, BBQ's s_AMB), MOVER from their Wilson intervals; ``icat``: ICAT from the 97.5%
  intervals of LMS and of min(SS, 100 − SS) (Bonferroni; ICAT grows with both).

Every interval is cut to the figure's range when it could leave it (``range`` on the figure; the
method says so), every figure names its ``method``, and a zero-width interval (no observed
variance) is flagged uninformative, so a gate on it is an ERROR, never a certain PASS.
``flag_constant`` marks a figure whose score is constant.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from audit.gates.evaluate import MIN_CLUSTERS_WARN
from audit.stats.bounded import (
    BOUNDED_METHOD,
    DELTA_METHOD,
    ICAT_METHOD,
    bounded_mean,
    clip,
    delta_cluster_t,
    icat_interval,
)
from audit.stats.intervals import is_constant, t_cluster_mean
from audit.stats.rates import METHOD as WILSON
from audit.stats.rates import mover_diff, mover_mean, multinomial_corr, wilson_cluster
from audit.stats.resampling import clean_float

T_MEAN = "cluster t (ratio-estimator cluster-robust se, t on clusters − 1 df)"
MOVER_MEAN = "MOVER mean of two Wilson intervals (Newcombe 1998; Zou & Donner 2008)"
MOVER_DIFF = "MOVER difference of two Wilson intervals of shares of one multinomial (Newcombe 1998)"

Fn = Callable[[np.ndarray], np.ndarray]
ZERO_WIDTH = 1e-9  # relative width below which an interval is a point (numerical gradients leave ~1e-12)
MIN_CLUSTERS_CERTAIN = 10  # below this, a zero-width interval is flagged uninformative (docs/statistics.md)


@dataclass
class Job:
    target: dict[str, Any]
    columns: np.ndarray
    fn: Fn
    kind: str
    scale: float
    value_range: tuple[float, float] | None
    ci: dict[str, Any] | None


class Pending:
    """Estimates registered while a suite's summary is built and filled in by ``fill``."""

    def __init__(self, level: float) -> None:
        self.level = level
        self.jobs: list[Job] = []

    def add(
        self,
        target: dict[str, Any],
        columns: np.ndarray,
        fn: Fn,
        kind: str = "smooth",
        scale: float = 1.0,
        value_range: tuple[float, float] | None = None,
        ci: dict[str, Any] | None = None,
    ) -> None:
        """``columns``: (clusters x k) totals with ``fn`` the figure; ``kind`` as in the module card
        ("proportion" and "mean" read [sum, count] columns; ``ci`` carries other kinds' columns);
        ``value_range``: the figure's possible range."""
        cols = np.asarray(columns, float)
        self.jobs.append(Job(target, cols[:, None] if cols.ndim == 1 else cols, fn, kind, scale, value_range, ci))

    def fill(self) -> None:
        for job in self.jobs:
            fill_one(job, self.level)


def _rate(x: np.ndarray, level: float) -> dict[str, Any]:
    return wilson_cluster(x[:, 0], x[:, 1], level)


def _interval(job: Job, level: float) -> tuple[float, float, str, float | None]:
    """(ci_low, ci_high, method, design effect) of one figure."""
    x, ci = job.columns, job.ci or {}
    kind = ci.get("kind", job.kind)
    if kind == "proportion":
        r = wilson_cluster(x[:, 0] / job.scale, x[:, 1], level)
        return r["ci_low"] * job.scale, r["ci_high"] * job.scale, WILSON, r["deff"]
    if kind == "rate":
        r = _rate(ci["x"], level)
        a, b = ci.get("a", 0.0), ci.get("b", 1.0)
        lo, hi = sorted((a + b * r["ci_low"], a + b * r["ci_high"]))
        return lo, hi, WILSON + ("" if (a, b) == (0.0, 1.0) else f", mapped to {a:g} + {b:g}·p"), r["deff"]
    if kind == "mean":
        xm = ci.get("x", x)
        if job.value_range is not None:
            r = bounded_mean(xm[:, 0], xm[:, 1], *job.value_range, level=level)
            return r["ci_low"], r["ci_high"], BOUNDED_METHOD, None
        r = t_cluster_mean(xm[:, 0], xm[:, 1], level)
        return r["ci_low"], r["ci_high"], T_MEAN, None
    if kind in ("rates_mean", "rates_diff"):
        a, b = _rate(ci["x1"], level), _rate(ci["x2"], level)
        if not all(math.isfinite(v) for v in (a["estimate"], b["estimate"])):
            return math.nan, math.nan, MOVER_MEAN if kind == "rates_mean" else MOVER_DIFF, None
        if kind == "rates_mean":
            return (*mover_mean(a, b), MOVER_MEAN, None)
        return (*mover_diff(a, b, multinomial_corr(a["estimate"], b["estimate"])), MOVER_DIFF, None)
    if kind == "icat":
        return (*icat_interval(ci["ss"], ci["lms"], level), ICAT_METHOD, None)
    r = delta_cluster_t(x, job.fn, level)
    return r["ci_low"], r["ci_high"], DELTA_METHOD, None


def fill_one(job: Job, level: float) -> None:
    """Estimate, interval, method, range, cluster count and flags of one figure."""
    target, x = job.target, job.columns
    with np.errstate(divide="ignore", invalid="ignore"):
        est = float(np.asarray(job.fn(x.sum(axis=0)[None, :]), float)[0])
    n = int(np.count_nonzero(np.any(x != 0, axis=1)))
    lo, hi, method, deff = _interval(job, level) if n >= 1 and math.isfinite(est) else (math.nan, math.nan, "", None)
    if job.value_range is not None:
        lo, hi, cut = clip(lo, hi, *job.value_range)
        target["range"] = [clean_float(job.value_range[0]), clean_float(job.value_range[1])]
        if cut:
            method += f"; clipped to the range {job.value_range[0]:g}..{job.value_range[1]:g}"
    target.update(estimate=clean_float(est), ci_low=clean_float(lo), ci_high=clean_float(hi))
    target["method"] = method or None
    if deff is not None:
        target["design_effect"] = clean_float(deff)
    target["n_clusters"] = n
    has_ci = target.get("ci_low") is not None and target.get("ci_high") is not None
    if has_ci and n < MIN_CLUSTERS_WARN:
        target.setdefault("warnings", []).append(
            f"CI from only {n} clusters (fewer than {MIN_CLUSTERS_WARN}): it may under-cover"
        )
    if has_ci and target["ci_high"] - target["ci_low"] <= ZERO_WIDTH * max(1.0, abs(target["estimate"] or 0.0)):
        flag_zero_width(target, n)


def flag_zero_width(target: dict[str, Any], n_clusters: int) -> None:
    """A zero-width interval from fewer than ``MIN_CLUSTERS_CERTAIN`` clusters claims certainty it does
    not have: uninformative (gates: ERROR). From that many clusters on, no variance at all is itself
    the evidence (a deterministic figure that is the same in every cluster, e.g. a likelihood gap of a
    group-blind model): the interval stands, marked ``zero_variance`` with a warning."""
    if target.get("uninformative"):
        return
    if n_clusters >= MIN_CLUSTERS_CERTAIN:
        target["zero_variance"] = True
        target.setdefault("warnings", []).append(
            f"no observed variance across {n_clusters} clusters: the figure is the same in every cluster"
        )
        return
    target["uninformative"] = True
    target["uninformative_reason"] = (
        f"no observed variance across {n_clusters} clusters: the interval has zero width, "
        "which is no evidence of a precise value"
    )
    target.setdefault("warnings", []).append("uninformative: no observed variance (zero-width interval)")


def flag_constant(target: dict[str, Any], values: np.ndarray) -> None:
    if is_constant(values):
        target["uninformative"] = True
        target["uninformative_reason"] = (
            "the score is the same on every record (a degenerate scorer output, e.g. a random-weights model)"
        )
        target.setdefault("warnings", []).append("uninformative: the score is constant")
