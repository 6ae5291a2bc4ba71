"""The end of a run: build the summary, write the reports, print the gates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from audit.gates.text import print_gates
from audit.report.write import write_reports
from audit.summary.build import build_summary


def finalize_run(run_dir: Path, policy: Path | None = None, echo: Callable[[str], None] = print) -> int:
    """Write summary.json, report.md and report.html into ``run_dir``; print gates; 0 if all pass else 1."""
    summary = build_summary(Path(run_dir), policy)
    write_reports(Path(run_dir), summary)
    print_gates(summary, echo)
    return 0 if summary["gates"]["passed"] else 1
