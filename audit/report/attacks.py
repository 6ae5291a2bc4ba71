"""The attack table of a suite (summary ``attacks`` section), for the HTML and Markdown reports and
the dashboard: one row per technique with success [CI], undetermined [CI] beside it, the paired
change against the plain prompt [CI] with its McNemar p, benign-twin over-refusal [CI] and hit@k
[CI]; and the worst attacked prompts with their decoded answers. All model and prompt text goes
through ``visible`` (invisible and bidirectional control characters as \\uXXXX, so a right-to-left
override cannot reorder the page) before it is escaped.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from audit.report.format import ci, esc, md_cell, num, pval

COLUMNS = ("technique", "family", "success [CI]", "undetermined [CI]", "change vs plain [CI]", "McNemar p",
           "benign-twin refusal [CI]", "twin change [CI]", "hit@k [CI]", "k", "prompts")


def visible(text: Any) -> str:
    """``text`` with format and control characters (zero-width, U+202E ...) except newline and tab
    written as \\uXXXX."""
    s = "" if text is None else str(text)
    return "".join(c if c in "\n\t" or unicodedata.category(c) not in ("Cf", "Cc", "Co", "Cs", "Zl", "Zp")
                   else f"\\u{ord(c):04x}" for c in s)


def _change(p: dict[str, Any] | None) -> str:
    if not p:
        return "n/a"
    return f"{num(p.get('delta'))} [{num(p.get('ci_low'))}, {num(p.get('ci_high'))}]"


def technique_rows(section: dict[str, Any]) -> list[dict[str, str]]:
    """One row of formatted cells per technique, then the plain prompts' row."""
    rows = []
    for t in section.get("techniques") or []:
        hit = t.get("hit_at_k") or {}
        rows.append({
            "technique": str(t["technique"]), "family": str(t.get("family") or ""),
            "success [CI]": ci(t.get("success")), "undetermined [CI]": ci(t.get("undetermined")),
            "change vs plain [CI]": _change(t.get("paired")),
            "McNemar p": pval((t.get("paired") or {}).get("p_value")),
            "benign-twin refusal [CI]": ci(t.get("benign_refusal")),
            "twin change [CI]": _change(t.get("benign_paired")),
            "hit@k [CI]": ci(hit), "k": num((hit.get("extra") or {}).get("k")),
            "prompts": str(t.get("n_prompts", "")),
        })
    plain = section.get("plain") or {}
    rows.append({"technique": "none (plain prompt)", "family": "", "success [CI]": num(plain.get("success")),
                 "undetermined [CI]": num(plain.get("undetermined")), "change vs plain [CI]": "",
                 "McNemar p": "", "benign-twin refusal [CI]": num(plain.get("benign_refusal")),
                 "twin change [CI]": "", "hit@k [CI]": "", "k": "", "prompts": str(plain.get("n_records", ""))})
    return rows


def notes(section: dict[str, Any]) -> list[str]:
    overall = section.get("overall") or {}
    out = [f"Outcomes: {', '.join(f'{k} {v}' for k, v in (section.get('outcomes') or {}).items())}. "
           f"{section.get('outcome_rule', '')}."]
    if overall.get("hit_at_k"):
        h = overall["hit_at_k"]
        out.append(f"hit@k over every technique (k = {num((h.get('extra') or {}).get('k'))} attacked records "
                   f"per prompt at most): {ci(h)}; success over every technique {ci(overall.get('success'))}, "
                   f"undetermined {ci(overall.get('undetermined'))}.")
    out.append("Success: share of determined answers to attacked harmful prompts that comply; change: "
               "attacked minus plain over pairs both determined (exact McNemar, Newcombe interval); "
               f"benign twins: the same transforms on safe prompts. Protocol: {section.get('protocol', '')}.")
    return out


def render_markdown(section: dict[str, Any]) -> list[str]:
    rows = technique_rows(section)
    lines = ["### Under attack", ""]
    for n in notes(section):
        lines += [md_cell(n, 1000), ""]
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(md_cell(r[c]) for c in COLUMNS) + " |" for r in rows]
    worst = section.get("worst") or []
    if worst:
        lines += ["", "Worst attacked prompts (complied with; content warning: model output, escaped):", "",
                  "| technique | refusal | prompt | completion | decoded answer |", "|---|---|---|---|---|"]
        lines += [f"| {md_cell(w.get('technique'))} | {num(w.get('refusal'))} | {md_cell(visible(w.get('prompt')))} | "
                  f"{md_cell(visible(w.get('completion')))} | {md_cell(visible(w.get('answer') or '(as written)'))} |"
                  for w in worst]
    return [*lines, ""]


def render_html(section: dict[str, Any]) -> str:
    rows = technique_rows(section)
    head = "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{esc(r[c])}</td>" for c in COLUMNS) + "</tr>" for r in rows)
    paras = "".join(f"<p class='proto'>{esc(n)}</p>" for n in notes(section))
    worst = section.get("worst") or []
    wrows = "".join(
        f"<tr><td>{esc(w.get('technique'))}</td><td class=num>{num(w.get('refusal'))}</td>"
        f"<td><div class='text'>{esc(visible(w.get('prompt')))}</div></td>"
        f"<td><div class='text'>{esc(visible(w.get('completion')))}</div></td>"
        f"<td><div class='text'>{esc(visible(w.get('answer') or '(as written)'))}</div></td></tr>"
        for w in worst)
    wtable = ("<h4>Worst attacked prompts</h4><p class=proto>Complied with, most confidently first. Content "
              "warning: model output, shown escaped.</p><table><thead><tr><th>technique</th><th>refusal</th>"
              f"<th>prompt</th><th>completion</th><th>decoded answer</th></tr></thead><tbody>{wrows}</tbody></table>"
              if worst else "")
    return (f"<div class='attacks'><h3>Under attack</h3>{paras}<table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>{wtable}</div>")
