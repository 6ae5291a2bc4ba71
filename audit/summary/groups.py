"""Group comparisons of one suite's summary: per score and attribute, each group's value, the
overall value, each group versus overall, the mean of the group means, and the gap (largest
pairwise difference) with its interval and its permutation p-value.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from audit.gates.evaluate import MIN_CLUSTERS_WARN, StatsSettings
from audit.metrics.frame import Frame
from audit.stats.bounded import clip
from audit.stats.intervals import is_constant, pairwise_gap
from audit.stats.rates import mover_diff, wilson_cluster
from audit.stats.resampling import clean_float, gap_test_between_units, gap_test_within_sets, ratio
from audit.summary.estimates import ZERO_WIDTH, Pending, flag_constant, flag_zero_width
from audit.summary.variance import comparison_variance

MAX_GROUPS = 50  # attributes with more distinct values are not compared group by group


def group_score_keys(frame: Frame) -> list[str]:
    keys = [k for k in frame.score_keys() if not k.startswith("ll_")]
    return keys


def group_comparisons(frame: Frame, group_attributes: Sequence[str]) -> list[tuple[str, str, np.ndarray]]:
    """(label, attribute, mask) for each group comparison. Template suites (``axis`` + ``group``)
    compare groups within each axis, labelled by the axis value (``gender``)."""
    out: list[tuple[str, str, np.ndarray]] = []
    attrs = list(dict.fromkeys(group_attributes))
    if "group" in attrs and "axis" in attrs:
        axis = frame.attr("axis")
        for a in sorted({v for v in axis if v is not None}):
            out.append((a, "group", axis == a))
        attrs = [x for x in attrs if x not in ("axis", "group")]
    for name in attrs:
        out.append((name, name, frame.all_mask()))
    return out


def _is_binary(values: np.ndarray) -> bool:
    v = values[np.isfinite(values)]
    return bool(v.size) and bool(np.all((v == 0) | (v == 1)))


def gap_fn(n_groups: int) -> Callable[[np.ndarray], np.ndarray]:
    def fn(t: np.ndarray) -> np.ndarray:
        means = np.stack([ratio(t, 2 * g, 2 * g + 1) for g in range(n_groups)], axis=-1)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            enough = np.sum(np.isfinite(means), axis=-1) >= 2
            return np.where(enough, np.nanmax(means, axis=-1) - np.nanmin(means, axis=-1), np.nan)

    return fn


def _cell_fn(i: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda t: ratio(t, 2 * i, 2 * i + 1)


def _mean_of_groups_fn(n_groups: int) -> Callable[[np.ndarray], np.ndarray]:
    def fn(t: np.ndarray) -> np.ndarray:
        means = np.stack([ratio(t, 2 * g, 2 * g + 1) for g in range(n_groups)], axis=-1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(means, axis=-1)

    return fn


def _vs_overall_fn(g: int, n_groups: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda t: ratio(t, 2 * g, 2 * g + 1) - ratio(t, 2 * n_groups, 2 * n_groups + 1)


def group_entries(
    frame: Frame,
    comparisons: list[tuple[str, str, np.ndarray]],
    keys: list[str],
    pending: Pending,
    stats: StatsSettings,
) -> list[dict[str, Any]]:
    out = []
    for label, attr, mask in comparisons:
        values = frame.attr(attr)
        groups = sorted({v for v in values[mask] if v is not None})
        if not 2 <= len(groups) <= MAX_GROUPS:
            continue
        for key in keys:
            v = frame.score(key)
            cols = []
            ns = []
            for g in groups:
                c, n = frame.record_ratio(v, mask & (values == g))
                cols.append(c)
                ns.append(n)
            in_cmp = mask & np.isin(values, groups)
            c_all, n_all = frame.record_ratio(v, in_cmp)
            if n_all == 0:
                continue
            columns = np.hstack([*cols, c_all])
            entry: dict[str, Any] = {
                "score": key,
                "attribute": label,
                "higher_is": frame.direction(key),
                "by_group": {},
                "overall": {"n": n_all},
                "gap": {},
                "vs_overall": {},
            }
            binary = _is_binary(v[in_cmp])
            kind = "proportion" if binary else "mean"
            rng = frame.score_range(key) or ((0.0, 1.0) if binary else None)
            spread = None if rng is None else rng[1] - rng[0]
            diff_range = None if spread is None else (-spread, spread)
            constant = is_constant(v[in_cmp])
            for gi, g in enumerate(groups):
                cell = {"n": ns[gi]}
                pending.add(cell, cols[gi], ratio, kind, value_range=rng)
                entry["by_group"][g] = cell
                diff: dict[str, Any] = {}
                pending.add(diff, columns, _vs_overall_fn(gi, len(groups)), value_range=diff_range)
                entry["vs_overall"][g] = diff
            pending.add(entry["overall"], c_all, ratio, kind, value_range=rng)
            entry["mean_of_groups"] = {"n": n_all}  # the unweighted mean of the group means (charts' line)
            pending.add(entry["mean_of_groups"], columns, _mean_of_groups_fn(len(groups)), value_range=rng)
            entry["gap"].update(_honest_gap(frame, in_cmp, values, groups, v, stats.ci_level, spread, binary))
            if constant:
                flag_constant(entry["gap"], v[in_cmp])
            elif entry["gap"].get("ci_low") is not None and entry["gap"]["ci_high"] - entry["gap"]["ci_low"] <= ZERO_WIDTH:
                flag_zero_width(entry["gap"], entry["gap"]["n_clusters"])
            seed = stats.seed + zlib.crc32(f"gap/{label}/{key}".encode())
            entry["gap"].update(_gap_test(frame, in_cmp, values, groups, v, stats.permutations, seed))
            split = comparison_variance(frame, in_cmp, values, groups, v)
            if split:
                entry["variance_split"] = split
            out.append(entry)
    return out


def _set_cell_means(
    frame: Frame, sel: np.ndarray, values: np.ndarray, groups: list[str], v: np.ndarray
) -> np.ndarray:
    """(counterfactual sets x groups) mean score of each group in each set; NaN where absent."""
    pair = frame.attr("pair_id")[sel]
    pair_codes: dict[Any, int] = {}
    pi = np.fromiter((pair_codes.setdefault(p, len(pair_codes)) for p in pair), int, len(pair))
    g_codes = {g: i for i, g in enumerate(groups)}
    gi = np.fromiter((g_codes[g] for g in values[sel]), int, len(pair))
    vv = v[sel]
    ok = np.isfinite(vv)
    cell = pi * len(groups) + gi
    size = len(pair_codes) * len(groups)
    sums = np.bincount(cell[ok], weights=vv[ok], minlength=size).reshape(-1, len(groups))
    cnts = np.bincount(cell[ok], minlength=size).reshape(-1, len(groups))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnts > 0, sums / np.maximum(cnts, 1), np.nan)


def _prompt_totals(
    frame: Frame, sel: np.ndarray, values: np.ndarray, groups: list[str], v: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per prompt of ``sel``: (sum of scores, number of records, group index), prompts sorted."""
    items, inv = np.unique(frame.item[sel], return_inverse=True)
    sums = np.bincount(inv, weights=v[sel], minlength=items.size)
    counts = np.bincount(inv, minlength=items.size).astype(float)
    g_codes = {g: i for i, g in enumerate(groups)}
    labels = np.zeros(items.size, dtype=int)
    labels[inv] = [g_codes[g] for g in values[sel]]
    return sums, counts, labels


