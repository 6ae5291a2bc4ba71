"""What reviewer overrides did to a run's verdicts: ``summary["overrides_effect"]``.

``{"n_lines", "n_applied", "changed_gates": [{"suite", "gate", "before", "after"}], "trail", "head"}``:
how many lines ``overrides.jsonl`` holds, how many apply to a record of this run, every gate whose
verdict differs from the run without overrides, where the trail is, and the hash chain's head (the
``prev`` the next line must carry: a later rewrite of the last line shows against it). Each changed
gate result also carries ``changed_by_overrides: {"before", "after"}``. Every surface that prints a
verdict (gate lines and the tally, JUnit, the dashboard, compare) says so with
``audit.summary.read.overrides_note``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audit.gates.evaluate import verdict_of
from audit.store.override_integrity import chain_head
from audit.store.overrides import OVERRIDES, effective
from audit.summary.read import all_gate_results


def _gate_id(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r.get("suite"), r.get("metric"), r.get("op"), r.get("threshold"))


def gate_name(r: dict[str, Any]) -> str:
    return f"{r.get('suite') or 'policy'}: {r.get('metric')} {r.get('op')} {r.get('threshold')}"


def override_effect(
    review: Sequence[Any], records: Sequence[Any], before: dict[str, Any], after: dict[str, Any], run_dir: Path
) -> dict[str, Any]:
    """The effect block; marks each gate of ``after`` whose verdict the overrides changed."""
    keys = {r["key"] if isinstance(r, dict) else r.key for r in records}
    applied = [ov for ov in effective(review) if ov.key in keys]
    was = {_gate_id(r): verdict_of(r) for r in all_gate_results(before)}
    changed = []
    for r in all_gate_results(after):
        old, new = was.get(_gate_id(r)), verdict_of(r)
        if old is not None and old != new:
            r["changed_by_overrides"] = {"before": old, "after": new}
            changed.append({"suite": r.get("suite"), "gate": gate_name(r), "before": old, "after": new})
    trail = Path(run_dir) / OVERRIDES
    return {
        "n_lines": len(review),
        "n_applied": len(applied),
        "changed_gates": changed,
        "trail": str(trail),
        "head": chain_head(trail.read_bytes()) if trail.is_file() else None,
    }
