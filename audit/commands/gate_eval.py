"""``lm-audit gate-eval``: measure a filter policy - block rate on toxic text, false blocks on
benign text and benign identity mentions (per group), bypass rate under obfuscation, and the
added latency per generation. ``--attacks NAME[,NAME]|all`` adds, per attack technique (the
attack registry's, ``lm-audit attacks``), the bypass rate on toxic text and the false-block rate
on benign twins, with intervals. Writes gate_eval.json and gate_eval.md."""

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
    p.add_argument(
        "--attacks",
        metavar="NAME[,NAME]|all",
        help="bypass and false-block rates per attack technique on the obfuscation set (lm-audit attacks lists them)",
    )
    p.add_argument(
        "--held-out",
        type=int,
        default=300,
        metavar="N",
        help="with --attacks: also N held-out toxic RealToxicityPrompts prompts and XSTest's safe prompts (0: none; default 300)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from audit.core.errors import UsageError

    if args.latency_generations < 1:
        raise UsageError("--latency-generations must be at least 1")
    if args.held_out < 0:
        raise UsageError("--held-out must be 0 or more")
    from audit.commands._args import check_out_dir

    check_out_dir(args.out)
    from audit.guard.evaluate import render_markdown, run_gate_eval
    from audit.guard.policy import load_policy

    policy = load_policy(args.policy)
    attacks = None
    if args.attacks is not None:
        from audit.guard.attack_eval import resolve_techniques

        attacks = resolve_techniques(args.attacks)  # an unknown name fails before any work
    report = run_gate_eval(
        policy, None if args.no_latency else args.model, n_latency=args.latency_generations, seed=args.seed
    )
    if attacks is not None:
        from audit.guard.attack_eval import evaluate_attacks

        report["attacks"] = {
            stage: evaluate_attacks(policy, attacks, stage, held_out=args.held_out)
            for stage, checks in (("output", policy.output_checks), ("input", policy.input_checks))
            if checks
        }
    command = "lm-audit " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    report["command"] = command
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gate_eval.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    md = render_markdown(report, command)
    if report.get("attacks"):
        from audit.guard.attack_eval import render_attacks_markdown

        md += "\n".join(["## Under attack (`--attacks`)", "", *[line for r in report["attacks"].values() for line in render_attacks_markdown(r)]])
    (args.out / "gate_eval.md").write_text(md)
    print(md)
    print(f"wrote {args.out / 'gate_eval.json'} and {args.out / 'gate_eval.md'}")
    return 0
