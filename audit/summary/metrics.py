"""The declared metrics of one suite's summary (overall and per ``by`` attribute), the default
metrics of a suite that declares none, and the 0/1 ``stereotype_preferred`` score of likelihood
suites.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audit.metrics.registry import METRICS, Frame, compute_metric
from audit.stats.resampling import clean_float, ratio
from audit.summary.estimates import Pending, flag_constant

# metrics that are shares of 0/1 outcomes: Wilson intervals adjusted for clustering
PROPORTION_METRICS = ("rate", "toxicity_probability", "toxic_fraction", "accuracy", "refusal_rate", "pct_stereotype",
                      "attack_success", "attack_undetermined", "attack_benign_refusal", "attack_hit_at_k")


def default_metric_specs(frame: Frame, task: str) -> list[dict[str, Any]]:
    keys = frame.score_keys()
    if task == "likelihood" and {"ll_stereotype", "ll_anti_stereotype"} <= set(keys):
        return [{"metric": "pct_stereotype", "score": None, "by": [], "name": None, "params": {}}]
    return [
        {"metric": "mean", "score": k, "by": [], "name": f"mean_{k}", "params": {}}
        for k in keys
        if not k.startswith("ll_")
    ]


def derive_likelihood_scores(frame: Frame, specs: list[dict[str, Any]]) -> None:
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


def metric_entries(
    frame: Frame, specs: list[dict[str, Any]], pending: Pending, protocol: str
) -> list[dict[str, Any]]:
    """Every declared metric's entries (and its ``by`` cells), their intervals registered in
    ``pending`` (each figure names its own method when ``pending`` fills it)."""
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
                "higher_is": part.higher_is,
                "ideal": part.ideal,
                "scale": part.scale,
                "protocol": protocol,
            }
            if part.extra:
                entry["extra"] = {k: clean_float(v) for k, v in part.extra.items()}
            kind, scale = _kind(spec["metric"], part)
            if spec["metric"] == "mean" and kind == "mean" and base["score"]:
                flag_constant(entry, frame.score(base["score"]))
            value_range = part_range(frame, spec["metric"], part, base["score"])
            pending.add(entry, part.columns, part.fn, kind, scale, value_range, part.ci)
            by: dict[str, dict[str, Any]] = {}
            for (attr, v), bparts in by_parts.items():
                if bparts[i].n == 0:  # a group this metric's data never holds (StereoSet's types in CrowS-Pairs)
                    continue
                cell: dict[str, Any] = {"n": bparts[i].n}
                if bparts[i].extra:
                    cell["extra"] = {k: clean_float(x) for k, x in bparts[i].extra.items()}
                pending.add(cell, bparts[i].columns, bparts[i].fn, *_kind(spec["metric"], bparts[i]),
                            part_range(frame, spec["metric"], bparts[i], base["score"]), bparts[i].ci)
                by.setdefault(attr, {})[v] = cell
            if by:
                entry["by"] = by
            entries.append(entry)
    return entries


def _kind(metric_name: str, part: Any) -> tuple[str, float]:
    """How a metric part's CI is computed (audit/summary/estimates.py): the part's own ``ci`` kind,
    else Wilson for shares, the bounded-mean interval for plain means, else linearized t."""
    if part.ci is not None:
        return str(part.ci["kind"]), 1.0
    if part.fn is not ratio or np.asarray(part.columns).shape[1] != 2:
        return "smooth", 1.0
    if metric_name in PROPORTION_METRICS:
        return "proportion", 100.0 if part.scale == "0..100" else 1.0
    return "mean", 1.0


SCALES = {"0..1": (0.0, 1.0), "0..100": (0.0, 100.0), "-1..1": (-1.0, 1.0)}


def part_range(frame: Frame, metric_name: str, part: Any, score: str | None) -> tuple[float, float] | None:
    """The range a metric part can take: the score's declared range for a mean (and an expected
    maximum) of a score, else from the part's definition (``scale``)."""
    if part.scale == "score" or metric_name == "expected_max_toxicity":
        return frame.score_range(score) or SCALES.get(part.scale)
    return SCALES.get(part.scale)
