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
    vals = [c.get("estimate") for c in cells if isinstance(c, dict)]
    vals = [float(v) for v in vals if isinstance(v, int | float) and v == v]
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
