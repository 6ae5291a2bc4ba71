"""Summaries: records -> statistics -> gates -> ``summary.json``, ``report.md``, ``report.html``.

``build_summary(run_dir, policy)`` computes, per suite, every declared metric (overall and per
``by`` attribute), per-group comparisons of every score (per-group value, overall, gap, each group
versus overall), paired permutation tests on counterfactual pairs with Holm correction and
Cohen's dz, the worst examples, and the gates. All CIs come from one seeded cluster bootstrap per
suite (``audit.stats.ColumnBank``), so figures are reproducible and mutually consistent.
``finalize_run`` writes the three files and prints each gate.
"""

from __future__ import annotations

import json
import os
import warnings
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from audit.gates import (
    MIN_CLUSTERS_WARN,
    Policy,
    StatsSettings,
    evaluate_all,
    gate_counts,
    gate_line,
    load_policy,
    verdict_of,
)
from audit.intervals import is_constant, pairwise_gap, t_cluster_mean, wilson_cluster
from audit.metrics import METRICS, Frame, compute_metric, score_direction
from audit.stats import (
    ColumnBank,
    clean_float,
    gap_test_between_units,
    gap_test_within_sets,
    holm,
    ratio,
    sign_flip_test,
)
from audit.store import atomic_write_json, atomic_write_text, read_manifest, read_records_checked

SCHEMA_VERSION = 1
MAX_GROUPS = 50  # attributes with more distinct values are not compared group by group
N_WORST = 5
TOXICITY_SCORERS = ("toxicity",)
# metrics that are shares of 0/1 outcomes: Wilson intervals adjusted for clustering
PROPORTION_METRICS = ("rate", "toxicity_probability", "toxic_fraction", "accuracy", "refusal_rate", "pct_stereotype")
WILSON = "Wilson score, effective n = records / design effect of clusters"
T_MEAN = "t interval, cluster-robust (ratio-estimator) standard error"


# --------------------------------------------------------------------------- protocol


