"""What the Markdown and the HTML report both show, read once from a summary; each renderer only
formats it (escaping is the renderer's: every value here is still raw, untrusted text).

- ``override_lines``: each reviewer override with its change and the scores it replaced, and the
  figures before and after, once per suite;
- ``self_audits``: the scorer self-audit, one entry per audited scorer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audit.report.format import num


@dataclass
class OverrideLine:
    """One line of overrides.jsonl as the reports show it."""

    entry: dict[str, Any]
    change: str  # "label refusal", "toxicity = 0.100", "label x (withdrawn)"
    was: str  # the replaced scores: "toxicity=0.900"


def override_lines(summary: dict[str, Any]) -> list[OverrideLine]:
    out = []
    for e in summary.get("overrides") or []:
        if not isinstance(e, dict):
            continue
        change = f"label {e['label']}" if e.get("label") else f"{e.get('score')} = {num(e.get('value'))}"
        if e.get("label") and e.get("value") is False:
            change += " (withdrawn)"
        was = ", ".join(f"{k}={num(v)}" for k, v in (e.get("original") or {}).items())
        out.append(OverrideLine(e, change, was))
    return out


def override_figures(lines: list[OverrideLine]) -> list[tuple[Any, list[dict[str, Any]]]]:
    """(suite, its figures before and after its overrides), each suite once, in override order."""
    out: list[tuple[Any, list[dict[str, Any]]]] = []
    shown: set[str] = set()
    for line in lines:
        suite = line.entry.get("suite")
        if not suite or suite in shown or not line.entry.get("figures"):
            continue
        shown.add(suite)
        out.append((suite, line.entry["figures"]))
    return out


@dataclass
class SelfAudit:
    """One scorer's self-audit: how it scores identity terms in benign sentences."""

    name: Any
    scorer: Any
    version: Any
    threshold: Any
    note: Any
    gaps: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # ("raw" | "neutralized", gap)
    rows: list[tuple[Any, dict[str, Any], dict[str, Any]]] = field(default_factory=list)  # (term, cell, neutralized)
    axes: dict[str, Any] = field(default_factory=dict)  # term -> its axis
    controls: dict[str, Any] = field(default_factory=dict)


def self_audits(summary: dict[str, Any]) -> list[SelfAudit]:
    out = []
    for name, a in (summary.get("scorer_audit") or {}).items():
        gap = a.get("fpr_gap") or {}
        neu = a.get("neutralized") or {}
        out.append(
            SelfAudit(
                name=name,
                scorer=a.get("scorer"),
                version=a.get("version") or "",
                threshold=a.get("threshold"),
                note=a.get("note"),
                gaps=[(kind, gap[kind]) for kind in ("raw", "neutralized") if gap.get(kind)],
                rows=[(g, c, neu.get(g) or {}) for g, c in (a.get("groups") or {}).items()],
                axes=a.get("axes") or {},
                controls=a.get("controls") or {},
            )
        )
    return out