def _honest_gap(
    frame: Frame,
    in_cmp: np.ndarray,
    values: np.ndarray,
    groups: list[str],
    v: np.ndarray,
    level: float,
    spread: float | None = None,
    binary: bool = False,
) -> dict[str, Any]:
    """The gap as the largest pairwise difference, with intervals that can include 0
    (audit/stats/intervals.py ``pairwise_gap``), cut to [0, high − low] of the score (``spread``)
    and each pair's difference to [−spread, spread]. For a 0/1 score each pair's interval is
    widened to hold the MOVER difference of the two groups' Wilson intervals too, so two groups
    with no event (a t interval of [0, 0]) still get an honest, non-degenerate difference."""
    sel = in_cmp & np.isfinite(v)
    pair = frame.attr("pair_id")
    if frame.has_pairs and all(p is not None for p in pair[sel]):
        cells = _set_cell_means(frame, sel, values, groups, v)
        res = pairwise_gap(groups, level, cells=cells)
        n_clusters = int(cells.shape[0])
    else:
        sums, counts, labels = _prompt_totals(frame, sel, values, groups, v)
        res = pairwise_gap(groups, level, sums=sums, counts=counts, labels=labels)
        n_clusters = int(sums.size)
    method = res.get("interval", "no pair with 2 or more clusters")
    if binary and res["pairs"]:
        _widen_binary_pairs(frame, sel, values, v, res, level)
        method += "; for a 0/1 score each pair also holds the MOVER difference of the groups' Wilson intervals"
    cut_any = False
    if spread is not None:
        res["ci_low"], res["ci_high"], cut_any = clip(res["ci_low"], res["ci_high"], 0.0, spread)
        for p in res["pairs"]:
            p["ci_low"], p["ci_high"], cut = clip(p["ci_low"], p["ci_high"], -spread, spread)
            cut_any = cut_any or cut
        if cut_any:
            method += f"; clipped to the range 0..{spread:g} (pairs to ±{spread:g})"
    out: dict[str, Any] = {k: clean_float(res[k]) for k in ("estimate", "ci_low", "ci_high")}
    out["n_clusters"] = n_clusters
    out["method"] = method
    if spread is not None:
        out["range"] = [0.0, clean_float(spread)]
    out["pairs"] = [
        {**p, **{k: clean_float(p[k]) for k in ("diff", "se", "ci_low", "ci_high")}} for p in res["pairs"]
    ]
    for p in out["pairs"]:
        if p["ci_low"] is not None and p["ci_high"] - p["ci_low"] <= ZERO_WIDTH * max(1.0, abs(p["diff"] or 0.0)):
            flag_zero_width(p, int(p.get("n") or 0))
            if not p.get("uninformative"):
                continue  # no variance in enough clusters: the pair's interval is evidence
            # the gap's verdict would rest on a pair that looks certain without evidence
            out.setdefault("uninformative", True)
            out.setdefault("uninformative_reason", (
                f"the difference {p['a']} − {p['b']} has no observed variance across {p.get('n')} clusters "
                "(a zero-width interval is no evidence of a precise value)"))
    if n_clusters < MIN_CLUSTERS_WARN and out["ci_low"] is not None:
        out["warnings"] = [f"CI from only {n_clusters} clusters (fewer than {MIN_CLUSTERS_WARN}): it may under-cover"]
    return out


