"""Text and Markdown for ``compare_many`` results: one ranked table per suite, each figure's runs
best first, with their estimate and CI on the shared clusters and their significance letters."""

from __future__ import annotations

from typing import Any

from audit.report.format import direction_word, level_text, md_cell, num, pval


def _cell(m: dict[str, Any]) -> str:
    if m.get("uninformative"):
        return f"{num(m['estimate'])} (uninformative: constant score, not ranked)"
    return f"{num(m['estimate'])} [{num(m['ci_low'])}, {num(m['ci_high'])}] {m['letters']}".rstrip()


def _significant_pairs(fig: dict[str, Any]) -> str:
    out = []
    for p in fig["pairwise"]:
        if p["significant"]:
            out.append(f"{p['b']} vs {p['a']}: {num(p['delta'])} (p_holm {pval(p['p_holm'])})")
    return "; ".join(out)


def many_lines(result: dict[str, Any]) -> list[str]:
    """Console lines: per suite and figure, the runs in rank order with estimate [CI] letters."""
    runs = result["runs"]
    out = [f"compare: {len(runs)} runs: " + ", ".join(f"{r['label']} ({r['model']})" for r in runs)]
    out += [f"warning: {w}" for w in result.get("warnings", [])]
    for sid, s in result["suites"].items():
        out.append(f"== {sid}")
        out += [f"warning {sid}: {w}" for w in s["warnings"]]
        for g in s["coverage"]["not_shared"]:
            out.append(
                f"  items only in {', '.join(g['runs'])}: {g['n_items']} (e.g. {', '.join(g['examples'])})"
            )
        for f in s["figures"]:
            ranked = "  ".join(f"{m['rank'] or '-'}. {m['run']} {_cell(m)}" for m in f["models"])
            better = direction_word(f["higher_is"], f["ideal"])
            out.append(f"  {f['figure']} ({better} is better, n_shared={f['n_shared']}): {ranked}")
            for w in f["warnings"]:
                out.append(f"    warning: {w}")
    out.append(
        f"letters: runs sharing a letter do not differ significantly (pairwise paired intervals and their "
        f"p-values at {level_text(result['ci_level'])}, Holm over each figure's pairs, alpha={result['alpha']}); "
        "uninformative runs (constant score) are never ranked"
    )
    return out


def render_many_markdown(result: dict[str, Any]) -> str:
    runs = result["runs"]
    lines = [
        "# lm-audit compare: " + ", ".join(md_cell(r["label"]) for r in runs),
        "",
        "| run | model | seed | records |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {md_cell(r['label'])} | `{md_cell(r['model'])}`{' (random weights)' if r['random_weights'] else ''} "
        f"| {r['seed']} | {r['n_records']} |"
        for r in runs
    ]
    lines += [
        "",
        f"Every figure is computed on the clusters (prompts or counterfactual sets) **all** runs hold "
        f"(n shared). Runs are ranked best first; runs sharing a letter are not significantly "
        f"different (pairwise paired intervals — Newcombe for 0/1 outcomes, else paired cluster bootstrap "
        f"— each with the p-value of the same interval, Holm's correction over each figure's pairs, "
        f"alpha = {result['alpha']}). {level_text(result['ci_level'])} CIs. A run whose score is constant "
        f"(uninformative, e.g. random weights) is marked and never ranked.",
        "",
    ]
    lines += [f"> warning: {md_cell(w)}" for w in result.get("warnings", [])]
    labels = [r["label"] for r in runs]
    for sid, s in result["suites"].items():
        lines += ["", f"## {md_cell(sid)}", ""]
        lines += [f"> warning: {md_cell(w)}" for w in s["warnings"]]
        for g in s["coverage"]["not_shared"]:
            lines.append(
                f"> items only in {md_cell(', '.join(g['runs']))}: {g['n_items']} "
                f"(e.g. {md_cell(', '.join(g['examples']))})"
            )
        lines += [
            "",
            "| figure | better | n shared | " + " | ".join(f"#{i + 1}" for i in range(len(labels)))
            + " | significant differences |",
            "|---|---|---|" + "---|" * len(labels) + "---|",
        ]
        for f in s["figures"]:
            cells = [f"{md_cell(m['run'])}: {_cell(m)}" for m in f["models"]]
            cells += [""] * (len(labels) - len(cells))
            lines.append(
                f"| {md_cell(f['figure'])} | {direction_word(f['higher_is'], f['ideal'])} | {f['n_shared']} | "
                + " | ".join(cells)
                + f" | {md_cell(_significant_pairs(f)) or '-'} |"
            )
    return "\n".join(lines) + "\n"
