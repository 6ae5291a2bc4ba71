"""``report.md``: the run summary as GitHub-flavoured markdown (model text escaped)."""

from __future__ import annotations

import json
from typing import Any

from audit.report.attacks import render_markdown as attacks_markdown
from audit.report.format import (
    ci,
    direction_word,
    gate_tally,
    level_text,
    md_cell,
    md_code,
    methods_used,
    num,
    pval,
    summary_level,
    verdict_of_gate,
)
from audit.report.walk import override_figures, override_lines, self_audits


def _gates(summary: dict[str, Any]) -> list[str]:
    from audit.summary.read import all_gate_results

    results = all_gate_results(summary)
    if not results:
        return ["No gates defined (suite defaults or `--policy`).", ""]
    word, tally = gate_tally(summary, results)
    lines = [
        f"**Gates: {word}** ({tally}). Each gate is judged on the named CI bound.",
        "",
        f"| result | suite | gate | estimate [{level_text(summary_level(summary))} CI] | judged on | note |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        gate = md_code(f"{r['metric']} {r['op']} {num(r['threshold'])}")
        lines.append(
            f"| **{verdict_of_gate(r)}**{_override_mark(r)} | {md_cell(r.get('suite') or '-')} | {gate} | {ci(r)} | "
            f"{r['bound']} = {num(r.get('value'))} | {md_cell(_gate_note(r) or r.get('protocol') or '')} |"
        )
    return [*lines, ""]


def _override_mark(r: dict[str, Any]) -> str:
    """Beside a verdict reviewer overrides changed: the shared wording (audit/gates/lines.py),
    escaped, pointing to the "Reviewer overrides" section; "" for any other gate."""
    from audit.gates.lines import override_mark

    mark = override_mark(r)
    return f" ({md_cell(mark)}: see [Reviewer overrides](#reviewer-overrides))" if mark else ""


def _gate_note(r: dict[str, Any]) -> str:
    from audit.gates.lines import gate_note  # n clusters, what would decide an INCONCLUSIVE gate, warnings

    return gate_note(r)


def _fig(d: dict[str, Any] | None) -> str:
    if not d:
        return "n/a"
    return ci(d) + (f" {d['verdict']}" if d.get("verdict") else "")


def _overrides(summary: dict[str, Any]) -> list[str]:
    """Reviewer overrides (overrides.jsonl): who, why, when, what changed, figures before/after."""
    overrides = override_lines(summary)
    if not overrides:
        return []
    lines = [
        "## Reviewer overrides",
        "",
        f"{len(overrides)} override line(s) in overrides.jsonl; every figure and gate above is computed with the "
        "applied ones. records.jsonl is unchanged.",
        "",
        "| line | record | change | was | who | why | when | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in overrides:
        e = o.entry
        lines.append(
            f"| {e.get('line', '')} | {md_code(e.get('key'))} | {md_cell(o.change)} | {md_cell(o.was)} | "
            f"{md_cell(e.get('who'))} | {md_cell(e.get('why'))} | {md_cell(e.get('when'))} | {md_cell(e.get('status'))} |"
        )
    lines.append("")
    for suite, figures in override_figures(overrides):
        lines += [f"Figures of {md_code(suite)} before and after its overrides:", "",
                  "| figure | before | after |", "|---|---|---|"]
        for f in figures:
            name = f.get("gate") or f.get("figure")
            lines.append(f"| {md_code(('gate ' if f.get('gate') else '') + str(name))} | {_fig(f.get('before'))} | {_fig(f.get('after'))} |")
        lines.append("")
    return lines


def _suite(sid: str, s: dict[str, Any]) -> list[str]:
    lines = [f"## {md_cell(s.get('title') or sid)} ({md_code(sid)})", ""]
    lines += [
        f"Protocol: {md_cell(s['protocol']['text'])}. "
        f"{s['n_items']} prompts, {s['n_records']} records; intervals treat {md_cell(str(s.get('resampling_unit', 'prompts')))} as independent units (clusters); each figure names its method.",
        "",
    ]
    if s.get("metrics"):
        lines += ["| metric | estimate [CI] | n | better | detail |", "|---|---|---|---|---|"]
        for m in s["metrics"]:
            extra = ", ".join(f"{k}={num(v)}" for k, v in (m.get("extra") or {}).items())
            detail = m.get("error") or extra
            lines.append(
                f"| {md_cell(m['name'])} | {ci(m)} | {m.get('n', 0)} | "
                f"{direction_word(m.get('higher_is'), m.get('ideal'))} | {md_cell(detail)} |"
            )
            for attr, cells in (m.get("by") or {}).items():
                for v, c in cells.items():
                    lines.append(
                        f"| &nbsp;&nbsp;{md_cell(attr)}={md_cell(v)} | {ci(c)} | {c.get('n', 0)} | | |"
                    )
        lines.append("")
    for g in s.get("groups", []):
        gap = g["gap"]
        lines += [
            f"### {md_cell(g['score'])} by {md_cell(g['attribute'])}",
            "",
            f"Gap (max − min): {ci(gap)} between {md_cell(gap.get('max_group', '?'))} and "
            f"{md_cell(gap.get('min_group', '?'))} (p = {pval(gap.get('p_value'))}, "
            f"{md_cell(gap.get('test', 'no test'))}); overall {ci(g['overall'])}.",
            "",
            "| group | estimate [CI] | n | vs overall [CI] |",
            "|---|---|---|---|",
        ]
        for name, c in g["by_group"].items():
            lines.append(f"| {md_cell(name)} | {ci(c)} | {c.get('n', 0)} | {ci(g['vs_overall'].get(name))} |")
        lines.append("")
    if s.get("tests"):
        lines += [
            "### Paired tests (counterfactual pairs)",
            "",
            "| score | axis | a vs b | pairs | mean diff | Cohen's dz | p | p (Holm) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for t in s["tests"]:
            lines.append(
                f"| {md_cell(t['score'])} | {md_cell(t['attribute'])} | {md_cell(t['group_a'])} vs "
                f"{md_cell(t['group_b'])} | {t['n_pairs']} | {num(t['mean_diff'])} | {num(t['effect_size'])} | "
                f"{pval(t['p_value'])} | {pval(t.get('p_holm'))} |"
            )
        lines.append("")
    worst = (s.get("examples") or {}).get("worst") or []
    if s.get("attacks"):
        lines += attacks_markdown(s["attacks"])
    if worst:
        lines += ["### Worst examples", "", "| score | value | prompt | completion |", "|---|---|---|---|"]
        for e in worst:
            lines.append(
                f"| {md_cell(e['score'])} | {num(e['value'])} | {md_cell(e['prompt'])} | {md_cell(e['completion'])} |"
            )
        lines.append("")
    return lines


def _self_audit(summary: dict[str, Any]) -> list[str]:
    audits = self_audits(summary)
    if not audits:
        return []
    lines = ["## Scorer self-audit", ""]
    for a in audits:
        lines.append(
            f"**{md_cell(a.name)}** scorer {md_code(a.scorer)} {md_cell(a.version)}, "
            f"threshold {num(a.threshold)}."
        )
        if a.note:
            lines.append(f"Note: {md_cell(a.note)}")
        for kind, gk in a.gaps:
            lines.append(
                f"False-positive gap ({kind}): **{num(gk.get('estimate'))}** between "
                f"{md_cell(gk.get('max_group'))} and {md_cell(gk.get('min_group'))}."
            )
        if a.rows:
            lines += [
                "",
                "| identity term | false-positive rate | mean score | neutralized FPR | n |",
                "|---|---|---|---|---|",
            ]
            for g, c, n in a.rows:
                lines.append(
                    f"| {md_cell(g)} | {num(c.get('fpr'))} | {num(c.get('mean'))} | "
                    f"{num(n.get('fpr'))} | {c.get('n', '')} |"
                )
        if a.controls:
            lines.append("")
            lines.append("Controls: " + ", ".join(f"{md_cell(k)}={num(v)}" for k, v in a.controls.items()))
        lines.append("")
    return lines


def render_markdown(summary: dict[str, Any], manifest: dict[str, Any] | None = None) -> str:
    model = summary.get("model") or {}
    lines = [f"# lm-audit report: {md_cell(summary.get('run_id'))}", ""]
    if model.get("random_weights"):
        lines += [
            "> **WARNING: RANDOM-WEIGHTS MODEL.** This run tests the machinery only; "
            "its figures say nothing about any real model.",
            "",
        ]
    if summary.get("damaged"):  # unreadable lines, a short or empty run
        from audit.store.run_store import describe_damage

        lines += [f"> **{md_cell(describe_damage(summary['damaged']))}**", ""]
        lines += [f"> - {md_cell(u)}" for u in summary["damaged"].get("unreadable", [])[:10]] + [""]
    lines += [
        f"Model: {md_code(model.get('name'))} ({md_cell(model.get('backend'))}, "
        f"fingerprint {md_cell(model.get('fingerprint'))}); run status: {md_cell(summary.get('status'))}; "
        f"summary created {md_cell(summary.get('created'))}.",
        "",
        f"Every figure is an estimate with a {level_text(summary_level(summary))} CI by its own method "
        f"({md_cell('; '.join(methods_used(summary)) or 'none')}; each figure's `method` in summary.json); "
        "quote it with its protocol.",
        "",
        "## Headline",
        "",
        "| suite | metric | estimate [CI] | better | protocol |",
        "|---|---|---|---|---|",
    ]
    for sid, s in summary.get("suites", {}).items():
        for m in s.get("metrics", []):
            lines.append(
                f"| {md_cell(sid)} | {md_cell(m['name'])} | {ci(m)} | "
                f"{direction_word(m.get('higher_is'), m.get('ideal'))} | {md_cell(s['protocol']['text'])} |"
            )
    lines += ["", "## Gates", "", *_gates(summary)]
    lines += _overrides(summary)
    for sid, s in summary.get("suites", {}).items():
        lines += _suite(sid, s)
    lines += _self_audit(summary)
    if manifest is not None:
        lines += [
            "## Manifest",
            "",
            "```json",
            json.dumps(manifest, indent=2, ensure_ascii=False).replace("```", "ʼʼʼ"),
            "```",
            "",
        ]
    return "\n".join(lines)
