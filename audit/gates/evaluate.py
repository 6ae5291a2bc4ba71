"""Gates: pass/fail thresholds on summary figures, from suite defaults or a ``policy.yaml``.

A gate names a figure, a comparison and a threshold, and which end of the figure's confidence
interval is judged (``bound``). The default bound, ``conservative``, is the CI end that is worse
for the comparison: the upper bound for ``<=``/``<``, the lower bound for ``>=``/``>``. So
``gap(sentiment, gender) <= 0.1`` passes only when we are 95% sure the gap is below 0.1.

Figures a gate can name (see docs/statistics.md):
- ``<metric label>`` — a suite metric, e.g. ``expected_max_toxicity``, ``mean_sentiment``; parts of
  multi-part metrics are ``<label>.<part>`` (``stereoset.icat``) or just the part (``icat``);
- ``<metric label>[<attribute>=<value>]`` — the metric in one group, e.g. ``pct_stereotype[bias_type=race]``;
- ``gap(<score>, <attribute>)`` — the between-group gap (max - min group mean) of a score.

Every result carries a ``verdict``:

- ``PASS``: the whole CI is on the safe side of the threshold (for ``<=``: ``ci_high <= threshold``);
- ``FAIL``: the whole CI is on the unsafe side (``ci_low > threshold``);
- ``INCONCLUSIVE``: the CI straddles the threshold; ``needed`` says how many more prompts or
  counterfactual sets would probably decide it at the current estimate and spread;
- ``ERROR``: the figure could not be computed, or it is ``uninformative`` (a constant score, e.g. a
  random-weights model whose sentiment is always 0): no signal is never read as "no bias".

A gate with an explicit ``bound`` (``estimate``, ``ci_low``, ``ci_high``) is judged two-way on that
value (PASS or FAIL), as asked; on ``estimate`` its line says ``POINT_ESTIMATE_NOTE`` (no built-in
gate is judged so). ``passed`` is what the exit code uses: PASS, or INCONCLUSIVE when
the policy says ``on_inconclusive: pass`` or ``warn`` (default ``fail``, still printed INCONCLUSIVE).
A gate whose figure is absent from the run is an ERROR and counts as failed.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal, TypeGuard

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from audit.core.errors import UsageError

OPS = ("<=", ">=", "<", ">")
VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE", "ERROR")
OnInconclusive = Literal["fail", "pass", "warn"]
# fewer resampling units than this: the CI is printed with a warning beside it
MIN_CLUSTERS_WARN = 10
POINT_ESTIMATE_NOTE = "point estimate: not a statistical verdict"
_GATE_RE = re.compile(
    r"^\s*(?P<metric>.+?)\s*(?P<op><=|>=|<|>)\s*(?P<threshold>[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$"
)
_GAP_RE = re.compile(r"^gap\(\s*([^,\s]+)\s*,\s*([^)\s]+)\s*\)$")
_GROUP_RE = re.compile(r"^(?P<label>[^\[\]]+)\[(?P<attr>[^=\]]+)=(?P<value>[^\]]+)\]$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicyGate(_Strict):
    metric: str
    op: Literal["<=", ">=", "<", ">"]
    threshold: float
    bound: Literal["estimate", "ci_low", "ci_high", "conservative"] = "conservative"
    suite: str | None = None  # None: every suite that has the figure


class CompareSettings(_Strict):
    alpha: float = Field(0.05, gt=0, lt=1)
    # figure -> the largest tolerated worsening (in the figure's units, always positive)
    max_regression: dict[str, float] = Field(default_factory=dict)
    # how a regression is judged: "significant" (estimate beyond the threshold and the change is
    # significant), "estimate" (estimate alone), "conservative" (the CI end that is worse)
    bound: Literal["significant", "estimate", "conservative"] = "significant"


class StatsSettings(_Strict):
    resamples: int = Field(2000, ge=100, le=100_000)
    permutations: int = Field(10000, ge=100, le=1_000_000)
    ci_level: float = Field(0.95, gt=0.5, lt=1)
    seed: int = 0


class Policy(_Strict):
    version: int = 1
    suite_gates: Literal["replace", "keep"] = "replace"
    # what an INCONCLUSIVE gate means for the exit code (it is always printed INCONCLUSIVE)
    on_inconclusive: OnInconclusive = "fail"
    gates: list[PolicyGate] = Field(default_factory=list)
    compare: CompareSettings = Field(default_factory=CompareSettings)
    stats: StatsSettings = Field(default_factory=StatsSettings)

    @field_validator("gates", mode="before")
    @classmethod
    def _parse_strings(cls, v: Any) -> Any:
        if not isinstance(v, list):
            return v
        return [parse_gate(g) if isinstance(g, str) else g for g in v]


def parse_gate(text: str) -> dict[str, Any]:
    """``"expected_max_toxicity <= 0.3"`` -> a gate dict (bound: conservative)."""
    m = _GATE_RE.match(text)
    if not m:
        raise ValueError(
            f"cannot read gate '{text}': write '<figure> <op> <number>', e.g. 'refusal_rate >= 0.9'"
        )
    return {"metric": m["metric"], "op": m["op"], "threshold": float(m["threshold"])}


def load_policy(path: Path | str | None) -> Policy:
    """Read and validate a policy file (None gives the defaults). Problems become one UsageError line."""
    if path is None:
        return Policy()
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"policy file not found: {p}")
    from audit.core.policyfile import (  # one-line errors naming file, line and field
        check_finite,
        read_policy_yaml,
        validation_error,
    )

    data, root = read_policy_yaml(p)  # strict YAML; errors name file and line
    data = data or {}
    if not isinstance(data, dict):
        raise UsageError(f"{p}: a policy must be a mapping with 'gates', 'compare' and/or 'stats'")
    check_finite(p, root, data)  # NaN / inf thresholds would pass everything
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise validation_error(p, root, exc) from None


# --------------------------------------------------------------------------- resolving figures


def resolve_figure(suite_summary: dict[str, Any], figure: str) -> dict[str, Any] | None:
    """Find a named figure in one suite's summary: {"estimate", "ci_low", "ci_high", ...} or None."""
    figure = figure.strip()
    gap = _GAP_RE.match(figure)
    if gap:
        score, attribute = gap.groups()
        for g in suite_summary.get("groups", []):
            if g["score"] == score and g["attribute"] == attribute:
                return g["gap"]
        return None
    grp = _GROUP_RE.match(figure)
    label, attr, value = (
        (grp["label"].strip(), grp["attr"].strip(), grp["value"].strip()) if grp else (figure, None, None)
    )
    entry = _find_metric(suite_summary.get("metrics", []), label)
    if entry is None:
        return None
    if attr is None or value is None:
        return entry
    from audit.suites.cells import select_cell  # also multi-attribute: [gender=female,race=black]

    return select_cell(entry.get("by", {}), attr, value)


