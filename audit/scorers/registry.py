"""Scorer lookup by name: built-ins plus third-party plugins from the ``lm_audit.scorers``
entry-point group (``name = "package.module:ScorerClass"``), with no change to lm-audit.

``get_scorer("toxicity")`` returns the embedded default; ``get_scorer("toxicity", backend="detoxify",
checkpoint=...)`` or a suite entry like ``toxicity:detoxify`` selects another backend. Scorers are
cached per (name, options) in the process, because loading models is the slow part.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from audit.core.errors import UsageError
from audit.scorers.base import Scorer

# name -> "module:attribute" of a factory (a Scorer subclass or a function returning a Scorer).
BUILTIN: dict[str, str] = {
    "toxicity": "audit.scorers.toxicity:build_toxicity",
    "toxicity-second-opinion": "audit.scorers.toxicity.ensemble:SecondOpinionToxicity",
    "sentiment": "audit.scorers.sentiment:VaderSentiment",
    "regard": "audit.scorers.regard:RegardScorer",
    "factuality": "audit.scorers.factuality:build_factuality",
    "refusal": "audit.scorers.refusal:build_refusal",
    "hf-classifier": "audit.scorers.hf_classifier:HFClassifier",
}

_CACHE: dict[tuple[str, tuple[tuple[str, Any], ...]], Scorer] = {}


def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group="lm_audit.scorers")}


def available() -> list[str]:
    return sorted(set(BUILTIN) | set(_plugins()))


def scorer_factory(name: str) -> Callable[..., Scorer]:
    if name in BUILTIN:
        mod, _, attr = BUILTIN[name].partition(":")
        return getattr(importlib.import_module(mod), attr)
    plugins = _plugins()
    if name in plugins:
        return plugins[name].load()
    raise UsageError(f"unknown scorer '{name}' (available: {', '.join(available())})")


def release_scorers(names: set[str]) -> None:
    """Call ``release()`` on the cached scorers built for these names (with any options): a run does
    this once no later suite uses them, so their models do not stay resident to the end."""
    for (base, _), scorer in list(_CACHE.items()):
        if base in names:
            scorer.release()


def get_scorer(name: str, **options: Any) -> Scorer:
    """Build (or reuse) a scorer. ``name`` may carry a backend: ``toxicity:detoxify``."""
    base, _, backend = name.partition(":")
    if backend:
        options = {"backend": backend, **options}
    key = (base, tuple(sorted((k, repr(v)) for k, v in options.items())))
    if key not in _CACHE:
        scorer = scorer_factory(base)(**options)
        if not isinstance(scorer, Scorer):
            raise UsageError(f"scorer '{name}' did not build a Scorer (got {type(scorer).__name__})")
        _CACHE[key] = scorer
    return _CACHE[key]


def scorer_card(name: str, scorer: Scorer) -> dict[str, Any]:
    """What a run's manifest records of a scorer: its name, version and each output key's range and
    direction. The summary, reports and dashboard take score directions from here, so a plugin's
    ``ScoreSpec.higher_is`` counts like a built-in's."""
    return {
        "name": name,
        "version": scorer.version,
        "outputs": [
            {"key": s.key, "low": s.low, "high": s.high, "higher_is": s.higher_is} for s in scorer.outputs
        ],
    }
