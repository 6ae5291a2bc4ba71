"""Sample sizes that decide a gate: one model of a gate's decision, used before a run
(``lm-audit plan``), after one (``plan --from RUN``) and for the run's own "≈ N more" on an
INCONCLUSIVE gate, so that the three always agree.

The model (docs/statistics.md, "Planning"): a figure is estimated from ``n`` units (prompts,
likelihood items or counterfactual sets) whose contributions have SD ``sd``; its CI is
``estimate ± t(n-1) · sd / sqrt(n)``. A gate is *decided* at ``n`` when that CI lies wholly on one
side of the threshold (PASS or FAIL). ``units_needed`` is the smallest ``n`` at which the gate is
decided with probability ``power`` when the true value is ``truth``.

- A plain figure: P(PASS) and P(FAIL) are normal tail areas (closed form).
- A gap ``gap(score, attribute) <= δ`` over ``k`` groups is the intersection-union gate of
  ``audit.stats.intervals.pairwise_gap``: it passes when all k(k-1)/2 pairwise differences have
  ``|d| + t·se <= δ`` and fails when one has ``|d| - t_B·se > δ`` (Bonferroni t over the pairs). The
  group means of ``n`` sets are simulated (seeded, 4,000 draws, common random numbers across ``n``,
  the SD estimate's own chi-square noise included): more groups need more sets.
- The spread of a gap is the per-set SD of a pairwise difference, **pooled** over the pairs
  (each pair's variance weighted by its degrees of freedom), not the largest of them.
- A spread read from a pilot is itself uncertain: ``plan_range`` gives the sizes at the ends of the
  spread's 80% chi-square interval. From 3 sets that range is wide, and the plan says so.

The run's "≈ N more" (``needed_for_gate``) takes the run's own estimate (or pairwise differences)
as the truth, its spread, its CI level and ``DEFAULT_POWER``; ``plan --from RUN`` with no
``--effect`` makes the same call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, TypeGuard

import numpy as np
from scipy import stats as sps

DEFAULT_POWER = 0.8
SMALL_PILOT = 30  # a run with fewer units says how unsure its "≈ N more" is (the SD's 80% range)
MAX_UNITS = 10_000_000  # above this a gate is called "not decidable by more data"
_DRAWS = 4000


def _finite(v: Any) -> TypeGuard[float]:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _t(level: float, df: float) -> float:
    return float(sps.t.ppf(1 - (1 - level) / 2, max(df, 1.0)))


@dataclass(frozen=True)
class GateModel:
    """What a plan knows about one gate.

    ``truth``: the assumed true value (one number), or for a gap the ``k`` true group means.
    ``sd``: SD of one unit (for a gap, of one set's pairwise difference, pooled over pairs).
    ``units_per_set``: units counted per simulated set (``k`` when a gap compares groups of
    separate prompts, 1 otherwise). ``pilot_df``: degrees of freedom the SD was estimated on
    (None when the user gave it)."""

    op: str
    threshold: float
    sd: float
    truth: tuple[float, ...]
    gap: bool = False
    level: float = 0.95
    units_per_set: int = 1
    pilot_df: int | None = None

    @property
    def groups(self) -> int:
        return len(self.truth) if self.gap else 1


def decision_probability(model: GateModel, n: int) -> tuple[float, float]:
    """(P(PASS), P(FAIL)) of the gate with ``n`` sets (or units) under the model."""
    if n < 2:
        return 0.0, 0.0
    if model.sd <= 0:
        return _certain(model)
    if model.gap:
        return _gap_probability(model, n)
    se = model.sd / math.sqrt(n)
    t = _t(model.level, n - 1)
    dist = (model.threshold - model.truth[0]) / se  # > 0: the truth is below the threshold
    if model.op in ("<=", "<"):
        return float(sps.norm.cdf(dist - t)), float(sps.norm.cdf(-dist - t))
    return float(sps.norm.cdf(-dist - t)), float(sps.norm.cdf(dist - t))


def _certain(model: GateModel) -> tuple[float, float]:
    value = (max(model.truth) - min(model.truth)) if model.gap else model.truth[0]
    below = value <= model.threshold
    safe = below if model.op in ("<=", "<") else not below
    return (1.0, 0.0) if safe else (0.0, 1.0)


_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _draws(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed standard-normal group draws and uniforms (common random numbers across ``n``)."""
    if k not in _cache:
        rng = np.random.default_rng(20261207 + k)
        _cache[k] = (rng.standard_normal((_DRAWS, k)), rng.uniform(size=_DRAWS))
    return _cache[k]


def _gap_probability(model: GateModel, n: int) -> tuple[float, float]:
    k = model.groups
    z, u = _draws(k)
    df = n - 1
    # exchangeable groups: Var(m_a - m_b) = sd^2 / n, so each group mean has SD sd / sqrt(2n)
    means = np.asarray(model.truth, float) + z * (model.sd / math.sqrt(2 * n))
    spread = means.max(axis=1) - means.min(axis=1)
    s_hat = model.sd * np.sqrt(sps.chi2.ppf(u, df) / df)
    se = s_hat / math.sqrt(n)
    pairs = k * (k - 1) // 2
    t1 = _t(model.level, df)
    tb = _t(1 - (1 - model.level) / max(1, pairs), df)
    delta = model.threshold
    if model.op in ("<=", "<"):
        return float(np.mean(spread + t1 * se <= delta)), float(np.mean(spread - tb * se > delta))
    return float(np.mean(spread - tb * se >= delta)), float(np.mean(spread + t1 * se < delta))


def units_needed(model: GateModel, power: float = DEFAULT_POWER) -> int | None:
    """Smallest number of units that decides the gate (PASS or FAIL) with probability ``power``;
    None when even ``MAX_UNITS`` would not (the truth sits on the threshold, or nearly)."""
    if not (_finite(model.sd) and model.sd >= 0 and all(_finite(x) for x in model.truth)):
        return None

    def ok(n: int) -> bool:
        return sum(decision_probability(model, n)) >= power

    hi = 2
    while not ok(hi):
        if hi * model.units_per_set >= MAX_UNITS:
            return None
        hi *= 2
    lo = max(2, hi // 2)
    if ok(lo):
        return lo * model.units_per_set
    while hi - lo > 1:  # ok(hi), not ok(lo)
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi * model.units_per_set


def plan_range(model: GateModel, power: float = DEFAULT_POWER, coverage: float = 0.8) -> tuple[int | None, int | None]:
    """Sizes at the two ends of the pilot SD's ``coverage`` chi-square interval (None, None when the
    SD was not estimated)."""
    df = model.pilot_df
    if not df or df < 1 or model.sd <= 0:
        return None, None
    lo_sd = model.sd * math.sqrt(df / sps.chi2.ppf(0.5 + coverage / 2, df))
    hi_sd = model.sd * math.sqrt(df / sps.chi2.ppf(0.5 - coverage / 2, df))
    return units_needed(_with_sd(model, lo_sd), power), units_needed(_with_sd(model, hi_sd), power)


def _with_sd(model: GateModel, sd: float) -> GateModel:
    return replace(model, sd=sd, pilot_df=None)


def shifted(model: GateModel, effect: float) -> GateModel:
    """The model with the truth set by ``--effect``: a gap of ``effect`` between one group and the
    others, or a value ``effect`` on the safe side of the threshold."""
    if model.gap:
        return replace(model, truth=(float(effect),) + (0.0,) * (model.groups - 1))
    safe_below = model.op in ("<=", "<")
    return replace(model, truth=(model.threshold - effect if safe_below else model.threshold + effect,))


# --------------------------------------------------------------------------- from a run's figure


def model_from_figure(gate: dict[str, Any], fig: dict[str, Any], level: float) -> GateModel | None:
    """The model of ``gate`` from a summary figure: its spread and, as the truth, its estimate
    (a gap: the group means its pairwise differences imply). None when the figure has no spread."""
    op, threshold = str(gate["op"]), float(gate["threshold"])
    pairs = [p for p in fig.get("pairs") or [] if _finite(p.get("se")) and isinstance(p.get("n"), int) and p["n"] >= 2]
    if pairs:
        groups = sorted({p["a"] for p in pairs} | {p["b"] for p in pairs})
        if not _finite(threshold):
            return None
        paired = "paired" in str(fig.get("method", "paired"))
        var = sum((p["n"] - 1) * p["se"] ** 2 * p["n"] for p in pairs)
        dof = sum(p["n"] - 1 for p in pairs)
        sd = math.sqrt(var / dof) if dof > 0 else math.nan
        n_sets = max(p["n"] for p in pairs)
        return GateModel(
            op, threshold, sd, group_means(groups, pairs), gap=True, level=level,
            units_per_set=1 if paired else len(groups), pilot_df=(n_sets - 1) * (len(groups) - 1),
        )
    n, lo, hi, est = fig.get("n_clusters"), fig.get("ci_low"), fig.get("ci_high"), fig.get("estimate")
    if not (isinstance(n, int) and n >= 2 and _finite(lo) and _finite(hi) and _finite(est)):
        return None
    sd = (float(hi) - float(lo)) / (2 * _t(level, n - 1)) * math.sqrt(n)
    return GateModel(op, threshold, sd, (float(est),), level=level, pilot_df=n - 1)


def group_means(groups: list[str], pairs: list[dict[str, Any]]) -> tuple[float, ...]:
    """Group means (up to a shift) from pairwise differences d = mean(a) - mean(b): least squares,
    which for a complete set of pairs is each group's average difference to all others."""
    idx = {g: i for i, g in enumerate(groups)}
    k = len(groups)
    rows, rhs = [], []
    for p in pairs:
        row = np.zeros(k)
        row[idx[p["a"]]], row[idx[p["b"]]] = 1.0, -1.0
        rows.append(row)
        rhs.append(float(p["diff"]))
    rows.append(np.ones(k))  # fix the shift: the means sum to 0
    rhs.append(0.0)
    sol, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    return tuple(float(x) for x in sol)


def needed_for_gate(result: dict[str, Any], fig: dict[str, Any], unit: str, figure: str, level: float = 0.95) -> dict[str, Any]:
    """The ``needed`` value of an INCONCLUSIVE gate result: ``more`` units beyond the ``n`` the
    run has, from ``units_needed`` at the run's estimate, spread and CI level."""
    where = figure[figure.index("[") + 1 : -1] if figure.endswith("]") and "[" in figure else ""
    model = model_from_figure(result, fig, level)
    have = result.get("n_clusters")
    if model is None or not isinstance(have, int):
        return {"more": None, "unit": unit, "text": f"more {unit} would narrow the CI (size unknown)"}
    total = units_needed(model)
    more = None if total is None else max(1, total - have)
    out: dict[str, Any] = {"more": more, "total": total, "unit": unit, "power": DEFAULT_POWER, "text": needed_text(more, unit, where)}
    if more is not None and total is not None and model.pilot_df is not None and have < SMALL_PILOT:  # say how unsure it is
        lo, hi = plan_range(model)
        out["range"] = [None if x is None else max(0, x - have) for x in (lo, hi)]
        hi_text = "more than 10,000,000" if hi is None else f"{max(0, hi - have):,}"
        out["text"] += (f"; with only {have} {unit} the spread is unsure: {max(0, (lo or total) - have):,} to "
                        f"{hi_text} more (80% range)")
    return out


def needed_text(more: int | None, unit: str, where: str = "") -> str:
    if more is None:
        return "the estimate sits on (or very near) the threshold: more data is unlikely to decide this"
    scope = f" in {where}" if where else ""
    return f"≈ {more:,} more {unit}{scope} would decide this ({DEFAULT_POWER:.0%} chance at the current estimate)"


# --------------------------------------------------------------------------- before a run


def n_for_equivalence(sd: float, margin: float, n_pairs: int = 1, power: float = 0.8, alpha: float = 0.05) -> int | None:
    """The closed form kept for callers (simulation tests of #25): sets for a gap gate ``gap <= margin``
    to pass an unbiased model, each of ``n_pairs`` pairs (treated as independent) at power
    ``power ** (1 / n_pairs)``: ((z_{1-alpha/2} + z_{(1+p)/2}) · sd / margin)². Conservative next to
    ``units_needed``, which simulates the correlated pairs (what ``lm-audit plan`` prints)."""
    if not (_finite(sd) and _finite(margin)) or margin <= 0:
        return None
    if sd <= 0:
        return 2
    per_pair = power ** (1.0 / max(1, n_pairs))
    za, zb = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf((1 + per_pair) / 2)
    return max(2, math.ceil(((za + zb) * sd / margin) ** 2))


def default_effect(metric: str, scale: str) -> float:
    """How far the true value is assumed to sit on the safe side of a threshold when ``--effect`` is
    not given, in the figure's own scale: 1 point on a percentage (0-100), 0.01 on a rate or share
    (0-1), 0.05 on a score mean or a bias score (e.g. sentiment -1..1). A gap gate assumes a true gap
    of 0 (an unbiased model)."""
    if metric.startswith("gap("):
        return 0.0
    return {"percent": 1.0, "proportion": 0.01}.get(scale, 0.05)


def default_sd(scale: str, threshold: float, sd: float) -> float:
    """The unit SD a plan assumes before a run: a 0/1 outcome's own at the threshold for rates and
    percentages (sqrt(p(1-p)), in points for a percentage), 1 for a -1..1 bias score, ``sd``
    (``--sd``) for score means and gaps."""
    if scale == "proportion":
        p = min(max(threshold, 0.01), 0.99)
        return math.sqrt(p * (1 - p))
    if scale == "percent":
        p = min(max(threshold / 100, 0.01), 0.99)
        return 100 * math.sqrt(p * (1 - p))
    if scale == "bias":  # each item counts about +-1
        return 1.0
    return sd
