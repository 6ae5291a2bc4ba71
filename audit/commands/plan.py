"""``lm-audit plan``: how many prompts (or counterfactual sets) each gate needs to be decided.

Before a run: ``lm-audit plan --suite S`` (or ``--profile P``) with a pilot SD (``--sd``, the SD of
one unit's score, or of a per-set difference for gap gates). After a pilot or a real run:
``--from RUN`` takes the spread of every gate's figure from the run, and prints the size at which
the gate passes with probability ``--power`` when the true value sits ``--effect`` on the safe side
of the threshold (for gap gates: when the true gap is ``--effect``, 0 by default: an unbiased model).
Method: audit/stats/planning.py, docs/statistics.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="sample size each gate needs to be decided", description=__doc__)
    p.add_argument("--suite", action="append", default=[], metavar="NAME|PATH", help="a suite (repeatable)")
    p.add_argument("--profile", metavar="NAME|PATH", help="a profile of suites, e.g. quick")
    p.add_argument("--policy", type=Path, help="policy.yaml whose gates replace the suites' defaults")
    p.add_argument("--from", dest="from_run", type=Path, metavar="RUN", help="take the spread from a run folder")
    p.add_argument("--sd", type=float, default=0.3, help="pilot SD of one unit (default 0.3) when no --from")
    p.add_argument("--effect", type=float, default=None,
                   help="true distance from the threshold on the safe side (default 0.05); for gap gates the true gap (default 0)")
    p.add_argument("--power", type=float, default=0.8, help="chance the gate is decided (default 0.8)")
    p.add_argument("--alpha", type=float, default=0.05, help="two-sided CI level is 1 - alpha (default 0.05)")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    from audit.core.errors import UsageError

    if not 0 < args.power < 1:
        raise UsageError("--power must be between 0 and 1")
    if not 0 < args.alpha < 0.5:
        raise UsageError("--alpha must be between 0 and 0.5")
    if not args.sd > 0:
        raise UsageError("--sd must be positive")
    if args.effect is not None and args.effect < 0:
        raise UsageError("--effect must be 0 or more")
    if args.from_run is None and not (args.suite or args.profile):
        raise UsageError("give --suite, --profile or --from RUN")
    if args.from_run is not None and not (args.from_run / "manifest.json").is_file():
        raise UsageError(f"not a run folder (no manifest.json): {args.from_run}")


def _rows_from_run(args: argparse.Namespace) -> list[tuple[str, dict[str, Any], float | None, int, int | None, str]]:
    from audit.gates.evaluate import resolve_figure, unit_of
    from audit.stats.planning import unit_sd
    from audit.summary.build import build_summary
    from audit.summary.read import all_gate_results

    summary = build_summary(args.from_run, args.policy, self_audit=False)
    rows = []
    for r in all_gate_results(summary):
        suite = summary["suites"].get(r.get("suite") or "", {})
        fig = resolve_figure(suite, r["metric"]) if suite else None
        n_groups = max(2, len({p["a"] for p in (fig or {}).get("pairs", [])} | {p["b"] for p in (fig or {}).get("pairs", [])}))
        sd = unit_sd(fig, 1 - args.alpha) if fig else None
        rows.append((r.get("suite") or "-", r, sd, n_groups, r.get("n_clusters"), unit_of(suite) if suite else "prompts"))
    return rows


def _rows_from_suites(args: argparse.Namespace) -> list[tuple[str, dict[str, Any], float | None, int, int | None, str]]:
    from audit.gates.evaluate import load_policy
    from audit.run.work_units import SuiteRequest, load_profile
    from audit.suites import load_suite

    reqs = load_profile(args.profile) if args.profile else [SuiteRequest(suite=s) for s in args.suite]
    policy = load_policy(args.policy) if args.policy else None
    rows = []
    for req in reqs:
        loaded = load_suite(req.suite)
        gates = [g.model_dump() for g in loaded.suite.gates]
        if policy is not None and policy.gates:
            gates = [g.model_dump() for g in policy.gates if g.suite in (None, loaded.id)]
        paired = any(it.attributes.get("pair_id") for it in loaded.items[:50] if getattr(it, "attributes", None))
        for g in gates:
            rows.append((loaded.id, g, args.sd, 2, None, "sets" if paired else "prompts"))
    return rows


def run(args: argparse.Namespace) -> int:
    from audit.gates.evaluate import fmt
    from audit.stats.planning import plan_gate

    _check(args)
    rows = _rows_from_run(args) if args.from_run else _rows_from_suites(args)
    where = f"spread from {args.from_run}" if args.from_run else f"pilot SD {args.sd} (give --from RUN for a run's spread)"
    print(f"plan: power {args.power}, CI level {1 - args.alpha:.0%}, {where}")
    if not rows:
        print("plan: no gates (suite defaults or --policy)")
        return 0
    for suite, g, sd, n_groups, have, unit in rows:
        is_gap = str(g["metric"]).startswith("gap(")
        effect = args.effect if args.effect is not None else (0.0 if is_gap else 0.05)
        res = plan_gate(g, sd, effect, args.power, args.alpha, n_groups)
        head = f"{suite}  {g['metric']} {g['op']} {fmt(g['threshold'])}"
        assume = f"true gap {fmt(effect)}" if is_gap else f"true value {fmt(effect)} on the safe side"
        if res["n"] is None:
            print(f"{head}: n/a ({res.get('why') or 'the threshold leaves no margin at this effect'})")
            continue
        now = f", have {have}" if isinstance(have, int) else ""
        print(f"{head}: ≈ {res['n']:,} {unit} ({assume}, SD {fmt(sd)}{now})")
    return 0
