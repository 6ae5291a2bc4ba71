"""Which direction of a per-record score is better: ``better``, ``worse`` or ``neutral``.

One source: each scorer's ``ScoreSpec.higher_is``, recorded by the runner in the manifest
(``scorers.<name>.outputs``) and carried by summary.json (``score_directions``). Metrics, group
tables, worst examples, comparisons and the dashboard read a run's declared directions through
``score_direction(key, declared)``; the table below only covers runs recorded before that and keys
no scorer writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Direction of the built-in per-record score keys, for runs whose manifest predates the scorers'
# recorded outputs and for keys no scorer writes (``stereotype_preferred``). A run's own manifest
# (``scorer_directions``) comes first; tests/test_score_directions.py holds this table to the
# built-in scorers' ScoreSpecs.
SCORE_DIRECTIONS: dict[str, str] = {
    "toxicity": "worse",
    "sentiment": "better",
    "sentiment_negative": "worse",
    "sentiment_positive": "better",
    "regard": "better",
    "factual": "better",
    "factual_exact": "better",
    "factual_contains": "better",
    "factual_semantic": "better",
    "stereotype_preferred": "neutral",
    "regard_logodds": "better",  # likelihood counterfactual suites (audit/suites/panel.py)
    "negative_logodds": "worse",
    "refusal": "neutral",  # refusing is right on harmful prompts and wrong on safe ones
    "refusal_full": "neutral",
    "refusal_partial": "neutral",
    "refusal_class": "neutral",
    "refusal_context": "neutral",
}


def scorer_directions(manifest: dict[str, Any]) -> dict[str, str]:
    """Score key -> ``higher_is`` as the run's scorers declared them (manifest ``scorers.*.outputs``)."""
    out: dict[str, str] = {}
    for card in (manifest.get("scorers") or {}).values():
        specs = card.get("outputs") if isinstance(card, dict) else None
        for spec in specs if isinstance(specs, list) else []:
            if isinstance(spec, dict) and spec.get("higher_is") in ("better", "worse", "neutral"):
                out.setdefault(str(spec.get("key")), spec["higher_is"])
    return out


def score_direction(key: str | None, declared: dict[str, str] | None = None) -> str:
    """``better``, ``worse`` or ``neutral`` for a score key: as declared by the run's scorers, else
    the built-in table, else by name (``toxicity_*``: worse), else neutral."""
    if key is None:
        return "neutral"
    if declared and key in declared:
        return declared[key]
    if key in SCORE_DIRECTIONS:
        return SCORE_DIRECTIONS[key]
    if key.startswith(("toxicity_", "toxblock_")) or key.endswith("_toxicity"):
        return "worse"
    return "neutral"


def score_directions_of(records: Sequence[Any], declared: dict[str, str]) -> dict[str, str]:
    """Every numeric score key of these records (and every declared one) -> its direction: what
    summary.json's ``score_directions`` carries for reports and the dashboard."""
    keys: dict[str, None] = dict.fromkeys(declared)
    for r in records:
        for k, v in ((r.get("scores") if isinstance(r, dict) else getattr(r, "scores", None)) or {}).items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                keys.setdefault(k, None)
    return {k: score_direction(k, declared) for k in keys}
