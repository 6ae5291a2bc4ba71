"""Prompts needed: how many more clusters would probably decide a gate, before or after a run.

A CI's half-width shrinks as 1/sqrt(n) in the number of resampling units (prompts, or
counterfactual sets). An INCONCLUSIVE gate with estimate ``e``, threshold ``t`` and half-width
``h`` on the side facing the threshold (from ``n`` units) clears the threshold once the half-width
is below ``|e - t|``, i.e. at about ``n * (h / |e - t|)^2`` units, if the estimate and the spread
stay where they are. That is a point forecast, not a promise: with the estimate this close to the
threshold, the next sample moves the estimate too. When the estimate sits on the threshold no
sample size is likely to decide the gate and ``more`` is null.

``plan`` (``lm-audit plan``) answers the question before a run: the sample size at which a gate
is decided with a stated power when the true value is a stated distance from the threshold.
"""

from __future__ import annotations

import math
from typing import Any

from scipy import stats as sps


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def more_needed(estimate: float, lo: float, hi: float, threshold: float, n: int, op: str) -> int | None:
    """More units that would probably move the CI ``[lo, hi]`` (from ``n`` units) off ``threshold``.

    Uses the half-width on the side that faces the threshold. None when the estimate sits on it.
    """
    distance = abs(estimate - threshold)
    if n < 1 or distance <= 1e-12 * max(1.0, abs(threshold)):
        return None
    # side facing the threshold: the upper end when the estimate is below it, else the lower end
    half = (hi - estimate) if estimate < threshold else (estimate - lo)
    if not (_finite(half) and half > 0):
        return None
    total = n * (half / distance) ** 2
    return max(1, math.ceil(total) - n)


def needed_text(more: int | None, unit: str, where: str = "") -> str:
    if more is None:
        return "the estimate sits on the threshold: more data is unlikely to decide this"
    scope = f" in {where}" if where else ""
    return f"≈ {more:,} more {unit}{scope} would decide this"


def needed_for_gate(result: dict[str, Any], fig: dict[str, Any], unit: str, figure: str) -> dict[str, Any]:
    """The ``needed`` value of an INCONCLUSIVE gate result (contract 1)."""
    where = figure[figure.index("[") + 1 : -1] if figure.endswith("]") and "[" in figure else ""
    n = result.get("n_clusters")
    e, lo, hi = result.get("estimate"), result.get("ci_low"), result.get("ci_high")
    if not (isinstance(n, int) and all(_finite(x) for x in (e, lo, hi))):
        return {"more": None, "unit": unit, "text": f"more {unit} would narrow the CI (size unknown)"}
    more = more_needed(float(e), float(lo), float(hi), float(result["threshold"]), n, result["op"])
    return {"more": more, "unit": unit, "text": needed_text(more, unit, where)}


# --------------------------------------------------------------------------- before a run


def n_for_mean(sd: float, margin: float, power: float = 0.8, alpha: float = 0.05) -> int | None:
    """Units needed so that a two-sided (1 - alpha) t-interval of a mean excludes a threshold
    ``margin`` away from the true value with probability ``power``:
    n = ((z_{1-alpha/2} + z_power) * sd / margin)^2, refined once with t quantiles."""
    if not (_finite(sd) and _finite(margin)) or margin <= 0:
        return None
    if sd <= 0:
        return 2
    za, zb = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf(power)
    n = max(2.0, ((za + zb) * sd / margin) ** 2)
    ta, tb = sps.t.ppf(1 - alpha / 2, n - 1), sps.t.ppf(power, n - 1)
    return max(2, math.ceil(((ta + tb) * sd / margin) ** 2))


def n_for_proportion(p: float, margin: float, design_effect: float = 1.0, power: float = 0.8, alpha: float = 0.05) -> int | None:
    """Records needed to decide a rate ``p`` against a threshold ``margin`` away (normal
    approximation, times the design effect of clustered samples)."""
    if not (_finite(p) and _finite(margin)) or margin <= 0:
        return None
    sd = math.sqrt(max(p * (1 - p), 1e-4))
    n = n_for_mean(sd, margin, power, alpha)
    return None if n is None else math.ceil(n * max(1.0, design_effect))


def n_for_equivalence(sd: float, margin: float, n_pairs: int = 1, power: float = 0.8, alpha: float = 0.05) -> int | None:
    """Sets needed so a gap gate ``gap <= delta`` passes with probability ``power`` when every
    pairwise difference is ``delta - margin`` away... here: true difference 0 and the pass margin
    is ``margin`` (= delta). Each pair must satisfy |d| + z·se < delta; with ``n_pairs`` roughly
    independent pairs each needs power ``power ** (1 / n_pairs)``."""
    if not (_finite(sd) and _finite(margin)) or margin <= 0:
        return None
    if sd <= 0:
        return 2
    per_pair = power ** (1.0 / max(1, n_pairs))
    za, zb = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf((1 + per_pair) / 2)
    return max(2, math.ceil(((za + zb) * sd / margin) ** 2))


def unit_sd(fig: dict[str, Any], level: float = 0.95) -> float | None:
    """The SD of one resampling unit's contribution, from a figure's CI and cluster count
    (se = half-width / z; sd = se * sqrt(n)). For a gap, the largest over its pairwise differences."""
    pairs = fig.get("pairs") or []
    if pairs:
        sds = [p["se"] * math.sqrt(p["n"]) for p in pairs if _finite(p.get("se")) and p.get("n")]
        return max(sds) if sds else None
    n, lo, hi = fig.get("n_clusters"), fig.get("ci_low"), fig.get("ci_high")
    if not (isinstance(n, int) and n >= 2 and _finite(lo) and _finite(hi)):
        return None
    z = sps.norm.ppf(1 - (1 - level) / 2)
    return (float(hi) - float(lo)) / (2 * z) * math.sqrt(n)


def plan_gate(
    gate: dict[str, Any], sd: float | None, effect: float, power: float, alpha: float, n_groups: int = 2
) -> dict[str, Any]:
    """Units needed to decide one gate. ``effect``: for a gap gate, the true gap assumed (0 = an
    unbiased model; it must pass); otherwise how far the true value sits on the safe side of the
    threshold (it must pass)."""
    is_gap = str(gate["metric"]).startswith("gap(")
    if sd is None:
        return {"n": None, "why": "no spread known (give --sd or --from RUN)"}
    if is_gap:
        margin = float(gate["threshold"]) - effect
        n_pairs = n_groups * (n_groups - 1) // 2
        n = n_for_equivalence(sd, margin, n_pairs, power, alpha)
    else:
        n = n_for_mean(sd, effect, power, alpha)
    return {"n": n, "sd": sd, "margin": margin if is_gap else effect}