def _widen_binary_pairs(
    frame: Frame, sel: np.ndarray, values: np.ndarray, v: np.ndarray, res: dict[str, Any], level: float
) -> None:
    """Each pair's interval: the hull of its t interval and the MOVER difference of the two groups'
    cluster-adjusted Wilson intervals (correlation 0: conservative for paired sets); the gap's
    upper bound follows."""
    ones = np.ones(frame.n)
    walls: dict[str, dict[str, Any]] = {}
    for p in res["pairs"]:
        for g in (p["a"], p["b"]):
            if g not in walls:
                m = sel & (values == g)
                walls[g] = wilson_cluster(frame.cluster_sum(np.where(m, v, 0.0), m), frame.cluster_sum(ones, m), level)
        lo, hi = mover_diff(walls[p["a"]], walls[p["b"]], 0.0)
        if math.isfinite(lo) and math.isfinite(hi):
            p["ci_low"], p["ci_high"] = min(p["ci_low"], lo), max(p["ci_high"], hi)
    res["ci_high"] = max(max(abs(p["ci_low"]), abs(p["ci_high"])) for p in res["pairs"])


def _gap_test(
    frame: Frame,
    in_cmp: np.ndarray,
    values: np.ndarray,
    groups: list[str],
    v: np.ndarray,
    permutations: int,
    seed: int,
) -> dict[str, Any]:
    """p-value of "no group differs" for a gap: group labels permuted within counterfactual sets
    (template suites) or across prompts (data suites). Fewer permutations for huge comparisons."""
    sel = in_cmp & np.isfinite(v)
    pair = frame.attr("pair_id")
    paired = frame.has_pairs and all(p is not None for p in pair[sel])
    cells = _set_cell_means(frame, sel, values, groups, v) if paired else np.empty((0, 0))
    # sets in which the attribute varies; where it never does, permuting within sets tests nothing:
    # whole sets are permuted instead (each set one unit, as in a data suite's prompts)
    varying = int(np.count_nonzero(np.isfinite(cells).sum(axis=1) >= 2)) if paired else 0
    if paired and varying:
        n_perm = min(permutations, max(999, 20_000_000 // max(cells.size, 1)))
        _, p = gap_test_within_sets(cells, n_perm, seed)
        how = f"permutation of group labels within {cells.shape[0]} counterfactual sets ({n_perm})"
        if varying < cells.shape[0]:
            how = (f"permutation of group labels within {cells.shape[0]} counterfactual sets ({n_perm}; "
                   f"the attribute varies in {varying} of them)")
    elif paired:
        finite = np.isfinite(cells)
        labels = np.argmax(finite, axis=1)
        sums = np.where(finite, cells, 0.0).sum(axis=1)
        n_perm = min(permutations, max(999, 20_000_000 // max(cells.shape[0], 1)))
        _, p = gap_test_between_units(sums, np.ones(cells.shape[0]), labels, len(groups), n_perm, seed)
        how = (f"permutation of group labels across {cells.shape[0]} counterfactual sets ({n_perm}; "
               "the attribute is constant within each set)")
    else:
        sums, counts, labels = _prompt_totals(frame, sel, values, groups, v)
        n_perm = min(permutations, max(999, 20_000_000 // max(sums.size, 1)))
        _, p = gap_test_between_units(sums, counts, labels, len(groups), n_perm, seed)
        how = f"permutation of group labels across {sums.size} prompts ({n_perm})"
    return {"p_value": clean_float(p), "test": how}


def finish_gaps(groups: list[dict[str, Any]]) -> None:
    for entry in groups:
        est = {g: c.get("estimate") for g, c in entry["by_group"].items() if c.get("estimate") is not None}
        if len(est) >= 2:
            entry["gap"]["max_group"] = max(est, key=lambda g: est[g])
            entry["gap"]["min_group"] = min(est, key=lambda g: est[g])
