"""``lm-audit run --until-decided [--budget N]``: add prompts in rounds until every gate is decided.

Rounds grow each undecided suite's ``--limit`` geometrically from the first limit to the budget
(prompts per suite), at most ``MAX_LOOKS`` looks. The stratified selection at a larger limit
holds every prompt of a smaller one (``stratified_limit`` extends the same round-robin over whole
counterfactual sets), so a round only adds prompts, and a record's completion depends on its key
and the run seed alone, never on the round it was drawn in.

Validity under optional stopping: **alpha spending, Bonferroni over the planned looks**. Every
look judges the gates with CIs at level 1 - (1 - ci_level) / L for L planned looks, so the chance
that any look gives a wrong PASS or FAIL is at most the sum over looks, 1 - ci_level, whenever
we stop. The cost: each look's intervals are wider than a fixed run's (at L=4 and 95%, each look
uses 98.75%). The summary records the looks and the level used (``summary["sequential"]``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from audit.core.errors import UsageError

MAX_LOOKS = 4


def schedule(start: int, budget: int, max_looks: int = MAX_LOOKS) -> list[int]:
    """Limits of the looks: geometric from ``start`` to ``budget`` (last), at most ``max_looks``."""
    if start >= budget or max_looks <= 1:
        return [budget]
    looks = min(max_looks, 1 + math.ceil(math.log2(budget / start)))
    ratio = (budget / start) ** (1 / (looks - 1))
    out = [min(budget, math.ceil(start * ratio**i)) for i in range(looks)]
    out[-1] = budget
    return sorted(set(out))


def spent_level(level: float, looks: int) -> float:
    """The CI level of each look under Bonferroni alpha spending over ``looks`` looks."""
    return 1 - (1 - level) / max(1, looks)


def undecided_suites(summary: dict[str, Any]) -> set[str]:
    from audit.gates.evaluate import verdict_of
    from audit.summary.read import all_gate_results

    return {
        str(r.get("suite"))
        for r in all_gate_results(summary)
        if verdict_of(r) == "INCONCLUSIVE" or r.get("needs_data")
    }


def run_until_decided(
    config: Any, budget: int, echo: Callable[[str], None] = print, max_looks: int = MAX_LOOKS
) -> tuple[Path, int]:
    """Run ``config`` (an audit.run.runner.RunConfig) in rounds; returns (run folder, exit code)."""
    from audit.gates.evaluate import load_policy
    from audit.gates.text import print_gates
    from audit.report.write import write_reports
    from audit.run.runner import run_audit
    from audit.summary.build import build_summary

    if budget < 1:
        raise UsageError("--budget must be at least 1")
    policy = load_policy(config.policy)
    start = min([s.limit for s in config.suites if s.limit] or [max(1, budget // 8)])
    if start > budget:
        raise UsageError(f"--budget {budget} is below the first round's --limit {start}")
    limits = schedule(start, budget, max_looks)
    level = spent_level(policy.stats.ci_level, len(limits))
    adjusted = policy.model_copy(update={"stats": policy.stats.model_copy(update={"ci_level": level})})
    suites = [dataclasses.replace(s, limit=limits[0]) for s in config.suites]
    rounds: list[dict[str, Any]] = []
    run_dir: Path | None = None
    summary: dict[str, Any] = {}
    name = config.name
    for i, lim in enumerate(limits):
        todo = None if i == 0 else undecided_suites(summary)
        if todo is not None:
            suites = [dataclasses.replace(s, limit=lim) if _suite_id(s, summary) in todo else s for s in suites]
        cfg = dataclasses.replace(config, suites=suites, name=name, grow_limits=True, finalize=False)
        run_dir, _ = run_audit(cfg)
        name = run_dir.name
        summary = build_summary(run_dir, adjusted)
        open_ = undecided_suites(summary)
        n_records = sum(s.get("n_records", 0) for s in summary["suites"].values())
        rounds.append({"look": i + 1, "limit": lim, "n_records": n_records, "undecided_suites": sorted(open_)})
        g = summary["gates"]
        echo(
            f"until-decided: look {i + 1}/{len(limits)} (limit {lim}, CI level {level:.4g}): "
            f"{g['n_pass'] + g['n_fail']}/{g['n_total']} gates decided (PASS or FAIL), {n_records} records"
        )
        if not open_:
            break
    assert run_dir is not None
    summary["sequential"] = {
        "method": f"Bonferroni alpha spending over {len(limits)} planned looks",
        "ci_level_per_look": level,
        "planned_limits": limits,
        "budget": budget,
        "rounds": rounds,
        "stopped_early": len(rounds) < len(limits),
    }
    write_reports(run_dir, summary)
    print_gates(summary, echo)
    return run_dir, 0 if summary["gates"]["passed"] and not summary.get("damaged") else 1


def _suite_id(req: Any, summary: dict[str, Any]) -> str:
    """The suite id of a request: its name, or the id of the suite loaded from its path."""
    if req.suite in summary.get("suites", {}):
        return str(req.suite)
    from audit.suites import load_suite

    return load_suite(req.suite).id