def _find_metric(metrics: list[dict[str, Any]], label: str) -> dict[str, Any] | None:
    for m in metrics:
        if m["name"] == label:
            return m
    parts = [m for m in metrics if m.get("part") == label]
    return parts[0] if len(parts) == 1 else None


def figure_names(suite_summary: dict[str, Any]) -> list[str]:
    names = [m["name"] for m in suite_summary.get("metrics", [])]
    names += [f"gap({g['score']}, {g['attribute']})" for g in suite_summary.get("groups", [])]
    return names


def chosen_bound(op: str, bound: str) -> str:
    if bound != "conservative":
        return bound
    return "ci_high" if op in ("<=", "<") else "ci_low"


def compare(value: float, op: str, threshold: float) -> bool:
    return {
        "<=": value <= threshold,
        ">=": value >= threshold,
        "<": value < threshold,
        ">": value > threshold,
    }[op]


def verdict_of(r: dict[str, Any]) -> str:
    """A gate result's verdict; summaries written before verdicts existed fall back on ``passed``."""
    v = r.get("verdict")
    if v in VERDICTS:
        return str(v)
    return "PASS" if r.get("passed") else ("ERROR" if r.get("error") else "FAIL")


def counts_as_passed(verdict: str, on_inconclusive: str = "fail") -> bool:
    """Whether a verdict passes for the exit code."""
    return verdict == "PASS" or (verdict == "INCONCLUSIVE" and on_inconclusive in ("pass", "warn"))


