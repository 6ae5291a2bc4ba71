"""Which records move a figure: leave-one-out influence, for the reviewer's drill-down.

For a figure of one suite (a metric, a metric in one group, a group's mean, a gap, the figure of a
gate) ``influence(records, suite_manifest, figure)`` returns the records behind it, each with the
figure recomputed without that record (``without``) and the change (``change = without -
estimate``), largest absolute change first. The figure is computed exactly as the summary
computes it (same metric functions, same per-cluster totals), so ``estimate`` equals the
summary's point estimate.

Cost: one vectorised leave-one-cluster-out pass over every cluster (a prompt, or a
counterfactual set), then an exact leave-one-record-out recomputation for the records of the
most influential clusters only (``max_records``), so a 100k-record run stays interactive.

Figure names: ``<metric>``, ``<metric>.<part>``, ``<metric>[attr=value]`` (also
``[a=x,b=y]``), ``gap(<score>, <attribute>)`` (also ``gap(<score>, a×b)`` over cells) and
``group(<score>, <attribute>=<group>)`` for one bar of a per-group chart.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from audit.metrics.registry import METRICS, Frame, compute_metric
from audit.stats.resampling import clean_float, ratio

_GAP = re.compile(r"^gap\(\s*([^,\s]+)\s*,\s*([^)]+?)\s*\)$")
_GROUP = re.compile(r"^group\(\s*([^,\s]+)\s*,\s*([^=]+?)\s*=\s*(.+?)\s*\)$")
_CELL = re.compile(r"^(?P<label>[^\[\]]+)\[(?P<sel>[^\]]+)\]$")
CROSS = "×"


class FigureNotFound(ValueError):
    """The figure is not one this suite can compute."""


@dataclass
class _Figure:
    build: Callable[[np.ndarray], np.ndarray]  # record mask -> (clusters x k) totals
    fn: Callable[[np.ndarray], np.ndarray]
    mask: np.ndarray  # the records behind the figure


def _frame(records: Sequence[Any], suite_manifest: dict[str, Any]) -> tuple[Frame, list[dict[str, Any]]]:
    from audit.summary.metrics import default_metric_specs, derive_likelihood_scores

    frame = Frame(records)
    task = suite_manifest.get("task", "generate")
    specs = list(suite_manifest.get("metrics") or []) or default_metric_specs(frame, task)
    if task == "likelihood":
        derive_likelihood_scores(frame, specs)
    return frame, specs


def _attr_values(frame: Frame, label: str) -> np.ndarray:
    if CROSS not in label:
        return frame.attr(label)
    cols = [frame.attr(a.strip()) for a in label.split(CROSS)]
    return np.array(
        [None if any(v is None for v in vs) else CROSS.join(vs) for vs in zip(*cols, strict=True)], dtype=object
    )


def _comparison(frame: Frame, suite_manifest: dict[str, Any], label: str) -> tuple[np.ndarray, np.ndarray]:
    """(group values, comparison mask) of a gap label, as the summary forms it."""
    from audit.summary.groups import group_comparisons

    for lab, attr, mask in group_comparisons(frame, suite_manifest.get("group_attributes") or []):
        if lab == label:
            return frame.attr(attr), mask
    if CROSS in label or label in {k for a in frame.attributes for k in a}:
        return _attr_values(frame, label), frame.all_mask()
    raise FigureNotFound(f"no group comparison '{label}' in this suite")


def _ratio_groups(frame: Frame, v: np.ndarray, cmp: np.ndarray, values: np.ndarray, groups: list[str]) -> Callable[[np.ndarray], np.ndarray]:
    def build(m: np.ndarray) -> np.ndarray:
        return np.hstack([frame.record_ratio(v, m & cmp & (values == g))[0] for g in groups])

    return build


def _gap_fn(n: int) -> Callable[[np.ndarray], np.ndarray]:
    def fn(t: np.ndarray) -> np.ndarray:
        means = np.stack([ratio(t, 2 * g, 2 * g + 1) for g in range(n)], axis=-1)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(means)
            hi = np.where(ok, means, -np.inf).max(axis=-1)
            lo = np.where(ok, means, np.inf).min(axis=-1)
            return np.where(ok.sum(axis=-1) >= 2, hi - lo, np.nan)

    return fn


def _metric_figure(frame: Frame, specs: list[dict[str, Any]], label: str, selector: str | None) -> _Figure:
    """A suite metric (or one part of it), optionally within one group or cell, named as in
    summary.json: ``label`` for a single-part metric, ``label.part`` or a unique bare part name."""
    cell = frame.all_mask()
    if selector:
        for cond in selector.split(","):
            attr, _, value = cond.partition("=")
            if not value.strip():
                raise FigureNotFound(f"cannot read the selector '[{selector}]': write [attribute=value]")
            cell = cell & (frame.attr(attr.strip()) == value.strip())
    found: list[tuple[dict[str, Any], int, Any]] = []
    for spec in specs:
        if spec.get("metric") not in METRICS:
            continue
        name = str(spec.get("name") or spec["metric"])
        try:
            parts = compute_metric(spec["metric"], frame, cell, spec.get("score"), spec.get("params"))
        except (KeyError, ValueError):
            continue
        for i, p in enumerate(parts):
            full = f"{name}.{p.name}" if len(parts) > 1 else name
            if label == full:
                found = [(spec, i, p)]
                break
            if len(parts) > 1 and label == p.name:
                found.append((spec, i, p))
        if len(found) == 1 and label != found[0][2].name:
            break
    if len(found) != 1:
        raise FigureNotFound(f"no metric '{label}' in this suite")
    spec, idx, part = found[0]

    def build(m: np.ndarray) -> np.ndarray:
        return compute_metric(spec["metric"], frame, m & cell, spec.get("score"), spec.get("params"))[idx].columns

    return _Figure(build, part.fn, cell)


def _resolve(frame: Frame, specs: list[dict[str, Any]], suite_manifest: dict[str, Any], figure: str) -> _Figure:
    figure = figure.strip()
    m = _GAP.match(figure)
    if m:
        score, label = m.group(1), m.group(2).strip()
        values, cmp = _comparison(frame, suite_manifest, label)
        groups = sorted({g for g in values[cmp] if g is not None})
        v = frame.score(score)
        if len(groups) < 2 or not np.isfinite(v[cmp]).any():
            raise FigureNotFound(f"'{figure}' has fewer than two groups with a '{score}' score")
        return _Figure(_ratio_groups(frame, v, cmp, values, groups), _gap_fn(len(groups)), cmp & np.isin(values, groups))
    m = _GROUP.match(figure)
    if m:
        score, label, group = m.group(1), m.group(2).strip(), m.group(3)
        values, cmp = _comparison(frame, suite_manifest, label)
        v = frame.score(score)
        return _Figure(_ratio_groups(frame, v, cmp, values, [group]), ratio, cmp & (values == group))
    m = _CELL.match(figure)
    if m:
        return _metric_figure(frame, specs, m["label"].strip(), m["sel"])
    return _metric_figure(frame, specs, figure, None)


def influence(
    records: Sequence[Any], suite_manifest: dict[str, Any], figure: str, max_records: int = 300
) -> dict[str, Any]:
    """The records behind ``figure`` with their leave-one-out change, most influential first.

    Returns ``{"figure", "estimate", "n_records", "n_clusters", "method", "records": [{"key",
    "without", "change", "cluster", "cluster_change"}]}``; ``records`` holds at most
    ``max_records`` entries (those of the most influential clusters). Raises ``FigureNotFound``.
    """
    frame, specs = _frame(records, suite_manifest)
    fig = _resolve(frame, specs, suite_manifest, figure)
    cols = fig.build(frame.all_mask())
    total = cols.sum(axis=0)
    base = float(fig.fn(total))
    behind = np.flatnonzero(fig.mask)
    clusters = np.unique(frame.cluster[behind]) if behind.size else np.array([], dtype=int)
    with np.errstate(invalid="ignore", divide="ignore"):
        loo_cluster = np.asarray(fig.fn(total[None, :] - cols[clusters]), dtype=float) if clusters.size else np.array([])
    c_change = {int(c): float(x - base) for c, x in zip(clusters, loo_cluster, strict=True)}
    order = sorted(c_change, key=lambda c: -abs(c_change[c]) if np.isfinite(c_change[c]) else 0.0)
    rows: list[dict[str, Any]] = []
    everyone = frame.all_mask()
    for c in order:
        members = behind[frame.cluster[behind] == c]
        for i in members:
            m = everyone & (frame.cluster == c)
            m[i] = False
            part = fig.build(m)
            t = total - cols[c] + part[c]
            without = float(fig.fn(t))
            rows.append(
                {
                    "key": frame.records[i]["key"] if isinstance(frame.records[i], dict) else frame.records[i].key,
                    "without": clean_float(without),
                    "change": clean_float(without - base),
                    "cluster": frame.cluster_keys[c],
                    "cluster_change": clean_float(c_change[c]),
                }
            )
        if len(rows) >= max_records:
            break
    rows.sort(key=lambda r: -abs(r["change"]) if r["change"] is not None else 0.0)
    return {
        "figure": figure,
        "estimate": clean_float(base),
        "n_records": int(behind.size),
        "n_clusters": int(clusters.size),
        "method": "leave-one-out: the figure recomputed without each record (exact), for the records of "
        "the most influential prompts / counterfactual sets (leave-one-cluster-out)",
        "records": rows[:max_records],
    }
