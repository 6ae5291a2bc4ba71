"""``lm-audit compare RUN_A RUN_B``: per-figure deltas B - A with paired CIs and tests, a verdict
per figure (better / worse / no significant change), exit 1 when a figure regresses beyond a
threshold (``--max-regression figure=delta``, or ``compare.max_regression`` in ``--policy``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare two runs (e.g. two model versions)", description=__doc__)
    p.add_argument("run_a", type=Path, metavar="RUN_A", help="the baseline run folder")
    p.add_argument("run_b", type=Path, metavar="RUN_B", help="the new run folder")
    p.add_argument("--policy", type=Path, help="policy.yaml (compare thresholds and statistics settings)")
    p.add_argument(
        "--max-regression",
        action="append",
        default=[],
        metavar="FIGURE=DELTA",
        help="largest tolerated worsening, e.g. expected_max_toxicity=0.02 or 'gap(sentiment, gender)=0.05'; "
        "'SUITE/FIGURE=DELTA' for one suite, '*=0' for every figure (repeatable)",
    )
    p.add_argument("--out", type=Path, help="folder to write compare.json and compare.md into")
    p.set_defaults(func=run)


def parse_thresholds(items: list[str]) -> dict[str, float]:
    from audit.errors import UsageError

    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = abs(float(value))
        except ValueError:
            raise UsageError(
                f"--max-regression wants FIGURE=DELTA (e.g. expected_max_toxicity=0.02), got '{item}'"
            ) from None
    return out


def run(args: argparse.Namespace) -> int:
    from audit.gates import load_policy
    from audit.report.compare import compare_lines, compare_runs, render_compare_markdown

    policy = load_policy(args.policy)
    result = compare_runs(
        args.run_a, args.run_b, policy.stats, policy.compare, parse_thresholds(args.max_regression)
    )
    for line in compare_lines(result):
        print(line)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "compare.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        (args.out / "compare.md").write_text(render_compare_markdown(result), encoding="utf-8")
        print(f"wrote {args.out / 'compare.json'} and {args.out / 'compare.md'}")
    return 0 if result["passed"] else 1
