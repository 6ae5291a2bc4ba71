"""Summaries: records -> statistics -> gates -> ``summary.json``, ``report.md``, ``report.html``.

``build_summary(run_dir, policy)`` summarizes each suite of a run (``audit.summary.suite``), adds
the gates, the toxicity scorer's self-audit and the scorer validity card, and applies reviewer
overrides. Writing the files is ``audit.report.write``; printing the gates ``audit.gates.text``;
both together after a run ``audit.run.finalize``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit.core.score_directions import score_directions_of, scorer_directions
from audit.gates.evaluate import (
    Policy,
    evaluate_all,
    gate_counts,
    load_policy,
)
from audit.stats.sequential import sequential_summary, spent_stats
from audit.store.run_store import read_manifest, read_records_checked
from audit.store.status import incomplete_reason, run_status
from audit.summary.override_effect import describe, override_effect
from audit.summary.suite import summarize_suite

SCHEMA_VERSION = 1
TOXICITY_SCORERS = ("toxicity",)


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
    run_dir: Path,
    policy: Path | Policy | None = None,
    *,
    self_audit: bool = True,
    overrides: bool = True,
    status: str | None = None,
) -> dict[str, Any]:
    """Compute the summary of a run folder (nothing is written). Reviewer overrides
    (``overrides.jsonl``, see audit/store/overrides.py) are applied first unless ``overrides=False``.
    A sequential run (``--until-decided``) is judged at its spent CI level (``audit.stats.sequential``);
    a run whose status is not ``complete`` (``status`` overrides what the folder says) never passes."""
    from audit.store import overrides as ovr

    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    manifest = read_manifest(run_dir)
    status = status or run_status(run_dir, manifest)
    pol = pol.model_copy(update={"stats": spent_stats(manifest, pol.stats)})
    records, damaged = read_records_checked(run_dir, manifest)  # damaged: unreadable lines, a short or empty run
    review = ovr.load_overrides(run_dir, records, manifest) if overrides else []
    by_suite = _records_by_suite(ovr.apply(records, review))
    suites: dict[str, dict[str, Any]] = {}
    for sid, sm in (manifest.get("suites") or {}).items():
        suites[sid] = summarize_suite(sid, sm, by_suite.get(sid, []), manifest, pol.stats)
    suite_gates = {sid: list(sm.get("gates") or []) for sid, sm in (manifest.get("suites") or {}).items()}
    results = evaluate_all(suites, suite_gates, pol if policy is not None else None, level=pol.stats.ci_level)
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
        "status": status,
        "model": {k: model.get(k) for k in ("name", "backend", "fingerprint", "random_weights")},
        "stats": pol.stats.model_dump(),
        "policy": str(policy) if isinstance(policy, str | Path) else None,
        "suites": suites,
        "scorer_audit": scorer_self_audit(manifest) if self_audit else {},
        "gates": {**gate_counts(results, pol.on_inconclusive), "unmatched": unmatched},
        "damaged": damaged,
    }
    from audit.scorers.validity import scorer_validity  # agreement of each scorer with reference labels

    summary["scorer_validity"] = scorer_validity(manifest, summary["scorer_audit"], records)
    summary["score_directions"] = score_directions_of(records, scorer_directions(manifest))
    if damaged:  # a damaged, empty or short run never passes
        summary["gates"]["passed"] = False
    if incomplete_reason(status):  # nor does a running, interrupted or failed one
        summary["gates"]["passed"] = False
        summary["incomplete"] = incomplete_reason(status)
    if isinstance(manifest.get("sequential"), dict):
        summary["sequential"] = sequential_summary(manifest["sequential"], pol.stats.ci_level)
    if review:
        before = build_summary(run_dir, policy, self_audit=False, overrides=False, status=status)
        summary["overrides"] = describe(review, records, before, summary)
        summary["overrides_effect"] = override_effect(review, records, before, summary, Path(run_dir))
    return summary
