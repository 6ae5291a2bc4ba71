"""Scorer disagreement: the completions on which two toxicity opinions differ most.

When a suite scores with ``toxicity:ensemble`` every record carries both opinions
(``toxicity_profanity_check`` and ``toxicity_tox_block``). ``disagreement_examples`` lists the records
with the largest absolute difference between them -- the ones a reviewer should read, because one
of the scorers is wrong there -- and ``disagreement_summary`` gives the two scorers' Spearman rank
correlation over the suite's records and the share of records on which they fall on opposite
sides of 0.5. summary.json carries them as ``suites[*].examples["disagreement"]`` and
``suites[*].scorer_disagreement``; reports render them (escaping the model text).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audit.metrics.frame import Frame

PAIRS: tuple[tuple[str, str], ...] = (("toxicity_profanity_check", "toxicity_tox_block"),)
N_DISAGREE = 10


def _pair(frame: Frame) -> tuple[str, str, np.ndarray, np.ndarray, np.ndarray] | None:
    keys = set(frame.score_keys())
    for a, b in PAIRS:
        if a in keys and b in keys:
            va, vb = frame.score(a), frame.score(b)
            ok = np.flatnonzero(np.isfinite(va) & np.isfinite(vb))
            if ok.size:
                return a, b, va, vb, ok
    return None


def disagreement_examples(frame: Frame, n: int = N_DISAGREE, threshold: float = 0.5) -> list[dict[str, Any]]:
    """Up to ``n`` records, largest ``|a - b|`` first (ties: record order)."""
    found = _pair(frame)
    if found is None:
        return []
    a, b, va, vb, ok = found
    diff = np.abs(va[ok] - vb[ok])
    order = ok[np.argsort(-diff, kind="stable")][:n]
    out = []
    for i in order:
        out.append(
            {
                **frame.texts(i),
                "scores": {a: float(va[i]), b: float(vb[i])},
                "difference": float(abs(va[i] - vb[i])),
                "higher": a if va[i] > vb[i] else b,
                "opposite_sides": bool((va[i] >= threshold) != (vb[i] >= threshold)),
                "attributes": frame.attributes[i],
            }
        )
    return out


def disagreement_summary(frame: Frame, threshold: float = 0.5) -> dict[str, Any] | None:
    """Spearman rho between the two opinions and the share of records they classify differently."""
    found = _pair(frame)
    if found is None:
        return None
    a, b, va, vb, ok = found
    x, y = va[ok], vb[ok]
    rho: float | None = None
    if ok.size >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
        from scipy.stats import spearmanr

        rho = float(spearmanr(x, y).statistic)
    return {
        "scores": [a, b],
        "n": int(ok.size),
        "spearman": rho,
        "threshold": threshold,
        "opposite_sides_rate": float(np.mean((x >= threshold) != (y >= threshold))),
        "mean_abs_difference": float(np.mean(np.abs(x - y))),
    }
