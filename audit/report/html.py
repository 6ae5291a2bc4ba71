"""``report.html``: one self-contained page (inline CSS and SVG, no scripts, no network).

Every string that can come from a model, a dataset or a user (prompts, completions, group names,
suite titles, the manifest) goes through ``html.escape``.
"""

from __future__ import annotations

import json
from typing import Any

from audit.gates.lines import gate_note, override_mark
from audit.report.attacks import render_html as attacks_html
from audit.report.format import (
    ci,
    direction_word,
    esc,
    gate_tally,
    level_text,
    mean_of_shown,
    methods_used,
    num,
    pval,
    summary_level,
    verdict_of_gate,
)
from audit.report.svg import interval_chart
from audit.report.walk import override_figures, override_lines, self_audits

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1rem 2rem;color:#222;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
h3{margin-top:1.4rem;font-size:1.05rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.pass{color:#fff;background:#2e7d32;font-weight:bold;padding:0 .4rem;border-radius:3px}
.fail{color:#fff;background:#c62828;font-weight:bold;padding:0 .4rem;border-radius:3px}
.error{color:#fff;background:#6a1b9a;font-weight:bold;padding:0 .4rem;border-radius:3px}
.banner{background:#c62828;color:#fff;padding:.8rem 1rem;font-size:1.1rem;font-weight:bold;border-radius:4px;margin:1rem 0}
.ok{background:#e8f5e9;border:1px solid #2e7d32;padding:.6rem 1rem;border-radius:4px}
.bad{background:#ffebee;border:1px solid #c62828;padding:.6rem 1rem;border-radius:4px}
.proto{color:#555;font-size:.85rem}.muted{color:#777}
pre{background:#f7f7f7;padding:.6rem;overflow:auto;font-size:.8rem;max-height:30rem}
td.text{max-width:28rem;white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,monospace;font-size:.8rem}
nav a{margin-right:1rem}
.overridden{color:#8a4b00;font-weight:bold;font-size:.85rem}
"""


def _table(head: list[str], rows: list[list[str]], num_cols: set[int] | None = None) -> str:
    num_cols = num_cols or set()
    h = "".join(f"<th>{c}</th>" for c in head)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i in num_cols else ''}>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _badge(word: str) -> str:
    return f'<span class="{word.lower()}">{word}</span>'


def _override_mark(r: dict[str, Any]) -> str:
    """Beside a verdict reviewer overrides changed: the shared wording, escaped, linking to the
    "Reviewer overrides" section; "" for any other gate."""
    mark = override_mark(r)
    return f' <a class="overridden" href="#overrides">{esc(mark)}: see Reviewer overrides</a>' if mark else ""


def _gates(summary: dict[str, Any]) -> str:
    from audit.summary.read import all_gate_results

    results = all_gate_results(summary)
    if not results:
        return '<p class="muted">No gates defined (suite defaults or <code>--policy</code>).</p>'
    word, tally = gate_tally(summary, results)
    cls = "ok" if word == "PASS" else "bad"
    head = (
        f'<p class="{cls}"><b>Gates: {word}</b> ({esc(tally)}). '
        "Each gate is judged on the named CI bound (conservative: the end worse for the comparison).</p>"
    )
    rows = [
        [
            _badge(verdict_of_gate(r)) + _override_mark(r),
            esc(r.get("suite") or "-"),
            f"<code>{esc(r['metric'])} {esc(r['op'])} {num(r['threshold'])}</code>",
            esc(ci(r)),
            f"{esc(r['bound'])} = {num(r.get('value'))}",
            esc(gate_note(r)) + f'<div class="proto">{esc(r.get("protocol") or "")}</div>',
        ]
        for r in results
    ]
    return head + _table(
        ["result", "suite", "gate", "estimate [CI]", "judged on", "note / protocol"], rows, {3}
    )


def _fig(d: dict[str, Any] | None) -> str:
    if not d:
        return "n/a"
    return esc(ci(d)) + (f" {_badge(d['verdict'])}" if d.get("verdict") else "")


def _overrides(summary: dict[str, Any]) -> str:
    """Reviewer overrides (overrides.jsonl): who, why, when, what changed, figures before/after."""
    lines = override_lines(summary)
    if not lines:
        return ""
    rows = []
    for o in lines:
        e = o.entry
        rows.append([esc(e.get("line", "")), f"<code>{esc(e.get('key'))}</code>", esc(o.change), esc(o.was),
                     esc(e.get("who")), f'<div class="text">{esc(e.get("why"))}</div>', esc(e.get("when")),
                     esc(e.get("status"))])
    out = [
        "<h2 id=overrides>Reviewer overrides</h2>",
        f"<p>{len(lines)} override line(s) in <code>overrides.jsonl</code>; every figure and gate in this "
        "report is computed with the applied ones. <code>records.jsonl</code> is unchanged.</p>",
        _table(["line", "record", "change", "was", "who", "why", "when", "status"], rows, {0}),
    ]
    for suite, figures in override_figures(lines):
        frows = [
            [("gate " if f.get("gate") else "") + f"<code>{esc(f.get('gate') or f.get('figure'))}</code>",
             _fig(f.get("before")), _fig(f.get("after"))]
            for f in figures
        ]
        out.append(f"<h3>{esc(suite)}: figures before and after its overrides</h3>")
        out.append(_table(["figure", "before", "after"], frows, {1, 2}))
    return "".join(out)


def _headline(summary: dict[str, Any]) -> str:
    rows = []
    for sid, s in summary.get("suites", {}).items():
        for m in s.get("metrics", []):
            rows.append(
                [
                    f'<a href="#suite-{esc(sid)}">{esc(sid)}</a>',
                    esc(m["name"]),
                    esc(ci(m)),
                    str(m.get("n", 0)),
                    esc(direction_word(m.get("higher_is"), m.get("ideal"))),
                    f'<span class="proto">{esc(s["protocol"]["text"])}</span>',
                ]
            )
    if not rows:
        return '<p class="muted">No metrics.</p>'
    return _table(["suite", "metric", "estimate [CI]", "n", "better", "protocol"], rows, {2, 3})


def _metrics(s: dict[str, Any]) -> str:
    rows = []
    for m in s.get("metrics", []):
        extra = ", ".join(f"{k}={num(v)}" for k, v in (m.get("extra") or {}).items())
        rows.append(
            [
                f"<b>{esc(m['name'])}</b>",
                esc(ci(m)),
                str(m.get("n", 0)),
                esc(direction_word(m.get("higher_is"), m.get("ideal"))),
                esc(m.get("error") or extra),
            ]
        )
        for attr, cells in (m.get("by") or {}).items():
            for v, c in cells.items():
                rows.append([f"&nbsp;&nbsp;{esc(attr)} = {esc(v)}", esc(ci(c)), str(c.get("n", 0)), "", ""])
    out = _table(["metric", "estimate [CI]", "n", "better", "detail"], rows, {1, 2}) if rows else ""
    for m in s.get("metrics", []):
        for attr, cells in (m.get("by") or {}).items():
            shown = list(cells.items())
            mean = mean_of_shown([c for _, c in shown])
            chart = interval_chart(shown, mean, f"{m['name']} by {attr}")
            if chart:
                out += (
                    f"<h4>{esc(m['name'])} by {esc(attr)}</h4><figure>{chart}<figcaption class=proto>"
                    f"dots: estimate; bars: {level_text(m.get('ci_level'))} CI; dashed: mean of the "
                    f"groups shown ({num(mean)}; the whole suite: {num(m.get('estimate'))}). "
                    f"{esc(s['protocol']['text'])}</figcaption></figure>"
                )
    return out


def _groups(s: dict[str, Any]) -> str:
    out = []
    for g in s.get("groups", []):
        gap = g["gap"]
        title = f"{g['score']} by {g['attribute']}"
        out.append(f"<h3>{esc(title)}</h3>")
        out.append(
            f"<p>Gap (max − min): <b>{esc(ci(gap))}</b> between {esc(gap.get('max_group', '?'))} and "
            f"{esc(gap.get('min_group', '?'))} (p = {pval(gap.get('p_value'))}, {esc(gap.get('test', 'no test'))}); "
            f"overall {esc(ci(g['overall']))}; higher is "
            f"{esc(g.get('higher_is', 'neutral'))}.</p>"
        )
        mog = g.get("mean_of_groups") or {}
        mean = mog.get("estimate") if mog.get("estimate") is not None else mean_of_shown(list(g["by_group"].values()))
        chart = interval_chart(list(g["by_group"].items()), mean, title)
        out.append(
            f"<figure>{chart}<figcaption class=proto>dots: group mean; bars: CI; dashed: mean of the groups "
            f"shown ({esc(ci(mog) if mog else num(mean))}). "
            f"{esc(g.get('method', ''))}; {esc(g.get('protocol', ''))}</figcaption></figure>"
        )
        rows = [
            [esc(name), esc(ci(c)), str(c.get("n", 0)), esc(ci(g["vs_overall"].get(name)))]
            for name, c in g["by_group"].items()
        ]
        out.append(_table(["group", "estimate [CI]", "n", "vs overall [CI]"], rows, {1, 2, 3}))
    return "".join(out)


def _tests(s: dict[str, Any]) -> str:
    if not s.get("tests"):
        return ""
    rows = [
        [
            esc(t["score"]),
            esc(t["attribute"]),
            f"{esc(t['group_a'])} vs {esc(t['group_b'])}",
            str(t["n_pairs"]),
            num(t["mean_diff"]),
            num(t["effect_size"]),
            pval(t["p_value"]),
            f"<b>{pval(t.get('p_holm'))}</b>",
        ]
        for t in s["tests"]
    ]
    method = esc(s["tests"][0].get("method", ""))
    return (
        "<h3>Paired tests on counterfactual pairs</h3>"
        f"<p class=proto>{method}; Holm correction across all tests of this suite; effect size Cohen's dz.</p>"
        + _table(
            ["score", "axis", "a vs b", "pairs", "mean diff", "Cohen's dz", "p", "p (Holm)"],
            rows,
            {3, 4, 5, 6, 7},
        )
    )


def _examples(s: dict[str, Any]) -> str:
    worst = (s.get("examples") or {}).get("worst") or []
    if not worst:
        return ""
    rows = [
        [
            esc(e["score"]),
            num(e["value"]),
            f'<span class="text">{esc(", ".join(f"{k}={v}" for k, v in (e.get("attributes") or {}).items()))}</span>',
            f'<div class="text">{esc(e["prompt"])}</div>',
            f'<div class="text">{esc(e["completion"])}</div>',
        ]
        for e in worst
    ]
    return "<h3>Worst examples</h3><p class=proto>Content warning: model output, shown escaped.</p>" + _table(
        ["score", "value", "attributes", "prompt", "completion"], rows, {1}
    )


def _suite(sid: str, s: dict[str, Any]) -> str:
    gates = "".join(
        f"<li>{_badge(verdict_of_gate(r))} <code>{esc(r['metric'])} {esc(r['op'])} {num(r['threshold'])}</code> "
        f"{esc(ci(r))}{_override_mark(r)}</li>"
        for r in s.get("gates", [])
    )
    return (
        f'<section id="suite-{esc(sid)}"><h2>{esc(s.get("title") or sid)} <span class="muted">({esc(sid)})</span></h2>'
        f'<p class="proto">Protocol: {esc(s["protocol"]["text"])}. {s["n_items"]} prompts, {s["n_records"]} records; '
        f"intervals treat {esc(s.get('resampling_unit', 'prompts'))} as independent units (clusters); each figure names its method.</p>"
        + (f"<ul>{gates}</ul>" if gates else "")
        + _metrics(s)
        + _groups(s)
        + _tests(s)
        + _examples(s)
        + (attacks_html(s["attacks"]) if s.get("attacks") else "")
        + "</section>"
    )


def _self_audit(summary: dict[str, Any]) -> str:
    audits = self_audits(summary)
    if not audits:
        return ""
    out = [
        "<h2 id=scorer-audit>Scorer self-audit</h2>",
        "<p class=proto>How the scorer itself treats identity terms in benign sentences: a high false-positive "
        "rate for a group inflates that group's toxicity in every suite.</p>",
    ]
    for a in audits:
        out.append(
            f"<h3>{esc(a.name)}: <code>{esc(a.scorer)}</code> {esc(a.version)}, "
            f"threshold {num(a.threshold)}</h3>"
        )
        if a.note:
            out.append(f"<p>{esc(a.note)}</p>")
        for kind, gk in a.gaps:
            out.append(
                f"<p>False-positive gap ({esc(kind)}): <b>{num(gk.get('estimate'))}</b> between "
                f"{esc(gk.get('max_group'))} and {esc(gk.get('min_group'))}.</p>"
            )
        if a.rows:
            rows = [
                [
                    esc(g) + (f' <span class="muted">({esc(a.axes[g])})</span>' if g in a.axes else ""),
                    num(c.get("fpr")),
                    num(c.get("mean")),
                    num(n.get("fpr")),
                    esc(c.get("n", "")),
                ]
                for g, c, n in a.rows
            ]
            out.append(
                _table(
                    ["identity term", "false-positive rate", "mean score", "neutralized FPR", "n"],
                    rows,
                    {1, 2, 3, 4},
                )
            )
        if a.controls:
            out.append(
                "<p>Controls: " + ", ".join(f"{esc(k)} = {num(v)}" for k, v in a.controls.items()) + "</p>"
            )
    return "".join(out)


def render_html(summary: dict[str, Any], manifest: dict[str, Any] | None = None) -> str:
    from audit.scorers.validity import suite_card_html

    model = summary.get("model") or {}
    banner = (
        (
            '<div class="banner">RANDOM-WEIGHTS MODEL — this run tests the machinery only; its figures say '
            "nothing about any real model.</div>"
        )
        if model.get("random_weights")
        else ""
    )
    if summary.get("damaged"):  # unreadable lines, a short or empty run
        from audit.store.run_store import describe_damage

        items = "".join(f"<li>{esc(u)}</li>" for u in summary["damaged"].get("unreadable", [])[:10])
        banner += f'<div class="banner">{esc(describe_damage(summary["damaged"]))}<ul>{items}</ul></div>'
    suites = summary.get("suites", {})
    nav = "".join(f'<a href="#suite-{esc(sid)}">{esc(sid)}</a>' for sid in suites)
    body = [
        f"<h1>lm-audit report: {esc(summary.get('run_id'))}</h1>",
        banner,
        f"<p>Model <code>{esc(model.get('name'))}</code> ({esc(model.get('backend'))}, fingerprint "
        f"{esc(model.get('fingerprint'))}); run status {esc(summary.get('status'))}; summary created "
        f"{esc(summary.get('created'))}.</p>",
        f'<p class="proto">Every figure: estimate [{level_text(summary_level(summary))} CI] by its own method '
        f"({esc('; '.join(methods_used(summary)) or 'none')}; each figure's method in summary.json). "
        "Quote figures with their protocol.</p>",
        f"<nav>{nav}<a href='#scorer-audit'>scorer self-audit</a><a href='#manifest'>manifest</a></nav>",
        "<h2>Headline</h2>",
        _headline(summary),
        "<h2>Gates</h2>",
        _gates(summary),
        _overrides(summary),
        *(_suite(sid, s) + suite_card_html(summary, s) for sid, s in suites.items()),  # each suite's scorers' validity card
        _self_audit(summary),
    ]
    if manifest is not None:
        body.append(
            f"<h2 id=manifest>Manifest</h2><pre>{esc(json.dumps(manifest, indent=2, ensure_ascii=False))}</pre>"
        )
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        f"<title>lm-audit: {esc(summary.get('run_id'))}</title><style>{CSS}</style></head><body>"
        + "".join(body)
        + "</body></html>\n"
    )
