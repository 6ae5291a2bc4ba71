"""``lm-audit gate RUN_DIR [--policy P]``: judge a run's gates; exit 1 when any fails.

Gates come from the suites' defaults, or from ``--policy`` (see docs/statistics.md). Each gate is
printed as PASS/FAIL with its figure, CI and protocol; a gate whose figure is absent is an ERROR
and counts as failed. Figures are recomputed from the records, so nothing stale is judged. A damaged
run (unreadable lines in records.jsonl, no records, or fewer than the manifest promises) fails.
``--junit`` and ``--sarif`` also write the gates for CI; with ``$GITHUB_STEP_SUMMARY`` set (GitHub
Actions), a Markdown table of the gates is appended to the job summary.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gate", help="judge a run's gates (exit 1 when any fails)", description=__doc__)
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder (holds manifest.json)")
    p.add_argument("--policy", type=Path, help="policy.yaml with gates (replaces suite defaults)")
    p.add_argument("--write", action="store_true", help="also rewrite summary.json and the reports")
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write the gates as JUnit XML (CI test reports)")
    p.add_argument("--sarif", type=Path, metavar="FILE", help="also write failed/inconclusive gates as SARIF 2.1.0 (code scanning)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from audit.gates.text import print_gates
    from audit.report.write import write_reports
    from audit.summary.build import build_summary

    summary = build_summary(args.run_dir, args.policy, self_audit=args.write)
    if args.write:
        write_reports(args.run_dir, summary)
    print_gates(summary)
    if args.junit is not None:
        from audit.export.junit import gates_junit, write_junit

        print(f"junit: {write_junit(args.junit, gates_junit(summary))}")
    if args.sarif is not None:
        from audit.gates.sarif import write_gates_sarif

        print(f"sarif: {write_gates_sarif(args.sarif, summary, args.run_dir)}")
    from audit.gates.job_summary import append_job_summary  # only when $GITHUB_STEP_SUMMARY is set

    if (where := append_job_summary(summary)) is not None:
        print(f"job summary: {where}")
    if summary.get("damaged"):
        from audit.store.run_store import describe_damage

        print(f"gate: FAILED: {describe_damage(summary['damaged'])}")
        for line in summary["damaged"].get("unreadable", [])[:10]:
            print(f"    {line}")
    return 0 if summary["gates"]["passed"] and not summary.get("damaged") else 1