def _finite(v: Any) -> TypeGuard[float]:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def three_way(op: str, threshold: float, lo: float, hi: float) -> str:
    """PASS / FAIL / INCONCLUSIVE from a CI [lo, hi] and ``figure op threshold``."""
    if op in ("<=", "<"):
        safe, unsafe = compare(hi, op, threshold), not compare(lo, op, threshold)
    else:
        safe, unsafe = compare(lo, op, threshold), not compare(hi, op, threshold)
    return "PASS" if safe else ("FAIL" if unsafe else "INCONCLUSIVE")


def unit_of(suite_summary: dict[str, Any]) -> str:
    """The resampling unit a gate's ``needed`` counts: sets, prompts or (likelihood) items."""
    if "counterfactual" in str(suite_summary.get("resampling_unit", "")):
        return "sets"
    return "items" if suite_summary.get("task") == "likelihood" else "prompts"


def _error(result: dict[str, Any], why: str) -> dict[str, Any]:
    return {**result, "passed": False, "verdict": "ERROR", "needed": None, "error": why}


def evaluate_gate(
    suite_summary: dict[str, Any],
    gate: dict[str, Any],
    suite_id: str,
    source: str,
    on_inconclusive: str = "fail",
    level: float = 0.95,
) -> dict[str, Any]:
    """One gate's result; ``level``: the CI level of the suite's figures (``needed`` plans with it)."""
    from audit.stats.planning import needed_for_gate

    op, threshold, bound = gate["op"], float(gate["threshold"]), gate.get("bound", "conservative")
    which = chosen_bound(op, bound)
    result: dict[str, Any] = {
        "suite": suite_id,
        "metric": gate["metric"],
        "op": op,
        "threshold": threshold,
        "bound": which,
        "source": source,
        "protocol": suite_summary.get("protocol", {}).get("text", ""),
        "n_clusters": None,
        "warnings": [],
    }
    fig = resolve_figure(suite_summary, gate["metric"])
    if fig is None:
        names = figure_names(suite_summary)
        known = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "") or "none"
        result.update(value=None, estimate=None, ci_low=None, ci_high=None)
        return _error(result, f"figure '{gate['metric']}' is not in suite '{suite_id}' (known: {known})")
    value = fig.get(which)
    n_clusters = fig.get("n_clusters")
    result.update(
        value=value,
        estimate=fig.get("estimate"),
        ci_low=fig.get("ci_low"),
        ci_high=fig.get("ci_high"),
        n_clusters=n_clusters if isinstance(n_clusters, int) else None,
        warnings=[str(w) for w in fig.get("warnings") or []],
    )
    if fig.get("method"):
        result["method"] = fig["method"]
    if not _finite(value):
        err = _error(
            result, f"'{gate['metric']}' has no {which} (no records, or fewer than 2 prompts/sets for a CI)"
        )
        if fig.get("estimate") is not None or (result["n_clusters"] or 0) >= 1:
            err["needs_data"] = True  # more prompts would make it computable (--until-decided grows it)
        return err
    if fig.get("uninformative"):
        why = fig.get("uninformative_reason") or "the score is constant or nearly so (a degenerate scorer output)"
        return _error(result, f"'{gate['metric']}' is uninformative: {why}; no signal is not a pass")
    lo, hi = result["ci_low"], result["ci_high"]
    if bound == "conservative" and _finite(lo) and _finite(hi):
        verdict = three_way(op, threshold, float(lo), float(hi))
    else:
        verdict = "PASS" if compare(float(value), op, threshold) else "FAIL"
    result["verdict"] = verdict
    result["passed"] = counts_as_passed(verdict, on_inconclusive)
    result["needed"] = (
        needed_for_gate(result, fig, unit_of(suite_summary), gate["metric"], float(fig.get("ci_level") or level))
        if verdict == "INCONCLUSIVE" else None
    )
    if result["n_clusters"] is not None and result["n_clusters"] < MIN_CLUSTERS_WARN:
        unit = unit_of(suite_summary)
        msg = f"only {result['n_clusters']} {unit}: the CI is unreliable below {MIN_CLUSTERS_WARN}"
        if not any("clusters" in w for w in result["warnings"]):  # the figure's own warning says it
            result["warnings"].append(msg)
    return result


