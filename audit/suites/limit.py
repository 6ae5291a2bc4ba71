"""``--limit``: a reproducible, stratified subset that keeps counterfactual sets whole."""

from __future__ import annotations

import json
import random
from collections import defaultdict

from audit.core.errors import UsageError
from audit.suites.schema import Item


def stratified_limit(items: list[Item], limit: int | None, seed: int, by: list[str]) -> list[Item]:
    """Keep about ``limit`` items, reproducibly, covering every group and cell.

    Items are grouped into counterfactual sets (items sharing ``seed_key``), kept whole so pairs
    stay complete. A set's stratum is its ``axis`` and, for each of the ``by`` attributes (a suite's
    ``group_attributes``, cells included), the values its members cover: so every axis, every group
    of a data suite and every cell of an intersectional suite is a stratum or is covered by every
    set of one. Every stratum contributes at least one set, then strata are visited round-robin
    until ``limit`` items are reached. So the result may exceed ``limit``: by up to one set, or up
    to one set per stratum when ``limit`` is smaller than that. It keeps the suite's item order and
    depends only on the items, the limit and the seed.

    ``seed`` is the *selection* seed (``lm-audit run --selection-seed``, default 0), never the run's
    sampling seed: runs with different ``--seed`` or different models keep the same prompts, so
    ``lm-audit compare`` pairs all of them.
    """
    if limit is None or limit >= len(items):
        return items
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    sets: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        sets[it.seed_key or it.item_id].append(it)
    attrs = [a for a in ["axis", *by] if any(a in it.attributes for it in items)]
    attrs = list(dict.fromkeys(attrs))
    strata: dict[str, list[str]] = defaultdict(list)
    for key, members in sets.items():
        covered = [sorted({str(m.attributes.get(a, "")) for m in members}) for a in attrs]
        strata[json.dumps(covered)].append(key)
    rng = random.Random(seed)
    order = sorted(strata)
    for s in order:
        strata[s].sort()
        rng.shuffle(strata[s])
    # the first round takes one set from every stratum whatever the limit, so every group is covered
    chosen = [strata[s].pop() for s in order]
    count = sum(len(sets[k]) for k in chosen)
    while count < limit and any(strata[s] for s in order):
        for s in order:
            if strata[s] and count < limit:
                key = strata[s].pop()
                chosen.append(key)
                count += len(sets[key])
    keep = set(chosen)
    return [it for it in items if (it.seed_key or it.item_id) in keep]


def limit_by_axis(
    items: list[Item], limit: int | None, axis_limits: dict[str, int], seed: int, by: list[str]
) -> list[Item]:
    """``limit`` over the axes not named in ``axis_limits``, and each named axis its own limit.

    A profile uses it where one axis needs more counterfactual sets to decide its gate than the
    round-robin share of ``limit`` gives it (``lm-audit plan`` says how many). Each part is a
    ``stratified_limit`` of its own (so each keeps its sets whole and covers its groups); the result
    keeps the suite's item order. An axis the suite does not have is an error.
    """
    if not axis_limits:
        return stratified_limit(items, limit, seed, by)
    by_axis: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        by_axis[str(it.attributes.get("axis", ""))].append(it)
    unknown = sorted(set(axis_limits) - set(by_axis))
    if unknown:
        raise UsageError(f"axis_limits names '{unknown[0]}', not an axis of this suite ({', '.join(sorted(by_axis))})")
    rest = [it for axis, members in by_axis.items() if axis not in axis_limits for it in members]
    parts = [stratified_limit(rest, limit, seed, by)] if rest else []
    parts += [stratified_limit(by_axis[axis], n, seed, by) for axis, n in axis_limits.items()]
    keep = {id(it) for part in parts for it in part}
    return [it for it in items if id(it) in keep]
