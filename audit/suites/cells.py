"""Intersectional cells: attributes joined with ``×`` (``gender×race`` = ``female×black``).

Records of crossed templates carry each attribute and the cell attribute; data-file suites get the
cell attributes their ``group_attributes``, metric ``by`` and gates name, derived from the parts.
``select_cell`` reads a multi-attribute selector (``[gender=female,race=black]``) out of a metric's
``by`` breakdown, whatever the order the attributes are written in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from audit.suites.schema import CELL_SEP, Item

__all__ = ["CELL_SEP", "add_cell_attributes", "parse_selector", "select_cell"]


def parse_selector(text: str) -> list[tuple[str, str]] | None:
    """``"gender=female,race=black"`` -> ``[("gender", "female"), ("race", "black")]`` (None: malformed)."""
    pairs = []
    for part in text.split(","):
        attr, eq, value = part.partition("=")
        if not eq or not attr.strip() or not value.strip():
            return None
        pairs.append((attr.strip(), value.strip()))
    if len({a for a, _ in pairs}) != len(pairs):
        return None
    return pairs


def cell_of(pairs: list[tuple[str, str]], order: list[str]) -> tuple[str, str]:
    """The (cell attribute, cell value) of selector pairs, in the attribute order ``order``."""
    d = dict(pairs)
    return CELL_SEP.join(order), CELL_SEP.join(d[a] for a in order)


def select_cell(by: dict[str, dict[str, Any]], attr: str, value: str) -> Any:
    """The breakdown entry of ``attr=value`` or of a multi-attribute selector.

    ``attr``/``value`` are the halves of ``label[attr=value]`` split at the first ``=``, so
    ``[gender=female,race=black]`` arrives as ``("gender", "female,race=black")``.
    """
    pairs = parse_selector(f"{attr}={value}")
    if pairs is None:
        return None
    if len(pairs) == 1:
        a, v = pairs[0]
        return by.get(a, {}).get(v)
    wanted = {a for a, _ in pairs}
    for key, cells in by.items():
        parts = key.split(CELL_SEP)
        if len(parts) == len(wanted) and set(parts) == wanted:
            return cells.get(cell_of(pairs, parts)[1])
    return None


def add_cell_attributes(items: Iterable[Item], names: Iterable[str]) -> None:
    """Set each cell attribute in ``names`` (those holding ``×``) on the items that carry all its parts."""
    cells = [(n, n.split(CELL_SEP)) for n in dict.fromkeys(names) if CELL_SEP in n]
    if not cells:
        return
    for it in items:
        for name, parts in cells:
            if name not in it.attributes and all(p in it.attributes for p in parts):
                it.attributes[name] = CELL_SEP.join(str(it.attributes[p]) for p in parts)
