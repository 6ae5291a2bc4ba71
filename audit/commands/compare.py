"""``lm-audit compare RUN_A RUN_B [RUN_C ...]``: compare runs on the prompts they share.

Two runs: per-figure deltas B − A with paired CIs and tests (exact McNemar for 0/1 outcomes,
paired permutation otherwise), A and B on the shared prompts with n_shared, and a verdict per
figure (better / worse / no significant change). Three or more: one ranked table per suite,
with significance-group letters after Holm. Without thresholds compare only reports (exit 0);
with ``--max-regression figure=delta`` (or ``compare.max_regression`` in ``--policy``) it exits 1
when a later run regresses beyond a threshold against the first. A damaged or empty run: exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare two or more runs (e.g. model versions)", description=__doc__)
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run folders; the first is the baseline")
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
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write one JUnit testcase per compared figure")
    p.set_defaults(func=run)


def parse_thresholds(items: list[str]) -> dict[str, float]:
    from audit.core.errors import UsageError

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


def _write(out: Path, result: dict[str, Any], markdown: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "compare.md").write_text(markdown, encoding="utf-8")
    print(f"wrote {out / 'compare.json'} and {out / 'compare.md'}")


def run(args: argparse.Namespace) -> int:
    from audit.compare import DamagedRunError, compare_many
    from audit.compare.render import many_lines, render_many_markdown
    from audit.compare.report import compare_lines, compare_runs, render_compare_markdown
    from audit.core.errors import UsageError
    from audit.export.junit import write_compare_junit
    from audit.gates.evaluate import load_policy

    if len(args.runs) < 2:
        raise UsageError("compare needs at least two run folders")
    policy = load_policy(args.policy)
    thresholds = parse_thresholds(args.max_regression)
    try:
        if len(args.runs) == 2:
            result = compare_runs(args.runs[0], args.runs[1], policy.stats, policy.compare, thresholds)
            for line in compare_lines(result):
                print(line)
            write_compare_junit(args.junit, [result])
            if args.out is not None:
                _write(args.out, result, render_compare_markdown(result))
            return 0 if result["passed"] else 1
        many = compare_many(args.runs, policy.stats, policy.compare)
        for line in many_lines(many):
            print(line)
        code = 0
        pairs = []  # for --junit
        if thresholds or policy.compare.max_regression:
            many["regressions"] = []
            for other in args.runs[1:]:
                res = compare_runs(args.runs[0], other, policy.stats, policy.compare, thresholds)
                pairs.append(res)
                lines = [ln for ln in compare_lines(res) if ln.startswith(("REGRESSED", "ERROR"))]
                for ln in lines:
                    print(f"{res['run_b']['label']}: {ln}")
                many["regressions"].append(
                    {"baseline": res["run_a"]["label"], "run": res["run_b"]["label"], "passed": res["passed"],
                     "n_regressed": res["n_regressed"], "unknown_thresholds": res["unknown_thresholds"]}
                )
                code = max(code, 0 if res["passed"] else 1)
            n_reg = sum(r["n_regressed"] for r in many["regressions"])
            print(f"compare: {'PASS' if code == 0 else 'FAIL'} ({n_reg} regressed against {many['runs'][0]['label']})")
        else:
            print(f"compare: {many['n_figures']} figures, no thresholds set")
        write_compare_junit(args.junit, pairs, many)
        if args.out is not None:
            _write(args.out, many, render_many_markdown(many))
        return code
    except DamagedRunError as exc:
        sys.stderr.write(f"error: {exc}\n")
        write_compare_junit(args.junit, [], error=str(exc))
        return 1
