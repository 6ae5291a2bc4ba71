"""``lm-audit override RUN_DIR KEY (--score S --value V | --label L) --who NAME --why TEXT``: append a
reviewer override to the run's ``overrides.jsonl``, with its provenance and the hash chain.

The line carries ``prev``, the SHA-256 of the line before it, so an edited earlier line is refused
by every reader; the record must exist, the score key must be one the record has, and the value
must lie in the range its scorer declares (docs/statistics.md, "Reviewer overrides"). ``--withdraw``
appends a line that cancels the override of that key and score or label. Records are never edited:
``lm-audit report RUN_DIR`` (or ``gate``) recomputes every figure and verdict with the overrides.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "override", help="append a reviewer override (hash-chained) to a run", description=__doc__
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder (holds manifest.json)")
    p.add_argument("key", metavar="KEY", help="the record key, as in records.jsonl")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--score", metavar="SCORE", help="the score key to set, e.g. toxicity")
    what.add_argument(
        "--label",
        metavar="LABEL",
        help="a label: not toxic, toxic, refusal, not refusal, factual, not factual, exclude",
    )
    p.add_argument(
        "--value", type=float, help="with --score: the corrected value (within the scorer's range)"
    )
    p.add_argument(
        "--withdraw", action="store_true", help="cancel the override of this key and score or label"
    )
    p.add_argument("--who", required=True, help="who decided (a visible name)")
    p.add_argument("--why", required=True, help="why the scorer was wrong")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from audit.core.errors import UsageError
    from audit.store.overrides import append_override
    from audit.store.records import scan_records
    from audit.store.run_store import RECORDS, read_manifest

    read_manifest(args.run_dir)  # one line when this is not a run folder
    if args.score is not None and args.value is None and not args.withdraw:
        raise UsageError("--score needs --value (or --withdraw)")
    if args.value is not None and (args.label is not None or args.withdraw):
        raise UsageError("--value goes with --score, and not with --withdraw")
    value = None if args.withdraw else args.value
    if args.label is not None:
        value = not args.withdraw
    keys = {r["key"] for r in scan_records(args.run_dir / RECORDS).rows}
    ov = append_override(
        args.run_dir,
        args.key,
        who=args.who,
        why=args.why,
        score=args.score,
        label=args.label,
        value=value,
        known_keys=keys,
    )
    target = f"score {ov.score} = {ov.value}" if ov.score is not None else f"label {ov.label!r} = {ov.value}"
    print(
        f"override: {ov.key}: {target} by {ov.who} ({ov.when}) appended to {args.run_dir / 'overrides.jsonl'}"
    )
    print(f"recompute the figures: lm-audit report {args.run_dir}")
    return 0
