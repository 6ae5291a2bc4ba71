"""Alpha spending for sequential runs (``lm-audit run --until-decided``): the look schedule and the
CI level each look is judged at.

**Bonferroni over the looks that add records.** Each look's intervals use level
``1 - (1 - level) / L`` for ``L`` looks, so the chance that any look gives a wrong PASS or FAIL is at
most ``1 - level`` whenever the run stops. A planned look that would add no record (its limit keeps
no prompt the previous look did not, e.g. the suite has fewer prompts than the limit) judges the
same data again, cannot add an error, and is dropped before the run starts: it spends no alpha.
Which looks add records depends only on the suites' prompt pools, never on the scores, so dropping
them keeps the guarantee.

A run folder's manifest carries the schedule (``manifest["sequential"]``); ``spent_stats`` gives the
level ``gate`` and ``report`` judge such a run at.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

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


def looks_that_add(limits: Sequence[int], sizes: Callable[[int], Sequence[int]]) -> list[int]:
    """The limits of ``limits`` whose look adds records: ``sizes(limit)`` gives the number of prompts
    each suite keeps at that limit; a look is kept when some suite keeps more than at the last kept one."""
    kept: list[int] = []
    last: list[int] | None = None
    for lim in limits:
        now = list(sizes(lim))
        if last is None or any(a > b for a, b in zip(now, last, strict=True)):
            kept.append(lim)
            last = now
    return kept


def spent_level(level: float, looks: int) -> float:
    """The CI level of each look under Bonferroni alpha spending over ``looks`` looks."""
    return 1 - (1 - level) / max(1, looks)


def n_looks(sequential: Any) -> int | None:
    """The number of looks alpha is spent over, from a manifest's ``sequential`` block (None: not one)."""
    if not isinstance(sequential, dict):
        return None
    sched = sequential.get("schedule")
    if isinstance(sched, list) and sched:
        return len(sched)
    return None


def spent_stats(manifest: dict[str, Any], stats: Any) -> Any:
    """``stats`` (a StatsSettings) at the spent level of a sequential run; unchanged for other runs."""
    looks = n_looks(manifest.get("sequential"))
    if looks is None:
        return stats
    return stats.model_copy(update={"ci_level": spent_level(stats.ci_level, looks)})


def sequential_summary(sequential: dict[str, Any], level_per_look: float) -> dict[str, Any]:
    """``summary["sequential"]``: the manifest's look record and the level this summary judged at."""
    rounds = [r for r in sequential.get("rounds") or [] if isinstance(r, dict)]
    planned = sequential.get("schedule")
    sched = planned if isinstance(planned, list) else []
    out = {
        k: sequential.get(k)
        for k in (
            "method",
            "planned_limits",
            "schedule",
            "dropped_limits",
            "budget",
            "look",
            "look_status",
            "status",
        )
    }
    out.update(
        ci_level_per_look=level_per_look,
        rounds=rounds,
        stopped_early=bool(sched) and len(rounds) < len(sched) and sequential.get("status") != "budget spent",
    )
    return out
