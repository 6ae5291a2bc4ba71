"""Writing a finished summary to its run folder: ``summary.json``, ``report.md`` and ``report.html``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from audit.report.html import render_html
from audit.report.markdown import render_markdown
from audit.store.run_store import atomic_write_json, atomic_write_text, read_manifest


def write_reports(run_dir: Path, summary: dict[str, Any]) -> None:
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    atomic_write_json(run_dir / "summary.json", summary)
    atomic_write_text(run_dir / "report.md", render_markdown(summary, manifest))
    atomic_write_text(run_dir / "report.html", render_html(summary, manifest))
    for name in ("summary.json", "report.md", "report.html"):  # readable like records.jsonl
        os.chmod(run_dir / name, 0o644)
