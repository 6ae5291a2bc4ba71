"""``lm-audit run --until-decided [--budget N]``: add prompts in rounds until every gate is decided.

Rounds grow each undecided suite's ``--limit`` geometrically from the first limit to the budget
(prompts per suite), at most ``MAX_LOOKS`` looks. The stratified selection at a larger limit
holds every prompt of a smaller one (``stratified_limit`` extends the same round-robin over whole
counterfactual sets), so a round only adds prompts, and a record's completion depends on its key
and the run seed alone, never on the round it was drawn in.

Validity under optional stopping: Bonferroni alpha spending over the looks that add records
(``audit/stats/sequential.py``): every look judges the gates at ``1 - (1 - ci_level) / L``.

Resuming: the manifest's ``sequential`` block records the schedule, the current look, its status
(``running`` / ``complete``) and each suite's limit at that look, and the run stays ``running``
until the last look is judged (a killed run reads ``interrupted``, never ``complete``). Re-running
the same command picks up at the look where it stopped: a look cut short is finished with its own
limits; after a finished look the next one starts from that look's undecided suites. The records
equal an uninterrupted run's. ``gate`` and ``report`` judge the run at the spent level (the
summary's ``sequential`` block says which).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit.core.errors import UsageError
from audit.stats.sequential import MAX_LOOKS, looks_that_add, schedule, spent_level

__all__ = ["MAX_LOOKS", "plan_looks", "run_until_decided", "schedule", "spent_level", "undecided_suites"]


def undecided_suites(summary: dict[str, Any]) -> set[str]:
    from audit.gates.evaluate import verdict_of
    from audit.summary.read import all_gate_results

    return {
        str(r.get("suite"))
        for r in all_gate_results(summary)
        if verdict_of(r) == "INCONCLUSIVE" or r.get("needs_data")
    }


def plan_looks(
    config: Any, budget: int, max_looks: int
) -> tuple[list[str], list[int], list[int], Callable[[int], list[int]]]:
    """(suite ids in request order, planned limits, the looks that add records, prompts per suite at a limit)."""
    from audit.run.work_units import plan_suites
    from audit.suites import limit_by_axis

    if budget < 1:
        raise UsageError("--budget must be at least 1")
    start = min([s.limit for s in config.suites if s.limit] or [max(1, budget // 8)])
    if start > budget:
        raise UsageError(f"--budget {budget} is below the first round's --limit {start}")
    full = plan_suites([dataclasses.replace(s, limit=None) for s in config.suites], config.selection_seed)
    ids = [ps.loaded.id for ps in full]

    @functools.cache
    def sizes(limit: int) -> list[int]:
        return [
            len(
                limit_by_axis(
                    ps.loaded.items, limit, ps.axis_limits or {}, config.selection_seed,
                    ps.loaded.suite.group_attributes,
                )
            )
            for ps in full
        ]

    planned = schedule(start, budget, max_looks)
    return ids, planned, looks_that_add(planned, sizes), sizes


def _resume_state(run_dir: Path, block: dict[str, Any]) -> dict[str, Any] | None:
    """The ``sequential`` block of an earlier run of the same command in ``run_dir``, or None."""
    from audit.store.run_store import read_manifest

    if not (run_dir / "manifest.json").is_file():
        return None
    old = read_manifest(run_dir).get("sequential")
    if old is None:
        return None
    if not isinstance(old, dict):
        raise UsageError(f"{run_dir}: corrupt manifest: 'sequential' must be an object")
    for k in ("planned_limits", "schedule", "budget", "ci_level"):
        if old.get(k) != block[k]:
            raise UsageError(
                f"{run_dir} already holds an --until-decided run with a different {k.replace('_', ' ')} "
                f"({old.get(k)!r:.60}, now {block[k]!r:.60}); re-run the same command to resume, or use another --name"
            )
    return old


def _update(run_dir: Path, **fields: Any) -> dict[str, Any]:
    from audit.store.run_store import atomic_write_json, read_manifest

    manifest = read_manifest(run_dir)
    manifest.update(fields)
    atomic_write_json(run_dir / "manifest.json", manifest)
    return manifest


def run_until_decided(
    config: Any, budget: int, echo: Callable[[str], None] = print, max_looks: int = MAX_LOOKS
) -> tuple[Path, int]:
    """Run ``config`` (an audit.run.runner.RunConfig) in rounds; returns (run folder, exit code)."""
    from audit.gates.evaluate import load_policy
    from audit.gates.text import print_gates
    from audit.report.write import write_reports
    from audit.run.runner import default_run_id, run_audit
    from audit.store.run_store import RunStore
    from audit.summary.build import build_summary

    policy = load_policy(config.policy)
    ids, planned, limits, sizes = plan_looks(config, budget, max_looks)
    level = spent_level(policy.stats.ci_level, len(limits))
    dropped = [lim for lim in planned if lim not in limits]
    block: dict[str, Any] = {
        "method": f"Bonferroni alpha spending over {len(limits)} look(s) that add records",
        "ci_level": policy.stats.ci_level,
        "ci_level_per_look": level,
        "planned_limits": planned,
        "schedule": limits,
        "dropped_limits": dropped,
        "budget": budget,
    }
    name = config.name or default_run_id(config)
    store = RunStore(config.out, name)
    store.lock()  # held across the looks; run_audit shares it
    try:
        state = _resume_state(store.dir, block)
        rounds: list[dict[str, Any]] = list((state or {}).get("rounds") or [])
        first = {sid: limits[0] for sid in ids}
        if state is None:
            look, current = 1, first
        elif state.get("look_status") == "running" or not rounds:
            look, current = int(state.get("look") or 1), {**first, **(state.get("limits") or {})}
            echo(f"until-decided: resuming look {look}/{len(limits)} of {store.dir}")
        else:
            look, current = int(state["look"]), {**first, **(state.get("limits") or {})}
            echo(f"until-decided: look {look}/{len(limits)} of {store.dir} was finished; resuming after it")
        summary: dict[str, Any] = {}
        while True:
            status: str | None = None
            done_already = (
                state is not None and state.get("look_status") == "complete" and look == state.get("look")
            )
            seq = {
                **block,
                "look": look,
                "look_status": "running",
                "limits": current,
                "rounds": rounds,
                "status": "running",
            }
            if not done_already:
                suites = [
                    dataclasses.replace(s, limit=current[sid])
                    for s, sid in zip(config.suites, ids, strict=True)
                ]
                cfg = dataclasses.replace(
                    config,
                    suites=suites,
                    name=name,
                    grow_limits=True,
                    finalize=False,
                    sequential=seq,
                    lock_held=True,
                )
                run_audit(cfg)
            summary = build_summary(store.dir, policy, self_audit=False)
            open_ = undecided_suites(summary)
            n_records = sum(s.get("n_records", 0) for s in summary["suites"].values())
            if not done_already:
                added = n_records - (rounds[-1]["n_records"] if rounds else 0)
                lim = max(current.values())
                rounds.append(
                    {
                        "look": look,
                        "limit": lim,
                        "limits": dict(current),
                        "n_records": n_records,
                        "added": added,
                        "undecided_suites": sorted(open_),
                    }
                )
                g = summary["gates"]
                echo(
                    f"until-decided: look {look}/{len(limits)} (limit {lim}, CI level {level:.4g}): "
                    f"{g['n_pass'] + g['n_fail']}/{g['n_total']} gates decided (PASS or FAIL), {n_records} records"
                )
            grown = {
                sid: (limits[look] if sid in open_ and look < len(limits) else current[sid]) for sid in ids
            }
            if not open_:
                status = "decided"
            elif look >= len(limits):
                status = "budget spent"
            elif sizes_of(sizes, grown, ids) == sizes_of(sizes, current, ids):
                status = (
                    "no more prompts"  # the next look would add no records: it is not taken (no alpha spent)
                )
            _update(
                store.dir,
                sequential={
                    **seq,
                    "look_status": "complete",
                    "rounds": rounds,
                    "status": status or "running",
                },
            )
            if status:
                break
            look, current, state = look + 1, grown, None
        final = {
            **block,
            "look": look,
            "look_status": "complete",
            "limits": current,
            "rounds": rounds,
            "status": status,
            "stopped_early": len(rounds) < len(limits),
        }
        _update(store.dir, sequential=final)
        summary = build_summary(store.dir, policy, status="complete")
        write_reports(store.dir, summary)  # reports first: a folder marked complete has its summary
        _update(store.dir, status="complete", finished=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    finally:
        store.close()
    print_gates(summary, echo)
    return store.dir, 0 if summary["gates"]["passed"] and not summary.get("damaged") else 1


def sizes_of(sizes: Callable[[int], list[int]], limits: dict[str, int], ids: list[str]) -> list[int]:
    """Prompts each suite keeps under per-suite ``limits``."""
    return [sizes(limits[sid])[i] for i, sid in enumerate(ids)]
