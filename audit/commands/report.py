"""``lm-audit report RUN_DIR``: recompute summary.json, report.md and report.html from the records."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="regenerate summary.json, report.md and report.html of a run",
        description=__doc__,
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder (holds manifest.json)")
    p.add_argument("--policy", type=Path, help="policy.yaml with gates and statistics settings")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from audit.gates.text import print_gates
    from audit.report.write import write_reports
    from audit.summary.build import build_summary

    summary = build_summary(args.run_dir, args.policy)
    write_reports(args.run_dir, summary)
    print_gates(summary)
    for name in ("summary.json", "report.md", "report.html"):
        print(f"wrote {args.run_dir / name}")
    if summary.get("damaged"):
        import sys

        from audit.store.run_store import describe_damage

        sys.stderr.write(f"warning: {describe_damage(summary['damaged'])}\n")
        for line in summary["damaged"].get("unreadable", [])[:10]:
            sys.stderr.write(f"    {line}\n")
    return 0