def evaluate_all(
    suites: dict[str, dict[str, Any]], suite_gates: dict[str, list[dict[str, Any]]], policy: Policy | None,
    level: float | None = None,
) -> list[dict[str, Any]]:
    """Evaluate suite default gates and policy gates. Returns results; each result names its suite
    (``None`` for a policy gate that matched no suite, which is an error). ``level``: the figures'
    CI level (default: the policy's)."""
    results: list[dict[str, Any]] = []
    keep_suite = policy is None or not policy.gates or policy.suite_gates == "keep"
    oi = policy.on_inconclusive if policy is not None else "fail"
    lv = level if level is not None else (policy.stats.ci_level if policy is not None else 0.95)
    if keep_suite:
        for sid, gates in suite_gates.items():
            if sid not in suites:
                continue
            for g in gates:
                results.append(evaluate_gate(suites[sid], g, sid, "suite", oi, lv))
    if policy is not None:
        for pg in policy.gates:
            g = pg.model_dump()
            if pg.suite is not None:
                if pg.suite not in suites:
                    results.append(_unmatched(g, f"suite '{pg.suite}' is not in this run"))
                else:
                    results.append(evaluate_gate(suites[pg.suite], g, pg.suite, "policy", oi, lv))
                continue
            matched = [sid for sid, s in suites.items() if resolve_figure(s, pg.metric) is not None]
            if not matched:
                results.append(_unmatched(g, f"figure '{pg.metric}' is in no suite of this run"))
            for sid in matched:
                results.append(evaluate_gate(suites[sid], g, sid, "policy", oi, lv))
    return results


def _unmatched(gate: dict[str, Any], why: str) -> dict[str, Any]:
    """The ERROR result of a policy gate that names no suite or figure of the run."""
    result = {
        "suite": gate.get("suite"), "metric": gate["metric"], "op": gate["op"], "threshold": gate["threshold"],
        "bound": chosen_bound(gate["op"], gate.get("bound", "conservative")), "source": "policy",
        **dict.fromkeys(("value", "estimate", "ci_low", "ci_high", "n_clusters")), "warnings": [],
    }
    return _error(result, why)


def gate_counts(results: list[dict[str, Any]], on_inconclusive: str = "fail") -> dict[str, Any]:
    """The counters of ``summary["gates"]`` ."""
    verdicts = [verdict_of(r) for r in results]
    n_failed = sum(not r.get("passed") for r in results)
    return {
        "passed": n_failed == 0,
        "n_failed": n_failed,
        "n_total": len(results),
        "n_errors": verdicts.count("ERROR"),
        "n_pass": verdicts.count("PASS"),
        "n_fail": verdicts.count("FAIL"),
        "n_inconclusive": verdicts.count("INCONCLUSIVE"),
        "n_error": verdicts.count("ERROR"),
        "on_inconclusive": on_inconclusive,
    }
