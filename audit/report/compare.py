"""Comparing two runs (e.g. two model versions on the same suites).

For every figure both runs share — each suite metric (and part) and each group gap
``gap(score, attribute)`` — we compute the delta B − A on the prompts (clusters) both runs hold:

- a paired bootstrap CI of the delta: one weight vector over shared clusters resamples both runs
  together, so prompt difficulty cancels out;
- a paired permutation test: under "no change" the A/B labels are exchangeable within a cluster,
  so each permutation swaps A and B on a random subset of clusters (``audit.stats.paired_permutation_totals``);
- a verdict from the figure's direction (higher better, lower better, or closest to an ideal such
  as 50 for pct_stereotype): ``better``, ``worse`` or ``no significant change`` (p >= alpha).

Runs with no shared prompts fall back to independent bootstraps (no test).
A regression fails when it exceeds a threshold given with ``--max-regression`` or in the policy's
``compare.max_regression``; see docs/statistics.md.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audit.errors import UsageError
from audit.gates import CompareSettings, StatsSettings
from audit.metrics import METRICS, Frame, compute_metric
from audit.report.format import md_cell, num, pval
from audit.stats import bootstrap_totals, clean_float, paired_permutation_totals, percentile_ci
from audit.store import read_manifest, read_records


@dataclass
class Figure:
    name: str
    columns: np.ndarray  # (clusters x k) of one run
    keys: list[str]  # cluster keys, aligned with columns
    fn: Callable[[np.ndarray], np.ndarray]
    higher_is: str
    ideal: float | None


def _badness(fig_a: Figure) -> Callable[[np.ndarray], np.ndarray] | None:
    """A function of the totals that grows when the figure gets worse (None: no direction)."""
    fn, ideal = fig_a.fn, fig_a.ideal
    if ideal is not None and fig_a.higher_is == "neutral":
        return lambda t: np.abs(fn(t) - ideal)
    if fig_a.higher_is == "worse":
        return fn
    if fig_a.higher_is == "better":
        return lambda t: -fn(t)
    return None


def _metric_figures(frame: Frame, specs: list[dict[str, Any]]) -> dict[str, Figure]:
    out: dict[str, Figure] = {}
    for spec in specs:
        if spec.get("metric") not in METRICS:
            continue
        label = spec.get("name") or spec["metric"]
        try:
            parts = compute_metric(
                spec["metric"], frame, frame.all_mask(), spec.get("score"), spec.get("params")
            )
        except ValueError:
            continue
        for p in parts:
            name = f"{label}.{p.name}" if len(parts) > 1 else label
            out[name] = Figure(name, p.columns, frame.cluster_keys, p.fn, p.higher_is, p.ideal)
    return out


def _gap_figures(
    frame: Frame, group_attributes: list[str], groups_of: dict[str, list[str]]
) -> dict[str, Figure]:
    from audit.summary import _comparisons, _gap_fn, _group_score_keys

    out: dict[str, Figure] = {}
    for label, attr, mask in _comparisons(frame, group_attributes):
        values = frame.attr(attr)
        groups = groups_of.get(label) or sorted({v for v in values[mask] if v is not None})
        groups_of.setdefault(label, groups)
        if len(groups) < 2:
            continue
        for key in _group_score_keys(frame):
            v = frame.score(key)
            cols = [frame.record_ratio(v, mask & (values == g))[0] for g in groups]
            name = f"gap({key}, {label})"
            out[name] = Figure(name, np.hstack(cols), frame.cluster_keys, _gap_fn(len(groups)), "worse", None)
    return out


def _align(fig: Figure, keys: list[str]) -> np.ndarray:
    index = {k: i for i, k in enumerate(fig.keys)}
    out = np.zeros((len(keys), fig.columns.shape[1]))
    rows = [index[k] for k in keys]
    out[:] = fig.columns[rows]
    return out


def compare_figure(
    fa: Figure, fb: Figure, stats: StatsSettings, settings: CompareSettings, seed: int
) -> dict[str, Any]:
    shared = sorted(set(fa.keys) & set(fb.keys))
    bad = _badness(fb)
    a_est, b_est = float(fa.fn(fa.columns.sum(0))), float(fb.fn(fb.columns.sum(0)))
    res: dict[str, Any] = {
        "figure": fb.name,
        "a": clean_float(a_est),
        "b": clean_float(b_est),
        "higher_is": fb.higher_is,
        "ideal": fb.ideal,
        "n_shared": len(shared),
    }
    if shared:
        xa, xb = _align(fa, shared), _align(fb, shared)
        k = xa.shape[1]
        reps = bootstrap_totals(np.hstack([xa, xb]), stats.resamples, seed)
        ra, rb = reps[:, :k], reps[:, k:]
        delta = float(fb.fn(xb.sum(0)) - fa.fn(xa.sum(0)))
        lo, hi = percentile_ci(fb.fn(rb) - fa.fn(ra), stats.ci_level)
        _, p = paired_permutation_totals(xa, xb, fb.fn, stats.permutations, seed + 1)
        res["method"] = (
            f"paired on {len(shared)} shared clusters: bootstrap ({stats.resamples}), permutation ({stats.permutations})"
        )
        if bad is not None:
            worsening = float(bad(xb.sum(0)) - bad(xa.sum(0)))
            w_lo, w_hi = percentile_ci(bad(rb) - bad(ra), stats.ci_level)
            _, p_bad = paired_permutation_totals(xa, xb, bad, stats.permutations, seed + 2)
        else:
            worsening, w_lo, w_hi, p_bad = float("nan"), float("nan"), float("nan"), p
    else:
        ra = bootstrap_totals(fa.columns, stats.resamples, seed)
        rb = bootstrap_totals(fb.columns, stats.resamples, seed + 1)
        delta = b_est - a_est
        lo, hi = percentile_ci(fb.fn(rb) - fa.fn(ra), stats.ci_level)
        p = None
        res["method"] = f"unpaired (no shared prompts): independent bootstraps ({stats.resamples})"
        if bad is not None:
            worsening = float(bad(fb.columns.sum(0)) - bad(fa.columns.sum(0)))
            w_lo, w_hi = percentile_ci(bad(rb) - bad(ra), stats.ci_level)
        else:
            worsening, w_lo, w_hi = float("nan"), float("nan"), float("nan")
        p_bad = None
    res.update(
        delta=clean_float(delta),
        ci_low=clean_float(lo),
        ci_high=clean_float(hi),
        p_value=clean_float(p) if p is not None else None,
        worsening=clean_float(worsening),
        worsening_ci_low=clean_float(w_lo),
        worsening_ci_high=clean_float(w_hi),
    )
    if p_bad is not None:
        significant = p_bad < settings.alpha
    else:
        significant = (
            np.isfinite(w_lo) and (w_lo > 0 or w_hi < 0) if bad is not None else bool(lo > 0 or hi < 0)
        )
    if bad is None:
        res["verdict"] = "changed" if significant else "no significant change"
    elif not significant or not np.isfinite(worsening) or worsening == 0:
        res["verdict"] = "no significant change"
    else:
        res["verdict"] = "worse" if worsening > 0 else "better"
    return res


def _threshold_for(suite: str, figure: str, thresholds: dict[str, float]) -> float | None:
    for key in (f"{suite}/{figure}", f"{suite}:{figure}", figure, "*"):
        if key in thresholds:
            return thresholds[key]
    return None


def judge(res: dict[str, Any], threshold: float | None, bound: str) -> bool | None:
    """True when the figure regressed beyond the threshold (None: no threshold)."""
    if threshold is None:
        return None
    w = res.get("worsening")
    if w is None:
        return False
    if bound == "estimate":
        return w > threshold
    if bound == "conservative":
        hi = res.get("worsening_ci_high")
        return hi is not None and hi > threshold
    return res["verdict"] == "worse" and w > threshold


def compare_runs(
    run_a: Path,
    run_b: Path,
    stats: StatsSettings | None = None,
    settings: CompareSettings | None = None,
    max_regression: dict[str, float] | None = None,
) -> dict[str, Any]:
    stats = stats or StatsSettings()
    settings = settings or CompareSettings()
    thresholds = {**settings.max_regression, **(max_regression or {})}
    ma, mb = read_manifest(run_a), read_manifest(run_b)
    shared_suites = [s for s in mb.get("suites", {}) if s in ma.get("suites", {})]
    if not shared_suites:
        raise UsageError(f"{run_a} and {run_b} share no suite; nothing to compare")
    ra_all, rb_all = read_records(run_a), read_records(run_b)
    from audit.summary import protocol_of

    suites: dict[str, Any] = {}
    n_regressed = 0
    for sid in shared_suites:
        sa, sb = ma["suites"][sid], mb["suites"][sid]
        fa_frame = Frame([r for r in ra_all if r.suite == sid])
        fb_frame = Frame([r for r in rb_all if r.suite == sid])
        specs = list(sb.get("metrics") or []) or list(sa.get("metrics") or [])
        fig_a = _metric_figures(fa_frame, specs)
        fig_b = _metric_figures(fb_frame, specs)
        groups_of: dict[str, list[str]] = {}
        attrs = list(sb.get("group_attributes") or [])
        fig_b.update(_gap_figures(fb_frame, attrs, groups_of))
        fig_a.update(_gap_figures(fa_frame, attrs, groups_of))
        pa, pb = protocol_of(sa, ma)["text"], protocol_of(sb, mb)["text"]
        warnings = []
        if pa != pb:
            warnings.append(f"protocols differ: A '{pa}' vs B '{pb}'; deltas mix model and protocol changes")
        results = []
        for name in fig_b:
            if name not in fig_a:
                continue
            seed = stats.seed + zlib.crc32(f"{sid}/{name}".encode())
            res = compare_figure(fig_a[name], fig_b[name], stats, settings, seed)
            thr = _threshold_for(sid, name, thresholds)
            res["max_regression"] = thr
            res["regressed"] = judge(res, thr, settings.bound)
            n_regressed += bool(res["regressed"])
            results.append(res)
        suites[sid] = {"protocol_a": pa, "protocol_b": pb, "warnings": warnings, "figures": results}
    unknown = [
        k
        for k in thresholds
        if k != "*"
        and not any(
            k in (r["figure"], f"{sid}/{r['figure']}", f"{sid}:{r['figure']}")
            for sid, s in suites.items()
            for r in s["figures"]
        )
    ]
    return {
        "schema_version": 1,
        "run_a": {"path": str(run_a), "run_id": ma.get("run_id"), "model": ma.get("model", {}).get("name")},
        "run_b": {"path": str(run_b), "run_id": mb.get("run_id"), "model": mb.get("model", {}).get("name")},
        "alpha": settings.alpha,
        "bound": settings.bound,
        "stats": stats.model_dump(),
        "suites": suites,
        "unknown_thresholds": unknown,
        "passed": n_regressed == 0 and not unknown,
        "n_regressed": n_regressed,
    }


def render_compare_markdown(result: dict[str, Any]) -> str:
    a, b = result["run_a"], result["run_b"]
    lines = [
        f"# lm-audit compare: {md_cell(a['run_id'])} (A) → {md_cell(b['run_id'])} (B)",
        "",
        f"A: `{md_cell(a['model'])}`; B: `{md_cell(b['model'])}`. Delta = B − A with a paired "
        f"{int(100 * result['stats']['ci_level'])}% bootstrap CI; p from a paired permutation test; "
        f"verdict at alpha = {result['alpha']}.",
        "",
    ]
    for sid, s in result["suites"].items():
        lines += [f"## {md_cell(sid)}", "", f"Protocol: {md_cell(s['protocol_b'])}", ""]
        lines += [f"> warning: {md_cell(w)}" for w in s["warnings"]]
        lines += [
            "| figure | A | B | delta [CI] | p | verdict | max regression | result |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in s["figures"]:
            result_word = {True: "**REGRESSED**", False: "ok", None: ""}[r["regressed"]]
            lines.append(
                f"| {md_cell(r['figure'])} | {num(r['a'])} | {num(r['b'])} | {num(r['delta'])} "
                f"[{num(r['ci_low'])}, {num(r['ci_high'])}] | {pval(r['p_value'])} | {r['verdict']} | "
                f"{num(r['max_regression'])} | {result_word} |"
            )
        lines.append("")
    for k in result.get("unknown_thresholds", []):
        lines.append(f"error: threshold for unknown figure '{md_cell(k)}'")
    lines.append(f"Result: {'PASS' if result['passed'] else 'FAIL'} ({result['n_regressed']} regressed)")
    return "\n".join(lines) + "\n"


def compare_lines(result: dict[str, Any]) -> list[str]:
    out = []
    for sid, s in result["suites"].items():
        for w in s["warnings"]:
            out.append(f"warning {sid}: {w}")
        for r in s["figures"]:
            word = "REGRESSED" if r["regressed"] else ("ok" if r["regressed"] is False else "-")
            out.append(
                f"{word:9} {sid}  {r['figure']}: {num(r['a'])} -> {num(r['b'])}, delta {num(r['delta'])} "
                f"[{num(r['ci_low'])}, {num(r['ci_high'])}], p={pval(r['p_value'])}: {r['verdict']}"
            )
    for k in result.get("unknown_thresholds", []):
        out.append(f"ERROR     --max-regression names '{k}', which is not a figure of both runs")
    out.append(f"compare: {'PASS' if result['passed'] else 'FAIL'} ({result['n_regressed']} regressed)")
    return out
