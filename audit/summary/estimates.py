"""Deferred estimates of one suite's summary: each figure's columns are registered before the
suite's one cluster bootstrap pass (``audit.stats.resampling.ColumnBank``) and its CI filled in after it
(Wilson for shares, cluster-robust t for means, else the percentile bootstrap); and the flag on a
figure whose score is constant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from audit.gates.evaluate import MIN_CLUSTERS_WARN
from audit.stats.intervals import is_constant, t_cluster_mean, wilson_cluster
from audit.stats.resampling import ColumnBank, clean_float

WILSON = "Wilson score, effective n = records / design effect of clusters"
T_MEAN = "t interval, cluster-robust (ratio-estimator) standard error"


class Pending:
    """Estimates registered before the bootstrap pass and filled after it."""

    def __init__(self, bank: ColumnBank, level: float) -> None:
        self.bank = bank
        self.level = level
        self.jobs: list[tuple[dict[str, Any], slice, Callable[[np.ndarray], np.ndarray], str, float]] = []

    def add(
        self,
        target: dict[str, Any],
        columns: np.ndarray,
        fn: Callable[[np.ndarray], np.ndarray],
        kind: str = "bootstrap",
        scale: float = 1.0,
    ) -> slice:
        """``kind``: "proportion" ([successes, count] columns: Wilson), "mean" ([sum, count]: t
        interval) or "bootstrap" (any smooth function: percentile bootstrap)."""
        sl = self.bank.add(columns)
        self.jobs.append((target, sl, fn, kind, scale))
        return sl

    def fill(self) -> None:
        for target, sl, fn, kind, scale in self.jobs:
            target.update(self.bank.estimate(sl, fn, self.level).to_dict())
            if kind in ("proportion", "mean") and self.bank._x is not None:
                x = self.bank._x[:, sl]
                if kind == "proportion":
                    r = wilson_cluster(x[:, 0] / scale, x[:, 1], self.level)
                    r = {k: v * scale if k != "deff" and v is not None else v for k, v in r.items()}
                    target["design_effect"] = clean_float(r["deff"]) if r["deff"] is not None else None
                else:
                    r = t_cluster_mean(x[:, 0], x[:, 1], self.level)
                target.update({k: clean_float(r[k]) for k in ("estimate", "ci_low", "ci_high")})
                target["method"] = WILSON if kind == "proportion" else T_MEAN
            n = self.bank.n_contributing(sl)
            target["n_clusters"] = n
            if n < MIN_CLUSTERS_WARN and target.get("ci_low") is not None:
                target.setdefault("warnings", []).append(
                    f"CI from only {n} clusters (fewer than {MIN_CLUSTERS_WARN}): it may under-cover"
                )


def flag_constant(target: dict[str, Any], values: np.ndarray) -> None:
    if is_constant(values):
        target["uninformative"] = True
        target["uninformative_reason"] = (
            "the score is the same on every record (a degenerate scorer output, e.g. a random-weights model)"
        )
        target.setdefault("warnings", []).append("uninformative: the score is constant")
