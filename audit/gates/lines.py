"""One gate result as text, the same on every surface: ``gate_line`` (the command line, SARIF),
``gate_note`` (beside a gate in the reports and the job summary), ``judged_text`` (JUnit), ``fmt``,
and ``override_mark`` / ``overrides_tally`` (a verdict reviewer overrides changed: the gate lines,
JUnit, SARIF, the job summary and both reports; read from the summary's ``changed_by_overrides``).
"""

from __future__ import annotations

from typing import Any

from audit.gates.evaluate import POINT_ESTIMATE_NOTE, verdict_of


def fmt(v: Any) -> str:
    """A gate's number as printed: 4 significant digits, ``n/a`` for none."""
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def n_text(r: dict[str, Any], unit: str | None = None) -> str:
    n = r.get("n_clusters")
    return f" (n={n}{' ' + unit if unit else ''})" if isinstance(n, int) else ""


def gate_line(r: dict[str, Any]) -> str:
    """One printable line, e.g. ``PASS  toxicity-rtp  expected_max_toxicity <= 0.3: 0.21 [0.18, 0.25]
    (n=40), judged on ci_high = 0.25``; an INCONCLUSIVE line ends with what would decide it."""
    where = r.get("suite") or "-"
    head = f"{r['metric']} {r['op']} {fmt(r['threshold'])}"
    verdict = verdict_of(r)
    if r.get("error"):
        return f"ERROR {where}  {head}: {r['error']}"
    word = f"{verdict:<5}"
    proto = f"  ({r['protocol']})" if r.get("protocol") else ""
    line = (
        f"{word} {where}  {head}: {fmt(r['estimate'])} [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"
        f"{n_text(r)}, {judged_text(r)}"
    )
    if verdict == "INCONCLUSIVE":
        needed = (r.get("needed") or {}).get("text") or "no estimate of the sample that would decide this"
        line += f"; {needed}" + ("" if r.get("passed") else " (counts as failed)")
    for w in r.get("warnings") or []:
        line += f"; warning: {w}"
    return line + proto


def judged_text(r: dict[str, Any]) -> str:
    """``judged on ci_high = 0.25``; a gate on the point estimate says it is not a statistical verdict."""
    note = f" ({POINT_ESTIMATE_NOTE})" if r.get("bound") == "estimate" else ""
    return f"judged on {r.get('bound')} = {fmt(r.get('value'))}{note}"


def gate_note(r: dict[str, Any]) -> str:
    """The note a report prints beside a gate: the error, or the cluster count, what would decide
    an INCONCLUSIVE gate ("what it would take") and any warnings."""
    if r.get("error"):
        return str(r["error"])
    bits = [POINT_ESTIMATE_NOTE] if r.get("bound") == "estimate" else []
    if isinstance(r.get("n_clusters"), int):
        bits.append(f"n={r['n_clusters']}")
    if verdict_of(r) == "INCONCLUSIVE":
        bits.append("what it would take: " + ((r.get("needed") or {}).get("text") or "unknown"))
    bits += [f"warning: {w}" for w in r.get("warnings") or []]
    return "; ".join(bits)


def verdict_before_overrides(r: dict[str, Any]) -> str | None:
    """The verdict a gate had without reviewer overrides when they changed it (the summary's
    ``changed_by_overrides.before``, set by audit/summary/override_effect.py), else None."""
    changed = r.get("changed_by_overrides")
    return str(changed.get("before")) if isinstance(changed, dict) else None


def override_mark(r: dict[str, Any]) -> str:
    """``verdict changed by reviewer overrides (FAIL without them)`` for a gate whose verdict the
    overrides changed, "" for any other gate: the one wording every surface prints."""
    before = verdict_before_overrides(r)
    return "" if before is None else f"verdict changed by reviewer overrides ({before} without them)"


def n_changed_by_overrides(results: list[dict[str, Any]]) -> int:
    """How many of ``results`` carry ``changed_by_overrides`` (a count, nothing recomputed)."""
    return sum(verdict_before_overrides(r) is not None for r in results)


def overrides_tally(results: list[dict[str, Any]]) -> str:
    """``2 verdict(s) changed by reviewer overrides`` for a tally line, "" when none was changed."""
    n = n_changed_by_overrides(results)
    return f"{n} verdict(s) changed by reviewer overrides" if n else ""
