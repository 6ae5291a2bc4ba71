"""One gate result as text, the same on every surface: ``gate_line`` (the command line, SARIF),
``gate_note`` (beside a gate in the reports and the job summary), ``judged_text`` (JUnit), ``fmt``.
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