def protocol_of(suite_manifest: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    """The generation protocol and scorer versions of a suite, with a one-line text to quote."""
    gen = suite_manifest.get("generation") or {}
    versions = {}
    for name in suite_manifest.get("scorers", []):
        info = (manifest.get("scorers") or {}).get(name, {})
        versions[name] = f"{info.get('name', name)} {info.get('version', '?')}".strip()
    proto: dict[str, Any] = {
        "name": suite_manifest.get("protocol", "default"),
        "task": suite_manifest.get("task", "generate"),
        "samples": gen.get("samples", 1),
        "max_new_tokens": gen.get("max_new_tokens"),
        "temperature": gen.get("temperature"),
        "top_p": gen.get("top_p"),
        "do_sample": gen.get("do_sample", True),
        "seed": manifest.get("seed"),
        "scorers": versions,
    }
    scorer_text = ", ".join(f"{k}={v.split(' ', 1)[-1]}" for k, v in versions.items())
    if proto["task"] == "likelihood":
        text = "log-likelihood of each option (sum of token log-probs), no sampling"
    else:
        greedy = not proto["do_sample"] or (proto["temperature"] or 0) <= 0
        decoding = "greedy" if greedy else f"T={proto['temperature']}, top_p={proto['top_p']}"
        text = f"k={proto['samples']}, {proto['max_new_tokens']} tokens, {decoding}"
    text = f"{text}, seed={proto['seed']}" + (f", {scorer_text}" if scorer_text else "")
    if proto["name"] not in (None, "default"):
        text = f"protocol {proto['name']}: {text}"
    proto["text"] = text
    return proto


# --------------------------------------------------------------------------- one suite


class _Pending:
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


def _group_score_keys(frame: Frame) -> list[str]:
    keys = [k for k in frame.score_keys() if not k.startswith("ll_")]
    return keys


def _derive_likelihood_scores(frame: Frame, specs: list[dict[str, Any]]) -> None:
    """Likelihood suites: a per-record 0/1 ``stereotype_preferred`` score for group comparisons,
    from each (more, less) option pair the suite's metrics name (default stereotype /
    anti_stereotype); each record uses the first pair it carries."""
    pairs = [("stereotype", "anti_stereotype")]
    for spec in specs:
        params = spec.get("params") or {}
        if spec.get("metric") == "pct_stereotype":
            pairs.insert(0, (params.get("more", "stereotype"), params.get("less", "anti_stereotype")))
    out = np.full(frame.n, np.nan)
    for more, less in dict.fromkeys(pairs):
        s, a = frame.score(f"ll_{more}"), frame.score(f"ll_{less}")
        ok = np.isfinite(s) & np.isfinite(a) & np.isnan(out)
        out[ok] = (s[ok] > a[ok]).astype(float)
    if np.isfinite(out).any():
        frame._score_cache["stereotype_preferred"] = out


def _comparisons(frame: Frame, group_attributes: Sequence[str]) -> list[tuple[str, str, np.ndarray]]:
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


def _default_metric_specs(frame: Frame, task: str) -> list[dict[str, Any]]:
    keys = frame.score_keys()
    if task == "likelihood" and {"ll_stereotype", "ll_anti_stereotype"} <= set(keys):
        return [{"metric": "pct_stereotype", "score": None, "by": [], "name": None, "params": {}}]
    return [
        {"metric": "mean", "score": k, "by": [], "name": f"mean_{k}", "params": {}}
        for k in keys
        if not k.startswith("ll_")
    ]


def _metric_entries(
    frame: Frame, specs: list[dict[str, Any]], pending: _Pending, method: str, protocol: str
) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for spec in specs:
        label = spec.get("name") or spec["metric"]
        default_score = METRICS[spec["metric"]].default_score if spec["metric"] in METRICS else None
        base = {
            "metric": spec["metric"],
            "score": spec.get("score") or default_score,
            "params": spec.get("params") or {},
        }
        try:
            parts = compute_metric(
                spec["metric"], frame, frame.all_mask(), spec.get("score"), spec.get("params")
            )
        except (KeyError, ValueError) as exc:
            entries.append(
                {
                    "name": label,
                    **base,
                    "estimate": None,
                    "ci_low": None,
                    "ci_high": None,
                    "n": 0,
                    "error": str(exc).strip("'\""),
                }
            )
            continue
        multi = len(parts) > 1
        by_parts: dict[tuple[str, str], list[Any]] = {}
        for attr in spec.get("by") or []:
            values = frame.attr(attr)
            for v in sorted({x for x in values if x is not None}):
                by_parts[(attr, v)] = compute_metric(
                    spec["metric"], frame, values == v, spec.get("score"), spec.get("params")
                )
        for i, part in enumerate(parts):
            entry: dict[str, Any] = {
                "name": f"{label}.{part.name}" if multi else label,
                **({"part": part.name} if multi else {}),
                **base,
                "estimate": None,
                "ci_low": None,
                "ci_high": None,
                "n": part.n,
                "ci_level": pending.level,
                "method": method,
                "higher_is": part.higher_is,
                "ideal": part.ideal,
                "scale": part.scale,
                "protocol": protocol,
            }
            if part.extra:
                entry["extra"] = {k: clean_float(v) for k, v in part.extra.items()}
            kind, scale = _kind(spec["metric"], part)
            if spec["metric"] == "mean" and kind == "mean" and base["score"]:
                _flag_constant(entry, frame.score(base["score"]))
            pending.add(entry, part.columns, part.fn, kind, scale)
            by: dict[str, dict[str, Any]] = {}
            for (attr, v), bparts in by_parts.items():
                if bparts[i].n == 0:  # a group this metric's data never holds (StereoSet's types in CrowS-Pairs)
                    continue
                cell: dict[str, Any] = {"n": bparts[i].n}
                if bparts[i].extra:
                    cell["extra"] = {k: clean_float(x) for k, x in bparts[i].extra.items()}
                pending.add(cell, bparts[i].columns, bparts[i].fn, *_kind(spec["metric"], bparts[i]))
                by.setdefault(attr, {})[v] = cell
            if by:
                entry["by"] = by
            entries.append(entry)
    return entries


def _kind(metric_name: str, part: Any) -> tuple[str, float]:
    """How a metric part's CI is computed: Wilson for shares, t for plain means, else bootstrap."""
    if part.fn is not ratio or np.asarray(part.columns).shape[1] != 2:
        return "bootstrap", 1.0
    if metric_name in PROPORTION_METRICS:
        return "proportion", 100.0 if part.scale == "0..100" else 1.0
    return "mean", 1.0


def _flag_constant(target: dict[str, Any], values: np.ndarray) -> None:
    if is_constant(values):
        target["uninformative"] = True
        target["uninformative_reason"] = (
            "the score is the same on every record (a degenerate scorer output, e.g. a random-weights model)"
        )
        target.setdefault("warnings", []).append("uninformative: the score is constant")


def _is_binary(values: np.ndarray) -> bool:
    v = values[np.isfinite(values)]
    return bool(v.size) and bool(np.all((v == 0) | (v == 1)))


def _gap_fn(n_groups: int) -> Callable[[np.ndarray], np.ndarray]:
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


def _group_entries(
    frame: Frame,
    comparisons: list[tuple[str, str, np.ndarray]],
    keys: list[str],
    pending: _Pending,
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
                "higher_is": score_direction(key),
                "by_group": {},
                "overall": {"n": n_all},
                "gap": {},
                "vs_overall": {},
            }
            kind = "proportion" if _is_binary(v[in_cmp]) else "mean"
            constant = is_constant(v[in_cmp])
            for gi, g in enumerate(groups):
                cell = {"n": ns[gi]}
                pending.add(cell, cols[gi], ratio, kind)
                entry["by_group"][g] = cell
                diff: dict[str, Any] = {}
                pending.add(diff, columns, _vs_overall_fn(gi, len(groups)))
                entry["vs_overall"][g] = diff
            pending.add(entry["overall"], c_all, ratio, kind)
            entry["mean_of_groups"] = {"n": n_all}  # the unweighted mean of the group means (charts' line)
            pending.add(entry["mean_of_groups"], columns, _mean_of_groups_fn(len(groups)))
            entry["gap"].update(_honest_gap(frame, in_cmp, values, groups, v, stats.ci_level))
            if constant:
                _flag_constant(entry["gap"], v[in_cmp])
            seed = stats.seed + zlib.crc32(f"gap/{label}/{key}".encode())
            entry["gap"].update(_gap_test(frame, in_cmp, values, groups, v, stats.permutations, seed))
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


def _honest_gap(
    frame: Frame, in_cmp: np.ndarray, values: np.ndarray, groups: list[str], v: np.ndarray, level: float
) -> dict[str, Any]:
    """The gap as the largest pairwise difference, with intervals that can include 0
    (audit/intervals.py ``pairwise_gap``)."""
    sel = in_cmp & np.isfinite(v)
    pair = frame.attr("pair_id")
    if frame.has_pairs and all(p is not None for p in pair[sel]):
        cells = _set_cell_means(frame, sel, values, groups, v)
        res = pairwise_gap(groups, level, cells=cells)
        n_clusters = int(cells.shape[0])
    else:
        items, inv = np.unique(frame.item[sel], return_inverse=True)
        sums = np.bincount(inv, weights=v[sel], minlength=items.size)
        counts = np.bincount(inv, minlength=items.size).astype(float)
        g_codes = {g: i for i, g in enumerate(groups)}
        labels = np.zeros(items.size, dtype=int)
        labels[inv] = [g_codes[g] for g in values[sel]]
        res = pairwise_gap(groups, level, sums=sums, counts=counts, labels=labels)
        n_clusters = int(items.size)
    out: dict[str, Any] = {k: clean_float(res[k]) for k in ("estimate", "ci_low", "ci_high")}
    out["n_clusters"] = n_clusters
    out["method"] = res.get("interval", "no pair with 2 or more clusters")
    out["pairs"] = [
        {**p, **{k: clean_float(p[k]) for k in ("diff", "se", "ci_low", "ci_high")}} for p in res["pairs"]
    ]
    if n_clusters < MIN_CLUSTERS_WARN and out["ci_low"] is not None:
        out["warnings"] = [f"CI from only {n_clusters} clusters (fewer than {MIN_CLUSTERS_WARN}): it may under-cover"]
    return out


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
        items, inv = np.unique(frame.item[sel], return_inverse=True)
        sums = np.bincount(inv, weights=v[sel], minlength=items.size)
        counts = np.bincount(inv, minlength=items.size).astype(float)
        g_codes = {g: i for i, g in enumerate(groups)}
        labels = np.zeros(items.size, dtype=int)
        labels[inv] = [g_codes[g] for g in values[sel]]
        n_perm = min(permutations, max(999, 20_000_000 // max(items.size, 1)))
        _, p = gap_test_between_units(sums, counts, labels, len(groups), n_perm, seed)
        how = f"permutation of group labels across {items.size} prompts ({n_perm})"
    return {"p_value": clean_float(p), "test": how}


def _finish_gaps(groups: list[dict[str, Any]]) -> None:
    for entry in groups:
        est = {g: c.get("estimate") for g, c in entry["by_group"].items() if c.get("estimate") is not None}
        if len(est) >= 2:
            entry["gap"]["max_group"] = max(est, key=lambda g: est[g])
            entry["gap"]["min_group"] = min(est, key=lambda g: est[g])


def _paired_tests(
    frame: Frame, comparisons: list[tuple[str, str, np.ndarray]], keys: list[str], stats: StatsSettings
) -> list[dict[str, Any]]:
    """Sign-flip tests between every two groups of a comparison, on per-counterfactual-set means."""
    if not frame.has_pairs:
        return []
    pair = frame.attr("pair_id")
    tests: list[dict[str, Any]] = []
    for label, attr, mask in comparisons:
        values = frame.attr(attr)
        m = mask & (pair != None)  # noqa: E711 - elementwise on an object array
        groups = sorted({v for v in values[m] if v is not None})
        if not 2 <= len(groups) <= MAX_GROUPS:
            continue
        pair_codes = {p: i for i, p in enumerate(sorted({p for p in pair[m]}))}
        g_codes = {g: i for i, g in enumerate(groups)}
        sel = m & np.isin(values, groups)
        pi = np.array([pair_codes[p] for p in pair[sel]], dtype=int)
        gi = np.array([g_codes[g] for g in values[sel]], dtype=int)
        cell = pi * len(groups) + gi
        size = len(pair_codes) * len(groups)
        for key in keys:
            v = frame.score(key)[sel]
            ok = np.isfinite(v)
            sums = np.bincount(cell[ok], weights=v[ok], minlength=size).reshape(-1, len(groups))
            cnts = np.bincount(cell[ok], minlength=size).reshape(-1, len(groups))
            with np.errstate(invalid="ignore", divide="ignore"):
                means = np.where(cnts > 0, sums / np.maximum(cnts, 1), np.nan)
            for a in range(len(groups)):
                for b in range(a + 1, len(groups)):
                    both = np.isfinite(means[:, a]) & np.isfinite(means[:, b])
                    if both.sum() < 2:
                        continue
                    d = means[both, a] - means[both, b]
                    seed = stats.seed + zlib.crc32(f"{label}/{key}/{groups[a]}/{groups[b]}".encode())
                    t = sign_flip_test(d, stats.permutations, seed)
                    tests.append(
                        {
                            "score": key,
                            "attribute": label,
                            "group_a": groups[a],
                            "group_b": groups[b],
                            **t.to_dict(),
                        }
                    )
    for t, p in zip(tests, holm([t["p_value"] for t in tests]), strict=True):
        t["p_holm"] = clean_float(p) if p is not None else None
    return tests


def _worst_examples(frame: Frame, keys: list[str], n: int = N_WORST) -> list[dict[str, Any]]:
    out = []
    for key in keys:
        direction = score_direction(key)
        if direction not in ("worse", "better"):
            continue
        v = frame.score(key)
        ok = np.flatnonzero(np.isfinite(v))
        if ok.size == 0:
            continue
        order = ok[np.argsort(-v[ok] if direction == "worse" else v[ok], kind="stable")][:n]
        for i in order:
            r = frame.records[i]
            get = r.get if isinstance(r, dict) else lambda k, r=r: getattr(r, k)
            out.append(
                {
                    "key": get("key"),
                    "prompt": get("prompt"),
                    "completion": get("completion"),
                    "score": key,
                    "value": clean_float(v[i]),
                    "attributes": frame.attributes[i],
                }
            )
    return out


def summarize_suite(
    suite_id: str,
    suite_manifest: dict[str, Any],
    records: Sequence[Any],
    manifest: dict[str, Any],
    stats: StatsSettings,
) -> dict[str, Any]:
    frame = Frame(records)
    protocol = protocol_of(suite_manifest, manifest)
    task = suite_manifest.get("task", "generate")
    specs = list(suite_manifest.get("metrics") or []) or _default_metric_specs(frame, task)
    if task == "likelihood":
        _derive_likelihood_scores(frame, specs)
    unit = "counterfactual sets" if frame.has_pairs else "prompts"
    method = f"bootstrap ({stats.resamples}, percentile, resampling {unit})"
    bank = ColumnBank(frame.n_clusters)
    pending = _Pending(bank, stats.ci_level)
    metrics = _metric_entries(frame, specs, pending, method, protocol["text"])
    keys = _group_score_keys(frame)
    if (
        task == "likelihood"
        and "stereotype_preferred" not in keys
        and "stereotype_preferred" in frame._score_cache
    ):
        keys.append("stereotype_preferred")
    comparisons = _comparisons(frame, suite_manifest.get("group_attributes") or [])
    groups = _group_entries(frame, comparisons, keys, pending, stats)
    bank.run(stats.resamples, stats.seed + zlib.crc32(suite_id.encode()))
    pending.fill()
    _finish_gaps(groups)
    for g in groups:
        g["method"] = method
        g["protocol"] = protocol["text"]
    tests = _paired_tests(frame, comparisons, keys, stats)
    for t in tests:
        t["protocol"] = protocol["text"]
    return {
        "title": suite_manifest.get("title", suite_id),
        "task": task,
        "n_items": frame.n_items,
        "n_records": frame.n,
        "n_items_planned": suite_manifest.get("n_items"),
        "resampling_unit": unit,
        "protocol": protocol,
        "metrics": metrics,
        "groups": groups,
        "tests": tests,
        "gates": [],
        "examples": {"worst": _worst_examples(frame, keys), **_disagreement(frame)},
        **_disagreement_summary(frame),
    }


def _disagreement(frame: Frame) -> dict[str, Any]:
    """examples["disagreement"] when records carry two toxicity opinions (audit/disagreement.py)."""
    from audit.disagreement import disagreement_examples

    rows = disagreement_examples(frame)
    return {"disagreement": rows} if rows else {}


def _disagreement_summary(frame: Frame) -> dict[str, Any]:
    from audit.disagreement import disagreement_summary

    found = disagreement_summary(frame)
    return {"scorer_disagreement": found} if found else {}


# --------------------------------------------------------------------------- scorer self-audit


def scorer_self_audit(manifest: dict[str, Any], threshold: float = 0.5) -> dict[str, Any]:
    """Run the toxicity scorer's self-audit when any suite used a toxicity scorer."""
    used = []
    for s in (manifest.get("suites") or {}).values():
        for name in s.get("scorers", []):
            if name.split(":", 1)[0] in TOXICITY_SCORERS and name not in used:
                used.append(name)
    if not used:
        return {}
    name = used[0]
    version = ((manifest.get("scorers") or {}).get(name) or {}).get("version")
    try:
        from audit.scorers.self_audit import run_self_audit
    except ImportError as exc:
        return {
            "toxicity": {
                "scorer": name,
                "version": version,
                "threshold": threshold,
                "note": f"self-audit unavailable: {exc}",
            }
        }
    try:
        result = dict(run_self_audit(name, threshold))
    except Exception as exc:  # a report must still be written
        return {
            "toxicity": {
                "scorer": name,
                "version": version,
                "threshold": threshold,
                "note": f"self-audit failed: {type(exc).__name__}: {exc}",
            }
        }
    result.setdefault("scorer", name)
    result.setdefault("threshold", threshold)
    if version is not None:
        result.setdefault("version", version)
    if len(used) > 1:
        result["note"] = f"audited '{name}'; the run also used {', '.join(used[1:])}"
    return {"toxicity": result}


# --------------------------------------------------------------------------- the run


def _records_by_suite(records: Sequence[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in records:
        out.setdefault(r["suite"] if isinstance(r, dict) else r.suite, []).append(r)
    return out


def build_summary(
    run_dir: Path, policy: Path | Policy | None = None, *, self_audit: bool = True, overrides: bool = True
) -> dict[str, Any]:
    """Compute the summary of a run folder (nothing is written). Reviewer overrides
    (``overrides.jsonl``, see audit/overrides.py) are applied first unless ``overrides=False``."""
    from audit import overrides as ovr

    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    manifest = read_manifest(run_dir)
    records, damaged = read_records_checked(run_dir, manifest)  # F: unreadable lines, short or empty run
    review = ovr.load_overrides(run_dir) if overrides else []
    by_suite = _records_by_suite(ovr.apply(records, review))
    suites: dict[str, dict[str, Any]] = {}
    for sid, sm in (manifest.get("suites") or {}).items():
        suites[sid] = summarize_suite(sid, sm, by_suite.get(sid, []), manifest, pol.stats)
    suite_gates = {sid: list(sm.get("gates") or []) for sid, sm in (manifest.get("suites") or {}).items()}
    results = evaluate_all(suites, suite_gates, pol if policy is not None else None)
    unmatched = []
    for r in results:
        if r.get("suite") in suites:
            suites[r["suite"]]["gates"].append(r)
        else:
            unmatched.append(r)
    model = manifest.get("model") or {}
    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": manifest.get("run_id"),
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "status": manifest.get("status"),
        "model": {k: model.get(k) for k in ("name", "backend", "fingerprint", "random_weights")},
        "stats": pol.stats.model_dump(),
        "policy": str(policy) if isinstance(policy, str | Path) else None,
        "suites": suites,
        "scorer_audit": scorer_self_audit(manifest) if self_audit else {},
        "gates": {**gate_counts(results, pol.on_inconclusive), "unmatched": unmatched},
        "damaged": damaged,
    }
    from audit.scorers.validity import scorer_validity  # C: validity card (contract 5)

    summary["scorer_validity"] = scorer_validity(manifest, summary["scorer_audit"], records)
    if damaged:  # a damaged, empty or short run never passes (contract 4)
        summary["gates"]["passed"] = False
    if review:
        before = build_summary(run_dir, policy, self_audit=False, overrides=False)
        summary["overrides"] = ovr.describe(review, records, before, summary)
    return summary


def all_gate_results(summary: dict[str, Any]) -> list[dict[str, Any]]:
    out = [g for s in summary.get("suites", {}).values() for g in s.get("gates", [])]
    return out + list(summary.get("gates", {}).get("unmatched", []))


def write_reports(run_dir: Path, summary: dict[str, Any]) -> None:
    from audit.report import render_html, render_markdown

    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    atomic_write_json(run_dir / "summary.json", summary)
    atomic_write_text(run_dir / "report.md", render_markdown(summary, manifest))
    atomic_write_text(run_dir / "report.html", render_html(summary, manifest))
    for name in ("summary.json", "report.md", "report.html"):  # readable like records.jsonl
        os.chmod(run_dir / name, 0o644)


def print_gates(summary: dict[str, Any], echo: Callable[[str], None] = print) -> None:
    if (summary.get("model") or {}).get("random_weights"):
        echo("note: this run used a RANDOM-WEIGHTS model; its figures say nothing about a real model")
    results = all_gate_results(summary)
    if not results:
        echo("gates: none defined (suite defaults or --policy)")
        return
    for r in results:
        echo(gate_line(r))
    g = summary["gates"]
    verdicts = [verdict_of(r) for r in results]
    thin = [r for r in results if isinstance(r.get("n_clusters"), int) and r["n_clusters"] < MIN_CLUSTERS_WARN]
    if thin:
        fewest = min(r["n_clusters"] for r in thin)
        echo(
            f"warning: {len(thin)} gate(s) rest on fewer than {MIN_CLUSTERS_WARN} prompts/sets (as few as "
            f"{fewest}; a small --limit?): their verdicts are unreliable; "
            "`lm-audit plan --from RUN` says how many each gate needs"
        )
    counts = ", ".join(f"{verdicts.count(v)} {v.lower()}" for v in ("PASS", "FAIL", "INCONCLUSIVE", "ERROR"))
    oi = g.get("on_inconclusive", "fail")
    how = f"; INCONCLUSIVE counts as {'failed' if oi == 'fail' else 'passed'} (on_inconclusive: {oi})"
    echo(
        f"gates: {g['n_total'] - g['n_failed']}/{g['n_total']} passed ({counts})"
        + (how if "INCONCLUSIVE" in verdicts else "")
        + ("" if g["passed"] else " -> FAILED")
    )


def finalize_run(run_dir: Path, policy: Path | None = None, echo: Callable[[str], None] = print) -> int:
    """Write summary.json, report.md and report.html into ``run_dir``; print gates; 0 if all pass else 1."""
    summary = build_summary(Path(run_dir), policy)
    write_reports(Path(run_dir), summary)
    print_gates(summary, echo)
    return 0 if summary["gates"]["passed"] else 1


def load_summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))
