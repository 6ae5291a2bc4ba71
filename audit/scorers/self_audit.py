"""Scorer self-audit: does the toxicity scorer itself flag identity words?

A demographic toxicity gap means little if the scorer gives "I am a gay man." 0.95. Every audit
that uses a toxicity scorer runs :func:`run_self_audit` on the built-in calibration set
(``data/identity_calibration.json``: benign sentences naming each group of the bias suite's axes in
several forms, plus clearly toxic and clearly benign controls) and stores the result under
``summary["scorer_audit"]["toxicity"]``:

- ``groups``: per group, ``fpr`` (share of its benign sentences scored >= threshold: false
  positives), ``mean`` score and ``n`` sentences;
- ``neutralized``: the same with identity terms replaced by a neutral placeholder
  (``audit.scorers.neutralize``), i.e. what ``neutralize_identity=True`` would give;
- ``controls``: ``toxic_mean`` and ``benign_mean`` (plus ``toxic_recall`` and ``benign_fpr`` at the
  threshold, and their ``n``): a scorer that cannot separate these is broken, whatever its gaps;
- ``fpr_gap``: the between-group false-positive gap (max group FPR - min group FPR) ``raw`` and
  ``neutralized``, each with the groups at both ends;
- ``axes``: group -> axis (gender, race, religion, sexual_orientation, nationality, age,
  disability).

It runs the calibration texts through the scorer in two batched calls (< 1 s with the embedded
scorer) and caches the result per scorer, options and threshold in the process.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from functools import cache
from typing import Any

from audit.core.errors import UsageError
from audit.scorers.base import Scorer
from audit.scorers.calibration import load_calibration
from audit.scorers.neutralize import IdentityNeutralized


def _score_key(scorer: Scorer) -> str:
    keys = [s.key for s in scorer.outputs if s.higher_is == "worse"]
    if not keys:
        raise UsageError(
            f"scorer '{scorer.name}' has no output where higher is worse; the self-audit measures "
            "false positives of a toxicity-like scorer"
        )
    return scorer.name if scorer.name in keys else keys[0]


def _per_group(
    groups: list[str], values: list[float], threshold: float
) -> dict[str, dict[str, float | int]]:
    by: dict[str, list[float]] = defaultdict(list)
    for g, v in zip(groups, values, strict=True):
        by[g].append(v)
    return {
        g: {
            "fpr": sum(v >= threshold for v in vs) / len(vs),
            "mean": sum(vs) / len(vs),
            "n": len(vs),
        }
        for g, vs in by.items()
    }


def _gap(per_group: dict[str, dict[str, float | int]]) -> dict[str, Any]:
    hi = max(per_group, key=lambda g: (per_group[g]["fpr"], per_group[g]["mean"]))
    lo = min(per_group, key=lambda g: (per_group[g]["fpr"], per_group[g]["mean"]))
    return {
        "estimate": float(per_group[hi]["fpr"]) - float(per_group[lo]["fpr"]),
        "max_group": hi,
        "min_group": lo,
    }


def _values(scorer: Scorer, key: str, texts: list[str]) -> list[float]:
    rows = scorer.score(texts)
    out: list[float] = []
    for row in rows:
        v = row.get(key)
        out.append(float("nan") if v is None else float(v))
    return out


def audit_scorer(scorer: Scorer, threshold: float = 0.5, scorer_name: str | None = None) -> dict[str, Any]:
    """Self-audit an already-built scorer (see the module docstring for the result's shape)."""
    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"self-audit threshold must be within 0..1, got {threshold}")
    cal = load_calibration()
    key = _score_key(scorer)
    neutral = scorer if isinstance(scorer, IdentityNeutralized) else IdentityNeutralized(scorer)
    ident = [s.text for s in cal.sentences]
    groups = [s.group for s in cal.sentences]
    controls = list(cal.toxic_controls) + list(cal.benign_controls)
    raw_vals = _values(scorer, key, ident + controls)
    neutral_vals = _values(neutral, key, ident)
    n_id, n_tox = len(ident), len(cal.toxic_controls)
    toxic = raw_vals[n_id : n_id + n_tox]
    benign = raw_vals[n_id + n_tox :]
    per_group = _per_group(groups, raw_vals[:n_id], threshold)
    per_group_neutral = _per_group(groups, neutral_vals, threshold)
    return {
        "scorer": scorer_name or scorer.name,
        "version": scorer.version,
        "key": key,
        "threshold": threshold,
        "calibration_version": cal.version,
        "groups": per_group,
        "neutralized": per_group_neutral,
        "controls": {
            "toxic_mean": sum(toxic) / len(toxic),
            "benign_mean": sum(benign) / len(benign),
            "toxic_recall": sum(v >= threshold for v in toxic) / len(toxic),
            "benign_fpr": sum(v >= threshold for v in benign) / len(benign),
            "n_toxic": len(toxic),
            "n_benign": len(benign),
        },
        "fpr_gap": {"raw": _gap(per_group), "neutralized": _gap(per_group_neutral)},
        "axes": dict(cal.axes),
    }


@cache
def _cached(scorer_name: str, threshold: float, options: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    from audit.scorers.registry import get_scorer

    scorer = get_scorer(scorer_name, **dict(options))
    return audit_scorer(scorer, threshold, scorer_name=scorer_name)


def run_self_audit(scorer_name: str = "toxicity", threshold: float = 0.5, **options: Any) -> dict[str, Any]:
    """Run the scorer self-audit for ``get_scorer(scorer_name, **options)`` at ``threshold``.

    Returns the dict stored under ``summary["scorer_audit"][...]`` (a fresh copy each call).
    """
    try:
        opts = tuple(sorted(options.items()))
        hash(opts)
    except TypeError:  # unhashable option values (dicts): no caching
        from audit.scorers.registry import get_scorer

        return audit_scorer(get_scorer(scorer_name, **options), float(threshold), scorer_name=scorer_name)
    return copy.deepcopy(_cached(scorer_name, float(threshold), opts))
