"""Checks a finished summary's intervals against the promises docs/statistics.md makes: every
interval lies inside its figure's ``range``, and no interval has zero width unless the figure is
flagged ``uninformative`` (so a gate on it is an ERROR, never a certain PASS).

``interval_problems(summary)`` lists every breach as one line naming the suite and the figure;
an empty list means the summary keeps both promises. Tests run it over real runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

TOL = 1e-9


def figures(summary: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, figure) for every figure with an interval: metrics and their ``by`` cells, group
    cells, overall, mean_of_groups, vs_overall, gaps and each gap's pairs."""
    for suite_id, suite in (summary.get("suites") or {}).items():
        for m in suite.get("metrics") or []:
            yield f"{suite_id} {m.get('name')}", m
            for attr, cells in (m.get("by") or {}).items():
                for value, cell in cells.items():
                    yield f"{suite_id} {m.get('name')}[{attr}={value}]", cell
        for g in suite.get("groups") or []:
            where = f"{suite_id} {g.get('score')}/{g.get('attribute')}"
            for name, cell in (g.get("by_group") or {}).items():
                yield f"{where} group {name}", cell
            for name, cell in (g.get("vs_overall") or {}).items():
                yield f"{where} vs_overall {name}", {**cell, "range": _diff_range(g)}
            for key in ("overall", "mean_of_groups", "gap"):
                if isinstance(g.get(key), dict):
                    yield f"{where} {key}", g[key]
            spread = _spread(g)
            for p in (g.get("gap") or {}).get("pairs") or []:
                rng = None if spread is None else [-spread, spread]
                flagged = p.get("uninformative") or g["gap"].get("uninformative")
                yield f"{where} pair {p.get('a')}-{p.get('b')}", {**p, "range": rng, "uninformative": flagged}


def _spread(group: dict[str, Any]) -> float | None:
    rng = (group.get("gap") or {}).get("range")
    return None if not rng else float(rng[1]) - float(rng[0])


def _diff_range(group: dict[str, Any]) -> list[float] | None:
    spread = _spread(group)
    return None if spread is None else [-spread, spread]


def interval_problems(summary: dict[str, Any]) -> list[str]:
    """One line per interval outside its figure's range, or of zero width and neither flagged
    uninformative nor resting on at least ``MIN_CLUSTERS_CERTAIN`` clusters (``zero_variance``)."""
    out = []
    for where, fig in figures(summary):
        lo, hi = fig.get("ci_low"), fig.get("ci_high")
        if lo is None or hi is None:
            continue
        rng = fig.get("range")
        if rng and (lo < rng[0] - TOL or hi > rng[1] + TOL):
            out.append(f"{where}: [{lo}, {hi}] outside its range {rng[0]}..{rng[1]}")
        zero = hi - lo <= TOL * max(1.0, abs(fig.get("estimate") or 0.0))
        if zero and not fig.get("uninformative") and not fig.get("zero_variance"):
            out.append(f"{where}: zero-width interval [{lo}, {hi}] not flagged uninformative")
    return out
