"""Runs and figures for comparisons: read run folders, refuse damaged ones, extract every comparable
figure as per-cluster columns, and account for the items each run holds.

A *figure* is a suite metric (or one part of it) or a group gap ``gap(score, attribute)``, held as
the per-cluster totals of one run (``audit.stats.resampling.ColumnBank`` style: clusters x columns plus a
function of the column totals). Clusters are prompts, or counterfactual sets when the suite pairs
prompts, so two runs of one suite line up cluster by cluster.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audit.core.errors import UsageError
from audit.metrics.registry import METRICS, Frame, compute_metric
from audit.stats.intervals import is_constant
from audit.store.overrides import OVERRIDES, apply, effective, load_overrides
from audit.store.run_store import read_manifest, read_records_checked

# metrics whose per-record (or per-prompt) outcome is 0/1: (numerator column, denominator column, scale)
_BINARY_METRICS: dict[str, tuple[int, int, float]] = {
    "rate": (0, 1, 1.0),
    "refusal_rate": (0, 1, 1.0),
    "toxic_fraction": (0, 1, 1.0),
    "toxicity_probability": (0, 1, 1.0),
    "pct_stereotype": (0, 1, 100.0),
}
_BINARY_PARTS: dict[tuple[str, str], tuple[int, int, float]] = {("stereoset", "ss"): (0, 2, 100.0)}
# metrics that average a score: binary when every value of that score is 0 or 1
_MEAN_METRICS = {"mean", "accuracy"}
N_EXAMPLES = 5


class DamagedRunError(UsageError):
    """A run that is damaged or empty: it can never be part of a passing comparison."""


@dataclass
class Binary:
    """Where a 0/1 figure keeps its successes and trials among its columns; ``scale`` is 100 for
    percentages (pct_stereotype, StereoSet ss)."""

    num: int
    den: int
    scale: float


@dataclass
class Figure:
    name: str
    columns: np.ndarray  # (clusters x k) of one run
    keys: list[str]  # cluster keys, aligned with columns
    fn: Callable[[np.ndarray], np.ndarray]
    higher_is: str
    ideal: float | None
    kind: str = "metric"  # "metric" or "gap"
    binary: Binary | None = None
    # the score it reads is constant in this run (a random-weights model's sentiment is always 0):
    # no signal, never ranked or called better or worse
    uninformative: bool = False

    def rows(self, keys: Sequence[str]) -> np.ndarray:
        """The columns of ``keys`` (clusters this run holds), in that order."""
        index = {k: i for i, k in enumerate(self.keys)}
        return self.columns[[index[k] for k in keys]] if len(keys) else self.columns[:0]

    def present(self) -> set[str]:
        """Clusters with data for this figure (a cluster whose score is missing everywhere is absent)."""
        has = np.any(self.columns != 0, axis=1)
        return {k for k, h in zip(self.keys, has, strict=True) if h}


@dataclass
class RunData:
    path: Path
    label: str
    manifest: dict[str, Any]
    records: dict[str, list[Any]]  # suite -> records
    summary: dict[str, Any] | None = None
    n_records: int = 0
    info: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- reading runs


def _load_summary(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "summary.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def damage_of(run_dir: Path, manifest: dict[str, Any], summary: dict[str, Any] | None) -> tuple[list[Any], str | None]:
    """A run's records, and why it cannot be compared (damaged, empty, short), or None when whole.

    The store reader (``audit.store.run_store.read_records_checked``) finds unreadable lines, no records and
    fewer records than the manifest promises; ``summary["damaged"]`` is honoured
    as well, so a run once marked damaged stays out of comparisons until it is rebuilt.
    """
    records, damage = read_records_checked(run_dir, manifest)
    if damage:
        return records, str(damage.get("reason") or "damaged")
    marked = (summary or {}).get("damaged")
    if marked:
        reason = marked.get("reason") if isinstance(marked, dict) else None
        return records, f"summary.json marks it damaged ({reason or marked})"
    return records, None


def load_runs(paths: Sequence[Path]) -> list[RunData]:
    """Read run folders for a comparison; a damaged or empty one raises ``DamagedRunError``."""
    runs: list[RunData] = []
    labels: dict[str, int] = {}
    for p in paths:
        path = Path(p)
        manifest = read_manifest(path)
        summary = _load_summary(path)
        records, problem = damage_of(path, manifest, summary)
        label = str(manifest.get("run_id") or path.name)
        if label in labels:
            labels[label] += 1
            label = f"{label}#{labels[label]}"
        else:
            labels[label] = 1
        if problem:
            raise DamagedRunError(f"run {path} cannot be compared: {problem}")
        # reviewer overrides count here as in every figure of the run; a bad file refuses (exit 2)
        review = load_overrides(path, records, manifest)
        n_applied = len({ov.key for ov in effective(review)} & {r.key for r in records})
        records = apply(records, review)
        by_suite: dict[str, list[Any]] = {}
        for r in records:
            by_suite.setdefault(r.suite, []).append(r)
        model = manifest.get("model") or {}
        info = {
            "label": label,
            "path": str(path),
            "run_id": manifest.get("run_id"),
            "model": model.get("name"),
            "random_weights": bool(model.get("random_weights")),
            "seed": manifest.get("seed"),
            "selection_seed": manifest.get("selection_seed"),
            "n_records": len(records),
            "overrides": {"n_lines": len(review), "n_applied": n_applied, "trail": str(path / OVERRIDES)} if review else None,
        }
        runs.append(RunData(path, label, manifest, by_suite, summary, len(records), info))
    return runs


# --------------------------------------------------------------------------- figures


def _score_is_binary(frame: Frame, score: str | None) -> bool:
    if not score:
        return False
    v = frame.score(score)
    v = v[np.isfinite(v)]
    return bool(v.size) and bool(np.all((v == 0) | (v == 1)))


def metric_figures(frame: Frame, specs: list[dict[str, Any]]) -> dict[str, Figure]:
    out: dict[str, Figure] = {}
    for spec in specs:
        metric = spec.get("metric")
        if metric not in METRICS:
            continue
        label = spec.get("name") or metric
        score = spec.get("score") or METRICS[metric].default_score
        try:
            parts = compute_metric(metric, frame, frame.all_mask(), spec.get("score"), spec.get("params"))
        except (KeyError, ValueError):
            continue
        for p in parts:
            name = f"{label}.{p.name}" if len(parts) > 1 else label
            binary = _BINARY_PARTS.get((metric, p.name)) or (_BINARY_METRICS.get(metric) if len(parts) == 1 else None)
            constant = binary is None and bool(score) and is_constant(frame.score(str(score)))
            if binary is None and not constant and metric in _MEAN_METRICS and _score_is_binary(frame, score):
                binary = (0, 1, 1.0)
            out[name] = Figure(
                name, p.columns, frame.cluster_keys, p.fn, p.higher_is, p.ideal,
                binary=Binary(*binary) if binary else None, uninformative=constant,
            )
    return out


def gap_figures(frame: Frame, group_attributes: list[str], groups_of: dict[str, list[str]]) -> dict[str, Figure]:
    """``gap(score, attribute)`` for every group comparison; ``groups_of`` fixes each comparison's
    groups across runs (the first run seen decides)."""
    from audit.summary.groups import gap_fn, group_comparisons, group_score_keys

    out: dict[str, Figure] = {}
    for label, attr, mask in group_comparisons(frame, group_attributes):
        values = frame.attr(attr)
        groups = groups_of.setdefault(label, sorted({v for v in values[mask] if v is not None}))
        if len(groups) < 2:
            continue
        for key in group_score_keys(frame):
            v = frame.score(key)
            cols = [frame.record_ratio(v, mask & (values == g))[0] for g in groups]
            name = f"gap({key}, {label})"
            out[name] = Figure(
                name, np.hstack(cols), frame.cluster_keys, gap_fn(len(groups)), "worse", None, kind="gap",
                uninformative=is_constant(v[mask & np.isin(values, groups)]),
            )
    return out


def suite_figures(
    records: list[Any],
    suite_manifest: dict[str, Any],
    specs: list[dict[str, Any]],
    groups_of: dict[str, list[str]],
    directions: dict[str, str] | None = None,
) -> dict[str, Figure]:
    """Every comparable figure of one suite in one run (``directions``: the run's scorer_directions).
    A run with attacks: the suite's own figures from its plain prompts, the attack figures from all
    its records (as its summary has them, audit/summary/attacks.py)."""
    from audit.summary.attacks import has_attacks, is_attack_spec, split_records

    if has_attacks(records):
        plain, everything = split_records(records)
        figs = suite_figures(plain, suite_manifest, [s for s in specs if not is_attack_spec(s)], groups_of, directions)
        figs.update(metric_figures(Frame(everything, directions), [s for s in specs if is_attack_spec(s)]))
        return figs
    frame = Frame(records, directions)
    try:
        from audit.summary.metrics import derive_likelihood_scores

        if suite_manifest.get("task") == "likelihood":
            derive_likelihood_scores(frame, specs)
    except ImportError:  # pragma: no cover - summary internals moved
        pass
    figs = metric_figures(frame, specs)
    figs.update(gap_figures(frame, list(suite_manifest.get("group_attributes") or []), groups_of))
    return figs


def metric_specs(runs: Sequence[RunData], sid: str) -> list[dict[str, Any]]:
    """The metrics to compare: the first run's declared ones, else the summary's defaults."""
    for run in runs:
        specs = list((run.manifest["suites"][sid].get("metrics")) or [])
        if specs:
            return specs
    from audit.summary.metrics import default_metric_specs

    return default_metric_specs(Frame(runs[0].records.get(sid, [])), runs[0].manifest["suites"][sid].get("task", ""))


# --------------------------------------------------------------------------- coverage and warnings


def item_coverage(runs: Sequence[RunData], sid: str) -> dict[str, Any]:
    """Which items each run holds in one suite, and those held by only some runs (never dropped
    silently: the counts and which runs hold them)."""
    sets = {r.label: {str(x.item_id) for x in r.records.get(sid, [])} for r in runs}
    union = set().union(*sets.values())
    shared = set.intersection(*sets.values()) if sets else set()
    groups: dict[tuple[str, ...], list[str]] = {}
    for item in sorted(union - shared):
        holders = tuple(r.label for r in runs if item in sets[r.label])
        groups.setdefault(holders, []).append(item)
    return {
        "n_items": {label: len(s) for label, s in sets.items()},
        "n_shared_items": len(shared),
        "n_items_not_shared": len(union - shared),
        "not_shared": [
            {"runs": list(holders), "n_items": len(items), "examples": items[:N_EXAMPLES]}
            for holders, items in sorted(groups.items(), key=lambda kv: -len(kv[1]))
        ],
    }


def _scorer_versions(run: RunData) -> dict[str, str]:
    out = {}
    for name, info in (run.manifest.get("scorers") or {}).items():
        if isinstance(info, dict):
            out[name] = str(info.get("version"))
    return out


def _fingerprints(run: RunData) -> dict[str, str]:
    validity = (run.summary or {}).get("scorer_validity") or {}
    return {
        name: str(v.get("fingerprint"))
        for name, v in validity.items()
        if isinstance(v, dict) and v.get("fingerprint") is not None
    }


def scorer_warnings(runs: Sequence[RunData]) -> list[str]:
    """One line per scorer whose version (manifest) or fingerprint (summary ``scorer_validity``)
    differs between runs: their differences then mix model and scorer changes."""
    out = []
    for what, get in (("version", _scorer_versions), ("fingerprint", _fingerprints)):
        per_run = [get(r) for r in runs]
        names = sorted(set().union(*per_run))
        for name in names:
            seen = {r.label: v[name] for r, v in zip(runs, per_run, strict=True) if name in v}
            if len(set(seen.values())) > 1:
                detail = ", ".join(f"{k}: {v}" for k, v in seen.items())
                out.append(f"scorer '{name}' {what} differs between runs ({detail}); differences mix model and scorer")
    return out


_SEED_RE = re.compile(r", seed=[^,]*")


def protocol_text(run: RunData, sid: str) -> str:
    from audit.summary.suite import protocol_of

    return str(protocol_of(run.manifest["suites"][sid], run.manifest)["text"])


def protocol_warning(runs: Sequence[RunData], sid: str) -> str | None:
    """Protocols that differ beyond the sampling seed (two seeds of one model are comparable)."""
    texts = {r.label: _SEED_RE.sub("", protocol_text(r, sid)) for r in runs}
    if len(set(texts.values())) <= 1:
        return None
    detail = "; ".join(f"{k} '{v}'" for k, v in texts.items())
    return f"protocols differ: {detail}; differences mix model and protocol"


def override_notes(runs: Sequence[RunData]) -> list[str]:
    """One line when any run carries reviewer overrides: they are applied to its records here, as in
    its own summary, and each run's count and trail are named."""
    if not any(r.info.get("overrides") for r in runs):
        return []
    parts = []
    for r in runs:
        ov = r.info.get("overrides")
        parts.append(
            f"{r.label}: {ov['n_applied']} applied ({ov['n_lines']} line(s) in {ov['trail']})" if ov else f"{r.label}: none"
        )
    return ["reviewer overrides are applied to the compared records: " + "; ".join(parts)]
