"""Small formatting helpers shared by the markdown and HTML renderers."""

from __future__ import annotations

import html
from typing import Any


def num(v: Any, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v:  # NaN
            return "n/a"
        if abs(v) >= 1000 or (v != 0 and abs(v) < 0.001):
            return f"{v:.2e}"
        return f"{v:.{digits}f}"
    return str(v)


def ci(d: dict[str, Any] | None) -> str:
    """``0.123 [0.100, 0.150]``"""
    if not d:
        return "n/a"
    return f"{num(d.get('estimate'))} [{num(d.get('ci_low'))}, {num(d.get('ci_high'))}]"


def level_text(level: Any) -> str:
    """A CI level as printed everywhere: ``95%``, ``98.75%`` after ``--until-decided`` (never rounded
    down to ``98%``); ``95%`` when the level is unknown."""
    ok = isinstance(level, int | float) and not isinstance(level, bool) and 0 < level < 1
    return f"{100 * (level if ok else 0.95):.4g}%"


def summary_level(summary: dict[str, Any] | None) -> float:
    """The CI level a summary's figures were computed at (``stats.ci_level``; 0.95 when absent)."""
    stats = (summary or {}).get("stats")
    lvl = stats.get("ci_level") if isinstance(stats, dict) else None
    return float(lvl) if isinstance(lvl, int | float) and not isinstance(lvl, bool) and 0 < lvl < 1 else 0.95


def methods_used(summary: dict[str, Any]) -> list[str]:
    """The interval methods a summary's figures name, short ("Wilson", "cluster t", "paired
    permutation"), most used first: what a report says instead of a blanket "bootstrap"."""
    counts: dict[str, int] = {}

    def walk(o: Any) -> None:
        if isinstance(o, dict):
            m = o.get("method")
            if isinstance(m, str) and m and ":" not in m:
                short = m.split(" (")[0].split(";")[0].strip()
                counts[short] = counts.get(short, 0) + 1
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(summary.get("suites") or {})
    return sorted(counts, key=lambda k: (-counts[k], k))


def gate_tally(summary: dict[str, Any], results: list[dict[str, Any]]) -> tuple[str, str]:
    """(the run's verdict over its gates, ``2 pass, 0 fail, 4 inconclusive, 0 error of 6`` plus what
    INCONCLUSIVE means for the exit code): never a "passed" total that counts an INCONCLUSIVE gate."""
    from audit.gates.evaluate import verdict_of
    from audit.gates.text import overall_verdict

    verdicts = [verdict_of(r) for r in results]
    text = ", ".join(f"{verdicts.count(v)} {v.lower()}" for v in ("PASS", "FAIL", "INCONCLUSIVE", "ERROR"))
    text += f" of {len(verdicts)}"
    if "INCONCLUSIVE" in verdicts:
        oi = (summary.get("gates") or {}).get("on_inconclusive", "fail")
        text += f"; INCONCLUSIVE is not a pass (for the exit code: on_inconclusive: {oi})"
    return overall_verdict(verdicts), text


def pval(v: Any) -> str:
    if v is None:
        return "n/a"
    return "<0.0001" if v < 1e-4 else f"{v:.4f}"


def esc(text: Any) -> str:
    """HTML-escape anything (model text is untrusted)."""
    return html.escape("" if text is None else str(text), quote=True)


def md_cell(text: Any, limit: int = 300) -> str:
    """Untrusted text for a markdown table cell: HTML-escaped, one line, pipes and backticks escaped."""
    s = "" if text is None else str(text)
    if len(s) > limit:
        s = s[:limit] + "…"
    s = html.escape(s, quote=False).replace("\r", " ").replace("\n", " ⏎ ")
    return s.replace("|", "\\|").replace("`", "\\`").replace("[", "\\[").replace("]", "\\]")


def md_code(text: Any, limit: int = 300) -> str:
    """Untrusted text as a markdown code span: shown literally, so no HTML entities and no
    backslash escapes inside (they would be displayed); one line; pipes escaped for tables (GFM
    removes that escape); a fence longer than any backtick run in the text."""
    s = "" if text is None else str(text)
    if len(s) > limit:
        s = s[:limit] + "…"
    s = s.replace("\r", " ").replace("\n", " ⏎ ").replace("|", "\\|")
    run = longest = 0
    for ch in s:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def mean_of_shown(cells: list[dict[str, Any]]) -> float | None:
    """The unweighted mean of the estimates drawn in a chart (its dashed line)."""
    raw = [c.get("estimate") for c in cells if isinstance(c, dict)]
    vals = [float(v) for v in raw if isinstance(v, int | float) and v == v]
    return sum(vals) / len(vals) if vals else None


def direction_word(higher_is: str | None, ideal: float | None = None) -> str:
    if ideal is not None and higher_is == "neutral":
        return f"closest to {num(ideal, 0)}"
    return {"better": "higher", "worse": "lower"}.get(higher_is or "", "-")


def verdict_of_gate(r: dict[str, Any]) -> str:
    from audit.gates.evaluate import (
        verdict_of,  # PASS / FAIL / INCONCLUSIVE / ERROR (old summaries: from passed)
    )

    return verdict_of(r)
