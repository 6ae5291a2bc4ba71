"""Honest hub metadata: a run that is damaged, incomplete, failed or still running gets no
``model-index`` or ``.eval_results`` by default (``export --format model-card`` exits 2 with one
line). With ``--allow-damaged`` they are written with the damage stated in the YAML itself, where
the Hub and every tool that copies the figures read it, not only in the Markdown:

- each ``model-index`` result's ``dataset.args.lm_audit_damage`` holds the reason, and each metric
  is ``verified: false`` with a name that starts ``DAMAGED RUN:``;
- each ``.eval_results`` entry's ``notes`` starts ``DAMAGED RUN (reason)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DAMAGED = "DAMAGED RUN"


def hub_problem(run_dir: Path, manifest: dict[str, Any], summary: dict[str, Any]) -> str | None:
    """Why this run's figures must not become hub metadata (one line), or None when it is whole."""
    from audit.store.run_store import read_records_checked
    from audit.store.status import incomplete_reason, run_status

    problems = []
    _, damage = read_records_checked(run_dir, manifest)
    marked = summary.get("damaged")
    if damage or marked:
        reason = (damage or marked or {}).get("reason") if isinstance(damage or marked, dict) else None
        problems.append(f"damaged: {reason or 'unreadable or missing records'}")
    incomplete = incomplete_reason(run_status(run_dir, manifest))
    if incomplete:
        problems.append(incomplete)
    return "; ".join(problems) or None


def mark_results(results: list[dict[str, Any]], reason: str) -> list[dict[str, Any]]:
    """``model-index`` results with the damage stated on every result and metric."""
    out = []
    for res in results:
        dataset = {**(res.get("dataset") or {})}
        dataset["args"] = {**(dataset.get("args") or {}), "lm_audit_damage": reason}
        metrics = [
            {**m, "name": f"{DAMAGED}: {m.get('name')}", "verified": False} for m in res.get("metrics") or []
        ]
        out.append({**res, "dataset": dataset, "metrics": metrics})
    return out


def mark_entries(entries: list[dict[str, Any]], reason: str) -> list[dict[str, Any]]:
    """``.eval_results`` entries whose notes start with the damage."""
    return [{**e, "notes": f"{DAMAGED} ({reason}); {e.get('notes') or ''}".rstrip("; ")} for e in entries]
