"""Reading a finished summary: the one read API that gates, reports, exports, the pandas API and the
dashboard share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load_summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))


def all_gate_results(summary: dict[str, Any]) -> list[dict[str, Any]]:
    out = [g for s in summary.get("suites", {}).values() for g in s.get("gates", [])]
    return out + list(summary.get("gates", {}).get("unmatched", []))


def overrides_note(summary: dict[str, Any]) -> str | None:
    """One line saying that reviewer overrides are in a run's figures and which verdicts they
    changed (``summary["overrides_effect"]``), or None when no override line exists."""
    eff = summary.get("overrides_effect")
    if not isinstance(eff, dict) or not eff.get("n_lines"):
        return None
    changed = [c for c in eff.get("changed_gates") or [] if isinstance(c, dict)]
    which = "; ".join(f"{c.get('gate')}: {c.get('before')} -> {c.get('after')}" for c in changed) or "none"
    return (
        f"reviewer overrides: {eff.get('n_applied', 0)} applied ({eff.get('n_lines')} line(s) in {eff.get('trail')}); "
        f"{len(changed)} gate verdict(s) changed by them: {which}"
    )
