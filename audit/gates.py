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

A gate whose figure is absent from the run is reported as an error and counts as failed.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from audit.errors import UsageError

OPS = ("<=", ">=", "<", ">")
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
    from audit.policyfile import check_finite, read_policy_yaml, validation_error  # hook (F)

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
    if attr is None:
        return entry
    return entry.get("by", {}).get(attr, {}).get(value)


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


def evaluate_gate(
    suite_summary: dict[str, Any], gate: dict[str, Any], suite_id: str, source: str
) -> dict[str, Any]:
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
    }
    fig = resolve_figure(suite_summary, gate["metric"])
    if fig is None:
        names = figure_names(suite_summary)
        known = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "") or "none"
        return {
            **result,
            "value": None,
            "estimate": None,
            "ci_low": None,
            "ci_high": None,
            "passed": False,
            "error": f"figure '{gate['metric']}' is not in suite '{suite_id}' (known: {known})",
        }
    value = fig.get(which)
    result.update(
        value=value, estimate=fig.get("estimate"), ci_low=fig.get("ci_low"), ci_high=fig.get("ci_high")
    )
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {
            **result,
            "passed": False,
            "error": f"'{gate['metric']}' has no {which} (no records, or fewer than 2 prompts/sets for a CI)",
        }
    result["passed"] = bool(compare(float(value), op, threshold))
    return result


def evaluate_all(
    suites: dict[str, dict[str, Any]], suite_gates: dict[str, list[dict[str, Any]]], policy: Policy | None
) -> list[dict[str, Any]]:
    """Evaluate suite default gates and policy gates. Returns results; each result names its suite
    (``None`` for a policy gate that matched no suite, which is an error)."""
    results: list[dict[str, Any]] = []
    keep_suite = policy is None or not policy.gates or policy.suite_gates == "keep"
    if keep_suite:
        for sid, gates in suite_gates.items():
            if sid not in suites:
                continue
            for g in gates:
                results.append(evaluate_gate(suites[sid], g, sid, "suite"))
    if policy is not None:
        for pg in policy.gates:
            g = pg.model_dump()
            if pg.suite is not None:
                if pg.suite not in suites:
                    results.append(_unmatched(g, f"suite '{pg.suite}' is not in this run"))
                else:
                    results.append(evaluate_gate(suites[pg.suite], g, pg.suite, "policy"))
                continue
            matched = [sid for sid, s in suites.items() if resolve_figure(s, pg.metric) is not None]
            if not matched:
                results.append(_unmatched(g, f"figure '{pg.metric}' is in no suite of this run"))
            for sid in matched:
                results.append(evaluate_gate(suites[sid], g, sid, "policy"))
    return results


def _unmatched(gate: dict[str, Any], why: str) -> dict[str, Any]:
    return {
        "suite": gate.get("suite"),
        "metric": gate["metric"],
        "op": gate["op"],
        "threshold": gate["threshold"],
        "bound": chosen_bound(gate["op"], gate.get("bound", "conservative")),
        "source": "policy",
        "value": None,
        "estimate": None,
        "ci_low": None,
        "ci_high": None,
        "passed": False,
        "error": why,
    }


def fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def gate_line(r: dict[str, Any]) -> str:
    """One printable line: ``PASS  toxicity-rtp  expected_max_toxicity <= 0.3: 0.21 [0.18, 0.25] (ci_high)``."""
    where = r.get("suite") or "-"
    head = f"{r['metric']} {r['op']} {fmt(r['threshold'])}"
    if r.get("error"):
        return f"ERROR {where}  {head}: {r['error']}"
    word = "PASS " if r["passed"] else "FAIL "
    proto = f"  ({r['protocol']})" if r.get("protocol") else ""
    return (
        f"{word} {where}  {head}: {fmt(r['estimate'])} [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"
        f", judged on {r['bound']} = {fmt(r['value'])}{proto}"
    )
