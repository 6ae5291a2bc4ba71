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
