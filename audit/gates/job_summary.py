"""A Markdown job summary of a run's gates for GitHub Actions (``$GITHUB_STEP_SUMMARY``).

``lm-audit gate`` appends it when the environment variable ``GITHUB_STEP_SUMMARY`` names a file
(GitHub sets it in every step; elsewhere nothing is written). It holds the overall verdict, the
model, one table row per gate (verdict, suite, gate, estimate with its CI, the bound judged, and
the note: what would decide an INCONCLUSIVE gate, why a gate is an ERROR, warnings), the tally,
and a line for a damaged run. A verdict reviewer overrides changed (the summary's
``changed_by_overrides``) is marked beside it, and the heading and the tally say how many. Every
text cell is escaped (suite ids and figure names come from user YAML): HTML is shown as text, and
pipes, backticks, brackets and line breaks cannot break the table.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audit.core.errors import UsageError
from audit.gates.evaluate import verdict_of
from audit.gates.lines import fmt, gate_note, override_mark, overrides_tally
from audit.gates.text import overall_verdict
from audit.summary.read import all_gate_results

ENV = "GITHUB_STEP_SUMMARY"
VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE", "ERROR")


def cell(text: Any, limit: int = 300) -> str:
    """Untrusted text for one Markdown table cell: one line, HTML-escaped, Markdown punctuation
    that could end the cell or open a link or code span escaped."""
    s = "" if text is None else str(text)
    if len(s) > limit:
        s = s[:limit] + "…"
    s = html.escape(s, quote=False).replace("\r", " ").replace("\n", " ⏎ ")
    for ch in ("\\", "|", "`", "[", "]", "*", "_"):
        s = s.replace(ch, "\\" + ch)
    return s


def gates_markdown(summary: dict[str, Any]) -> str:
    """The job summary's Markdown (ends with a blank line, so several runs' summaries stack)."""
    results = all_gate_results(summary)
    g = summary.get("gates") or {}
    damaged = summary.get("damaged")
    passed = bool(g.get("passed")) and not damaged
    verdict = "FAIL" if damaged else overall_verdict([verdict_of(r) for r in results])
    model = summary.get("model") or {}
    changed = overrides_tally(results)  # "" when no verdict was changed
    lines = [
        f"### lm-audit gates: {cell(summary.get('run_id'))}: {verdict} (exit {'passed' if passed else 'FAILED'}"
        + (f"; {changed}" if changed else "") + ")",
        "",
        f"Model {cell(model.get('name'))} (fingerprint {cell(model.get('fingerprint'))})"
        + ("; **random weights**: its figures say nothing about a real model" if model.get("random_weights") else ""),
        "",
    ]
    if damaged:
        why = damaged.get("reason") or "unreadable or missing records"
        lines += [f"**Damaged run**: {cell(why)}; a damaged run never passes.", ""]
    if not results:
        return "\n".join([*lines, "No gates defined (suite defaults or `--policy`).", "", ""])
    lines += ["| verdict | suite | gate | estimate [CI] | judged on | note |", "|---|---|---|---|---|---|"]
    for r in results:
        v = verdict_of(r)
        gate = f"{r.get('metric')} {r.get('op')} {fmt(r.get('threshold'))}"
        if r.get("error"):
            figure = judged = "n/a"
        else:
            figure = f"{fmt(r.get('estimate'))} [{fmt(r.get('ci_low'))}, {fmt(r.get('ci_high'))}]"
            judged = f"{r.get('bound')} = {fmt(r.get('value'))}"
        word = (v if v == "PASS" else f"**{v}**") + (f" ({cell(override_mark(r))})" if override_mark(r) else "")
        cells = [word, cell(r.get("suite") or "-"), cell(gate), cell(figure),
                 cell(judged), cell(gate_note(r))]
        lines.append("| " + " | ".join(cells) + " |")
    verdicts = [verdict_of(r) for r in results]
    tally = ", ".join(f"{verdicts.count(v)} {v.lower()}" for v in VERDICTS)
    total = g.get("n_total", len(results))
    oi = g.get("on_inconclusive", "fail")
    lines += [
        "",
        f"{tally} of {total}: {verdict}"
        + (f"; INCONCLUSIVE is not a pass; it {'fails' if oi == 'fail' else 'does not fail'} the exit code "
           f"(on\\_inconclusive: {cell(oi)})" if "INCONCLUSIVE" in verdicts else "")
        + (f"; {changed} (see the run's overrides.jsonl)" if changed else "") + ".",
        "",
        "",
    ]
    return "\n".join(lines)


def append_job_summary(summary: dict[str, Any], env: Mapping[str, str] | None = None) -> Path | None:
    """Append ``gates_markdown`` to the file ``$GITHUB_STEP_SUMMARY`` names (None when unset); a
    one-line ``UsageError`` when that file cannot be written."""
    target = (os.environ if env is None else env).get(ENV)
    if not target:
        return None
    path = Path(target)
    try:
        with path.open("a", encoding="utf-8", errors="replace") as fh:
            fh.write(gates_markdown(summary))
    except OSError as exc:
        raise UsageError(f"{ENV}: cannot append the job summary to {path}: {exc.strerror or exc}") from None
    return path
