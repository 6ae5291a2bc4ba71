"""Placeholder summary (replaced by the statistics engineer): per-suite, per-group score means."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from audit.store import read_manifest, read_records


def build_summary(run_dir: Path, policy: Path | None = None) -> dict[str, Any]:
    manifest = read_manifest(run_dir)
    records = read_records(run_dir)
    suites: dict[str, Any] = {}
    for sid in manifest.get("suites", {}):
        rows = [r for r in records if r.suite == sid]
        groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in rows:
            g = r.attributes.get("group")
            for k, v in r.scores.items():
                if g is not None and v is not None:
                    groups[k][f"{r.attributes.get('axis')}:{g}"].append(v)
        suites[sid] = {
            "n_records": len(rows),
            "group_means": {k: {g: sum(v) / len(v) for g, v in d.items()} for k, d in groups.items()},
        }
    return {"schema_version": 0, "run_id": manifest["run_id"], "model": manifest["model"], "suites": suites}


def finalize_run(run_dir: Path, policy: Path | None = None, echo: Callable[[str], None] = print) -> int:
    summary = build_summary(run_dir, policy)
    (Path(run_dir) / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0
