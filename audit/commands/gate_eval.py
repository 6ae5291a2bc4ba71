"""``lm-audit gate-eval``: measure a filter policy - block rate on toxic text, false blocks on
benign text and benign identity mentions (per group), bypass rate under obfuscation, and the
added latency per generation. Writes gate_eval.json and gate_eval.md."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from audit.commands._args import seed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gate-eval", help="evaluate a filter policy", description=__doc__)
    p.add_argument("--policy", metavar="NAME|PATH", help="filter policy .yaml (default: built-in)")
    p.add_argument("--out", type=Path, default=Path("reports/gate-eval"), help="output folder (default reports/gate-eval)")
    p.add_argument("--model", default="smollm2-135m", help="model for the latency figures (default smollm2-135m)")
    p.add_argument("--latency-generations", type=int, default=16, help="generations timed (default 16)")
    p.add_argument("--no-latency", action="store_true", help="skip the latency measurement (no model load)")
    p.add_argument("--seed", type=seed, default=0, help="seed, 0 to 2**63-1 (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from audit.core.errors import UsageError

    if args.latency_generations < 1:
        raise UsageError("--latency-generations must be at least 1")
    from audit.commands._args import check_out_dir

    check_out_dir(args.out)
    from audit.guard.evaluate import render_markdown, run_gate_eval
    from audit.guard.policy import load_policy

    policy = load_policy(args.policy)
    report = run_gate_eval(
        policy, None if args.no_latency else args.model, n_latency=args.latency_generations, seed=args.seed
    )
    command = "lm-audit " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    report["command"] = command
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gate_eval.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    md = render_markdown(report, command)
    (args.out / "gate_eval.md").write_text(md)
    print(md)
    print(f"wrote {args.out / 'gate_eval.json'} and {args.out / 'gate_eval.md'}")
    return 0
