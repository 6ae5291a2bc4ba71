"""``lm-audit plan``: how many prompts (or counterfactual sets) each gate needs to be decided, and
how many the suite holds.

Before a run: ``lm-audit plan --suite S`` (or ``--profile P``). A gap gate assumes an unbiased model
(true gap ``--effect``, default 0) and a per-set SD ``--sd``; another gate assumes the true value
sits ``--effect`` on the safe side of its threshold (default: 1 point on a percentage, 0.01 on a
rate, 0.05 on a score mean) with the SD of a 0/1 outcome for rates and percentages.
After a pilot or a real run: ``--from RUN`` takes each figure's spread from the run and, with no
``--effect``, its estimate as the truth: the same call as the run's own "≈ N more", so they agree.
Each line says the sets the whole suite holds, and "not decidable with this suite" when they are
fewer than the gate needs. Method: audit/stats/planning.py, docs/statistics.md.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="sample size each gate needs to be decided", description=__doc__)
    p.add_argument("--suite", action="append", default=[], metavar="NAME|PATH", help="a suite (repeatable)")
    p.add_argument("--profile", metavar="NAME|PATH", help="a profile of suites, e.g. quick")
    p.add_argument("--policy", type=Path, help="policy.yaml whose gates replace the suites' defaults")
    p.add_argument("--from", dest="from_run", type=Path, metavar="RUN", help="take the spread from a run folder")
    p.add_argument("--sd", type=float, default=0.3,
                   help="SD of one unit of a score mean or of one set's group difference (default 0.3), when no --from")
    p.add_argument("--effect", type=float, default=None,
                   help="true distance from the threshold on the safe side, in the figure's own scale "
                        "(default: 1 point on a percentage, 0.01 on a rate, 0.05 on a score; --from: the run's estimate); "
                        "for gap gates the true gap (default 0; --from: the run's pairwise differences)")
    p.add_argument("--power", type=float, default=0.8, help="chance the gate is decided (default 0.8)")
    p.add_argument("--alpha", type=float, default=None,
                   help="two-sided CI level is 1 - alpha (default: the run's level with --from, else 0.05)")
    p.set_defaults(func=run)


@dataclass
class Row:
    suite: str
    gate: dict[str, Any]
    model: Any  # audit.stats.planning.GateModel | None
    unit: str
    have: int | None = None
    held: int | None = None
    why: str = ""


def _check(args: argparse.Namespace) -> None:
    from audit.core.errors import UsageError

    if not 0 < args.power < 1:
        raise UsageError("--power must be between 0 and 1")
    if args.alpha is not None and not 0 < args.alpha < 0.5:
        raise UsageError("--alpha must be between 0 and 0.5")
    if not args.sd > 0:
        raise UsageError("--sd must be positive")
    if args.effect is not None and args.effect < 0:
        raise UsageError("--effect must be 0 or more")
    if args.from_run is None and not (args.suite or args.profile):
        raise UsageError("give --suite, --profile or --from RUN")
    if args.from_run is not None and not (args.from_run / "manifest.json").is_file():
        raise UsageError(f"not a run folder (no manifest.json): {args.from_run}")


def _held(loaded: Any, figure: str) -> int | None:
    from audit.suites.capacity import suite_capacity

    cap = suite_capacity(loaded, figure) if loaded is not None else None
    return cap.held if cap is not None else None


def _load_quietly(ref: Any) -> Any:
    """The suite a run was made from (its path, or its built-in id), or None when it is gone."""
    from audit.core.errors import UsageError
    from audit.suites import load_suite

    try:
        return load_suite(str(ref))
    except (UsageError, OSError):
        return None


def _run_summary(args: argparse.Namespace) -> dict[str, Any]:
    """The run's summary.json (what the run printed), or one built from its records when there is
    none or a --policy replaces its gates."""
    from audit.summary.build import build_summary

    path = args.from_run / "summary.json"
    if args.policy is None and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("suites"), dict):
                return data
        except (OSError, json.JSONDecodeError):
            pass
    return build_summary(args.from_run, args.policy, self_audit=False)


def _rows_from_run(args: argparse.Namespace) -> tuple[list[Row], float]:
    from audit.gates.evaluate import resolve_figure, unit_of
    from audit.stats.planning import model_from_figure, shifted
    from audit.store.run_store import read_manifest
    from audit.summary.read import all_gate_results

    summary = _run_summary(args)
    level = 1 - args.alpha if args.alpha is not None else float((summary.get("stats") or {}).get("ci_level") or 0.95)
    manifest = read_manifest(args.from_run)
    loaded: dict[str, Any] = {}
    rows = []
    for r in all_gate_results(summary):
        sid = r.get("suite") or ""
        suite = summary["suites"].get(sid, {})
        fig = resolve_figure(suite, r["metric"]) if suite else None
        model = model_from_figure(r, fig, level) if fig else None
        if model is not None and args.effect is not None:
            model = shifted(model, args.effect)
        if sid and sid not in loaded:
            entry = (manifest.get("suites") or {}).get(sid) or {}
            loaded[sid] = _load_quietly(entry.get("path") or sid)
        why = "" if model is not None else "no spread in the run (an error, or fewer than 2 units)"
        rows.append(Row(sid or "-", r, model, unit_of(suite) if suite else "prompts", r.get("n_clusters"),
                        _held(loaded.get(sid), r["metric"]), why))
    return rows, level


def _rows_from_suites(args: argparse.Namespace) -> tuple[list[Row], float]:
    from audit.gates.evaluate import load_policy
    from audit.run.work_units import SuiteRequest, load_profile
    from audit.stats.planning import GateModel, default_effect, default_sd
    from audit.suites import load_suite
    from audit.suites.capacity import suite_capacity

    level = 1 - (args.alpha if args.alpha is not None else 0.05)
    reqs = load_profile(args.profile) if args.profile else [SuiteRequest(suite=s) for s in args.suite]
    policy = load_policy(args.policy) if args.policy else None
    rows = []
    for req in reqs:
        loaded = load_suite(req.suite)
        gates = [g.model_dump() for g in loaded.suite.gates]
        if policy is not None and policy.gates:
            gates = [g.model_dump() for g in policy.gates if g.suite in (None, loaded.id)]
        for g in gates:
            cap = suite_capacity(loaded, g["metric"])
            if cap is None:
                rows.append(Row(loaded.id, g, None, "prompts", why=f"figure '{g['metric']}' is not in this suite"))
                continue
            op, thr = g["op"], float(g["threshold"])
            effect = args.effect if args.effect is not None else default_effect(g["metric"], cap.scale)
            if cap.groups > 1:
                truth = (float(effect),) + (0.0,) * (cap.groups - 1)
                model = GateModel(op, thr, args.sd, truth, gap=True, level=level,
                                  units_per_set=1 if cap.unit == "sets" else cap.groups)
            else:
                sd = default_sd(cap.scale, thr, args.sd)
                truth_value = thr - effect if op in ("<=", "<") else thr + effect
                model = GateModel(op, thr, sd, (truth_value,), level=level)
            rows.append(Row(loaded.id, g, model, cap.unit, held=cap.held))
    return rows, level


def _assumed(row: Row, from_run: bool, effect: float | None) -> str:
    from audit.gates.lines import fmt

    m = row.model
    if m.gap:
        gap = max(m.truth) - min(m.truth)
        pairs = m.groups * (m.groups - 1) // 2
        what = f"true gap {fmt(gap)} over {m.groups} groups ({pairs} pair{'s' if pairs > 1 else ''})"
        if from_run and effect is None:
            what = f"the run's pairwise differences as true (gap {fmt(gap)}) over {m.groups} groups"
        return f"{what}, SD {fmt(m.sd)} per set, pooled over the pairs"
    if from_run and effect is None:
        return f"the run's estimate {fmt(m.truth[0])} as true, SD {fmt(m.sd)}"
    return f"true value {fmt(m.truth[0])}, SD {fmt(m.sd)}"


def line(row: Row, power: float, from_run: bool, effect: float | None) -> str:
    """One plan line: sets needed, the assumption, the pilot's uncertainty, and the sets held."""
    from audit.gates.lines import fmt
    from audit.stats.planning import plan_range, units_needed

    g = row.gate
    head = f"{row.suite}  {g['metric']} {g['op']} {fmt(g['threshold'])}"
    if row.model is None:
        return f"{head}: n/a ({row.why or 'no spread known'})"
    need = units_needed(row.model, power)
    held = f"; the suite holds {row.held:,} {row.unit}" if isinstance(row.held, int) else ""
    have = f"; the run has {row.have:,}" if isinstance(row.have, int) else ""
    if need is None:
        text = f"{head}: not decidable by more data ({_assumed(row, from_run, effect)}: the truth sits on the threshold){held}{have}"
        return text
    lo, hi = plan_range(row.model, power)
    spread = ""
    if lo is not None or hi is not None:
        n_pilot = (row.model.pilot_df or 0)
        spread = (f"; from this pilot (df {n_pilot}) anywhere from {_n(lo)} to {_n(hi)} "
                  f"(80% range of its SD)")
    text = f"{head}: ≈ {need:,} {row.unit} ({_assumed(row, from_run, effect)}){spread}{held}{have}"
    verdict = str(g.get("verdict") or "") if from_run else ""
    if verdict in ("PASS", "FAIL"):  # a decided gate is never "not decidable", whatever a rerun's power
        return f"{text}; this run decided it ({verdict}): the count is what a new run needs for {power:.0%} power"
    if isinstance(row.held, int) and need > row.held:
        fix = "add templates or forms" if row.unit == "sets" else f"add {row.unit}"
        text += f": not decidable with this suite: {fix}"
    return text


def _n(v: int | None) -> str:
    return "more than 10,000,000" if v is None else f"{v:,}"


def run(args: argparse.Namespace) -> int:
    _check(args)
    rows, level = _rows_from_run(args) if args.from_run else _rows_from_suites(args)
    where = (f"spread and estimates from {args.from_run}" if args.from_run
             else f"pilot SD {args.sd} for score means and gaps (give --from RUN for a run's spread)")
    print(f"plan: power {args.power}, CI level {level:.4g}, {where}")
    if not rows:
        print("plan: no gates (suite defaults or --policy)")
        return 0
    for row in rows:
        print(line(row, args.power, args.from_run is not None, args.effect))
    return 0

