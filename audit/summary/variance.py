"""The variance split of a group comparison (``groups[i].variance_split`` in summary.json): how much
of a paired difference's noise is sampling noise and how much is set-to-set variation, and what
the shared seeds (common random numbers) save. The statistic is ``audit.stats.variance``; this
module only arranges a comparison's records as (sets x groups x samples)."""

from __future__ import annotations

from typing import Any

import numpy as np

from audit.metrics.frame import Frame
from audit.stats.variance import variance_split


def comparison_variance(
    frame: Frame, in_cmp: np.ndarray, values: np.ndarray, groups: list[str], v: np.ndarray
) -> dict[str, Any] | None:
    """The split for one comparison, or None (no counterfactual sets, or one sample per prompt)."""
    sel = in_cmp & np.isfinite(v)
    if not (frame.has_pairs and sel.any()) or int(frame.samples[sel].max()) < 1:
        return None
    pair = frame.attr("pair_id")[sel]
    if any(p is None for p in pair):
        return None
    codes: dict[Any, int] = {}
    pi = np.fromiter((codes.setdefault(p, len(codes)) for p in pair), int, len(pair))
    g_codes = {g: i for i, g in enumerate(groups)}
    gi = np.fromiter((g_codes[g] for g in values[sel]), int, len(pair))
    si = frame.samples[sel]
    cube = np.full((len(codes), len(groups), int(si.max()) + 1), np.nan)
    cube[pi, gi, si] = v[sel]
    return variance_split(cube)
