"""The possible range of each per-record score: ``(low, high)`` as the run's scorers declared it
(``ScoreSpec.low``/``high``, recorded in the manifest's ``scorers.<name>.outputs``). The summary
keeps every interval of a figure inside the range the figure can take (a mean of sentiment inside
-1..1, a gap inside 0..high − low) and writes it as each figure's ``range``.
"""

from __future__ import annotations

import math
from typing import Any


def scorer_ranges(manifest: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Score key -> (low, high) from the manifest's ``scorers.*.outputs``; keys without finite,
    ordered bounds are left out (no range is known for them)."""
    out: dict[str, tuple[float, float]] = {}
    for card in (manifest.get("scorers") or {}).values():
        specs = card.get("outputs") if isinstance(card, dict) else None
        for spec in specs if isinstance(specs, list) else []:
            if not isinstance(spec, dict):
                continue
            low, high = (
                float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan
                for v in (spec.get("low"), spec.get("high"))
            )
            if math.isfinite(low) and math.isfinite(high) and low < high:
                out.setdefault(str(spec.get("key")), (low, high))
    return out
