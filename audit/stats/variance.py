"""Where a paired group comparison's noise comes from: the samples of one prompt, or the sets.

Card: given the scores of a comparison as a (counterfactual sets x groups x samples) array, with
k >= 2 samples per prompt, the variance of a set's paired difference (group a minus group b, each
the mean over its k samples) splits into

- ``samples``: sampling noise, var_s(y_a,s - y_b,s) / k, where sample s of a and of b share their
  random numbers (the members of a set share their seeds: common random numbers);
- ``sets``: the real variation of the difference from set to set (templates, surface forms): the
  variance of the set differences minus the sampling part (at least 0).

More samples per prompt shrink only the first; more sets shrink both. ``if_samples_doubled`` is the
variance of the mean difference, relative to now, with 2k samples per prompt; doubling the sets
halves it for the same number of extra completions, so extra samples pay only when the suite has no
more sets. ``crn`` measures the common random numbers: the variance of a one-sample difference with
shared seeds (``diff_var``) against the sum of the two members' within-prompt sample variances
(``independent_var``: what independent seeds would give); ``reduction`` = 1 - their ratio.
Figures are the mean over every pair of groups with at least 2 complete sets. Limits: the
method-of-moments split can put a small negative "sets" part at 0; with few sets it is noisy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _clean(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def variance_split(cube: np.ndarray) -> dict[str, Any] | None:
    """The split of one comparison (module card), or None with fewer than 2 samples or sets."""
    cube = np.asarray(cube, float)
    if cube.ndim != 3 or cube.shape[2] < 2:
        return None
    present = np.isfinite(cube)
    counts = present.sum(axis=2)
    if not (counts >= 2).any():
        return None
    k = int(np.median(counts[counts > 0]))
    samp, sets, diff1, indep = [], [], [], []
    with np.errstate(invalid="ignore", divide="ignore"):
        for a in range(cube.shape[1]):
            for b in range(a + 1, cube.shape[1]):
                d = cube[:, a, :] - cube[:, b, :]  # sample s of a against sample s of b
                full = np.sum(np.isfinite(d), axis=1) >= 2
                if np.count_nonzero(full) < 2:
                    continue
                d = d[full]
                var_d1 = float(np.mean(np.nanvar(d, axis=1, ddof=1)))
                total = float(np.var(np.nanmean(d, axis=1), ddof=1))
                samp.append(var_d1 / k)
                sets.append(max(0.0, total - var_d1 / k))
                diff1.append(var_d1)
                within = np.nanvar(cube[full, a, :], axis=1, ddof=1) + np.nanvar(cube[full, b, :], axis=1, ddof=1)
                indep.append(float(np.mean(within)))
    if not samp:
        return None
    v_samp, v_sets = float(np.mean(samp)), float(np.mean(sets))
    total = v_samp + v_sets
    d1, ind = float(np.mean(diff1)), float(np.mean(indep))
    return {
        "samples_per_prompt": k,
        "samples": _clean(v_samp),
        "sets": _clean(v_sets),
        "samples_share": _clean(v_samp / total) if total > 0 else None,
        "if_samples_doubled": _clean((v_sets + v_samp / 2) / total) if total > 0 else None,
        "if_sets_doubled": 0.5,
        "crn": {
            "diff_var": _clean(d1),
            "independent_var": _clean(ind),
            "reduction": _clean(1 - d1 / ind) if ind > 0 else None,
        },
        "method": f"mean over {len(samp)} pair(s) of groups; one-sample differences within sets (k={k})",
    }
