"""Hugging Face model cards: a "Bias, Risks, and Limitations" and an "Evaluation" section in
Markdown, a ``model-index`` metadata block and ``.eval_results/*.yaml`` entries.

- The section states each headline figure with its CI and protocol, the failed, inconclusive and
  unassessable gates, the scorer validity caveats (``summary["scorer_validity"]``) and, for a
  random-weights model, a warning. It sits between ``<!-- lm-audit:begin -->`` and
  ``<!-- lm-audit:end -->`` markers, so a later export replaces it and nothing else.
- ``model-index`` (the card's YAML metadata, read by ``huggingface_hub.ModelCard`` as
  ``EvalResult`` objects): one result per suite, task ``text-generation`` named ``lm-audit: <suite
  title>``; one metric per figure, value = estimate, the CI in the metric name and in ``args``.
  Results of other tools in an existing ``model-index`` are kept.
- ``.eval_results/<suite>.yaml`` (huggingface_hub ``EvalResultEntry``): one entry per figure,
  ``dataset.task_id`` = figure name, the CI, n and protocol in ``notes``. The Hub wants
  ``dataset.id`` to be a registered Benchmark dataset; ours default to ``lm-audit/<suite>``, a
  placeholder to be mapped with ``--hub-dataset SUITE=owner/name``.

Writing into an existing README.md (``card=``, ``card_file``) edits only the ``model-index`` key of its front
matter and the text between the markers (appended at the end the first time); every other byte of
the card is kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audit.core.errors import UsageError
from audit.export.card_file import BEGIN, END, TASK_PREFIX, dump_yaml, merge_card
from audit.export.common import (
    RunData,
    ci_level,
    est_ci,
    figure_text,
    finite,
    fmt,
    gate_results,
    producer,
    safe_name,
    suite_figures,
    verdict,
)
from audit.export.hub_guard import DAMAGED, mark_entries, mark_results
from audit.report.format import direction_word, level_text, md_cell

MAX_GAPS = 5


# --------------------------------------------------------------------------- figures


def headline(data: RunData, suite: str) -> list[dict[str, Any]]:
    """A suite's figures for a card: every metric, plus the group gaps a gate judges."""
    ss = (data.summary.get("suites") or {}).get(suite) or {}
    gated = {g.get("metric") for g in gate_results(data.summary) if g.get("suite") == suite}
    return [f for f in suite_figures(ss) if f["kind"] == "metric" or f["figure"] in gated]


def hub_dataset(suite: str, hub_datasets: dict[str, str] | None) -> str:
    return (hub_datasets or {}).get(suite) or f"lm-audit/{safe_name(suite)}"


def _protocol(data: RunData, suite: str) -> str:
    ss = (data.summary.get("suites") or {}).get(suite) or {}
    return str((ss.get("protocol") or {}).get("text") or "")


def _title(data: RunData, suite: str) -> str:
    sm = (data.manifest.get("suites") or {}).get(suite) or {}
    return str(sm.get("title") or suite)


# --------------------------------------------------------------------------- markdown


def _gate_counts(results: list[dict[str, Any]]) -> dict[str, int]:
    out = {"PASS": 0, "FAIL": 0, "INCONCLUSIVE": 0, "ERROR": 0}
    for r in results:
        out[verdict(r)] = out.get(verdict(r), 0) + 1
    return out


def _gates_md(data: RunData) -> list[str]:
    results = gate_results(data.summary)
    if not results:
        return ["No gates were defined for this run (suite defaults or a policy file)."]
    c = _gate_counts(results)
    on_inc = (data.summary.get("gates") or {}).get("on_inconclusive", "fail")
    lines = [
        f"**Gates: {c['PASS']} passed, {c['FAIL']} failed, {c['INCONCLUSIVE']} inconclusive "
        f"(the CI straddles the threshold; policy: {md_cell(on_inc)}), {c['ERROR']} could not be "
        f"assessed, of {len(results)}.**",
        "",
    ]
    bad = [r for r in results if verdict(r) != "PASS"]
    if not bad:
        return lines
    lines += ["| verdict | suite | gate | figure [CI] | judged on | why / protocol |", "|---|---|---|---|---|---|"]
    for r in bad:
        gate = f"{r.get('metric')} {r.get('op')} {fmt(r.get('threshold'))}"
        fig = "n/a" if finite(r.get("estimate")) is None else est_ci(r)
        needed = (r.get("needed") or {}).get("text") if isinstance(r.get("needed"), dict) else None
        why = r.get("error") or "; ".join(x for x in [needed, r.get("protocol")] if x)
        lines.append(
            f"| **{verdict(r)}** | {md_cell(r.get('suite') or '-')} | {md_cell(gate)} | {md_cell(fig)} | "
            f"{md_cell(r.get('bound'))} = {fmt(r.get('value'))} | {md_cell(why)} |"
        )
    return lines


def _gaps_md(data: RunData) -> list[str]:
    rows = []
    for suite, ss in (data.summary.get("suites") or {}).items():
        for f in suite_figures(ss):
            if f["kind"] == "gap" and finite(f.get("ci_low")) is not None and not f["uninformative"]:
                rows.append((suite, f))
    rows.sort(key=lambda sf: -(finite(sf[1].get("ci_low")) or 0.0))
    if not rows:
        return ["No group comparison has a confidence interval in this run."]
    lines = [
        "Largest differences between groups (max − min group; a CI whose lower end is above 0 is a "
        "difference this run can distinguish from chance):",
        "",
        "| suite | figure | gap [CI] | highest group | lowest group |",
        "|---|---|---|---|---|",
    ]
    for suite, f in rows[:MAX_GAPS]:
        lines.append(
            f"| {md_cell(suite)} | {md_cell(f['figure'])} | {md_cell(est_ci(f))} | "
            f"{md_cell(f.get('max_group'))} | {md_cell(f.get('min_group'))} |"
        )
    return lines


def _validity_md(data: RunData) -> list[str]:
    validity = data.summary.get("scorer_validity")
    if not isinstance(validity, dict) or not validity:
        return ["This summary carries no scorer validity data; read each scorer's card in docs/scorers.md."]
    lines = []
    for name, v in validity.items():
        if not isinstance(v, dict):
            continue
        parts = []
        for a in v.get("agreement") or []:
            if finite(a.get("estimate")) is not None:
                parts.append(
                    f"{md_cell(a.get('metric'))} {fmt(a.get('estimate'), 2)} [{fmt(a.get('ci_low'), 2)}, "
                    f"{fmt(a.get('ci_high'), 2)}] against {md_cell(a.get('reference'))} (n={a.get('n')})"
                )
        sa = v.get("self_audit") or {}
        gap = ((sa.get("fpr_gap") or {}).get("raw") or {}) if isinstance(sa, dict) else {}
        if finite(gap.get("estimate")) is not None:
            parts.append(
                f"false-positive gap on benign identity mentions {fmt(gap.get('estimate'), 3)} "
                f"({md_cell(gap.get('max_group'))} vs {md_cell(gap.get('min_group'))})"
            )
        text = "; ".join(parts) if parts else "no measured agreement"
        caveat = f" Caveat: {md_cell(v.get('caveat'), 600)}." if v.get("caveat") else ""
        lines.append(f"- **{md_cell(name)}** ({md_cell(v.get('version'))}): {text}.{caveat}")
    return lines


def _evaluation_md(data: RunData) -> list[str]:
    level = ci_level(data.summary)
    lines = ["## Evaluation", ""]
    gates = gate_results(data.summary)
    for suite, ss in (data.summary.get("suites") or {}).items():
        lines += [
            f"### {md_cell(_title(data, suite))} (`{md_cell(suite)}`)",
            "",
            f"Protocol: {md_cell(_protocol(data, suite), 600)}. {ss.get('n_items')} prompts/items, "
            f"{ss.get('n_records')} records.",
            "",
            f"| figure | estimate [{level_text(level)} CI] | n | better | gate |",
            "|---|---|---|---|---|",
        ]
        for f in headline(data, suite):
            g = [r for r in gates if r.get("suite") == suite and r.get("metric") == f["figure"]]
            gate = ", ".join(f"{verdict(r)} ({r.get('op')} {fmt(r.get('threshold'))})" for r in g) or "-"
            note = " (uninformative: the score is constant)" if f["uninformative"] else ""
            lines.append(
                f"| {md_cell(f['figure'])} | {md_cell(est_ci(f))}{note} | "
                f"{f.get('n') if f.get('n') is not None else 'n/a'} | "
                f"{md_cell(direction_word(f.get('higher_is'), f.get('ideal')))} | {md_cell(gate)} |"
            )
        lines.append("")
    return lines


def card_section(data: RunData) -> str:
    """The Markdown section, between the begin/end markers."""
    model = data.model
    level = ci_level(data.summary)
    when = data.manifest.get("finished") or data.manifest.get("created") or "?"
    lines = [
        f"{BEGIN} run={md_cell(data.run_id)}; written by {producer()} (lm-audit export RUN --format "
        "model-card); edits between these markers are replaced by the next export -->",
        "## Bias, Risks, and Limitations",
        "",
    ]
    if model.get("random_weights"):
        lines += [
            f"> **Warning: random weights.** This audit ran on a random-weights model "
            f"(`{md_cell(model.get('name'))}`): its figures say nothing about a real model.",
            "",
        ]
    if data.summary.get("damaged"):
        reason = (data.summary["damaged"] or {}).get("reason")
        lines += [f"> **Warning: damaged run.** {md_cell(reason)}. No gate of this run passes.", ""]
    lines += [
        f"Audited with {producer()} on `{md_cell(model.get('name'))}` (backend {md_cell(model.get('backend'))}, "
        f"fingerprint `{md_cell(model.get('fingerprint'))}`), run `{md_cell(data.run_id)}` ({md_cell(when)}), "
        f"seed {data.manifest.get('seed')}. Every figure is an estimate with its {level_text(level)} "
        "confidence interval and the protocol it was measured under. The scorers are local models "
        "with known biases of their own (below), so absolute figures are not comparable with papers "
        "that used other scorers or protocols.",
        "",
        *_gates_md(data),
        "",
        "### Differences between groups",
        "",
        *_gaps_md(data),
        "",
        "### Scorer validity",
        "",
        *_validity_md(data),
        "",
        *_evaluation_md(data),
        END,
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- metadata


def model_index_results(data: RunData, hub_datasets: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """``model-index[0].results``: one entry per suite with one metric per figure."""
    level = ci_level(data.summary)
    out = []
    for suite in data.summary.get("suites") or {}:
        metrics = []
        for f in headline(data, suite):
            est = finite(f.get("estimate"))
            if est is None:
                continue
            args = {k: finite(f.get(k)) for k in ("ci_low", "ci_high")}
            args.update(ci_level=level, n=f.get("n"), higher_is=f.get("higher_is"), ideal=f.get("ideal"))
            metrics.append(
                {
                    "type": str(f["figure"]),
                    "value": round(est, 6),
                    "name": f"{f['figure']} [{level_text(level)} CI {fmt(f.get('ci_low'))}, {fmt(f.get('ci_high'))}]",
                    "args": {k: v for k, v in args.items() if v is not None},
                }
            )
        if not metrics:
            continue
        sm = (data.manifest.get("suites") or {}).get(suite) or {}
        out.append(
            {
                "task": {"type": "text-generation", "name": f"{TASK_PREFIX}{_title(data, suite)}"},
                "dataset": {
                    "type": hub_dataset(suite, hub_datasets),
                    "name": f"{suite} ({sm.get('n_items', '?')} items)",
                    "config": str(sm.get("protocol") or "default"),
                    "args": {"protocol": _protocol(data, suite), "seed": data.manifest.get("seed")},
                },
                "metrics": metrics,
            }
        )
    return out


def eval_results_entries(data: RunData, suite: str, hub_datasets: dict[str, str] | None = None,
                         source_url: str | None = None) -> list[dict[str, Any]]:
    """The ``.eval_results/<suite>.yaml`` list (the Hub format of ``EvalResultEntry``)."""
    level = ci_level(data.summary)
    date = data.manifest.get("finished") or data.manifest.get("created")
    rw = "; RANDOM-WEIGHTS model" if data.model.get("random_weights") else ""
    out = []
    for f in headline(data, suite):
        est = finite(f.get("estimate"))
        if est is None:
            continue
        entry: dict[str, Any] = {
            "dataset": {"id": hub_dataset(suite, hub_datasets), "task_id": str(f["figure"])},
            "value": round(est, 6),
        }
        if date:
            entry["date"] = str(date)
        if source_url:
            entry["source"] = {"url": source_url, "name": f"lm-audit run {data.run_id}"}
        entry["notes"] = (
            f"{figure_text(f, level)}; {_protocol(data, suite)}; {producer()} run {data.run_id}{rw}"
        )
        out.append(entry)
    return out


def write_model_card(
    data: RunData,
    out_dir: Path,
    card: Path | None = None,
    hub_datasets: dict[str, str] | None = None,
    model_name: str | None = None,
    source_url: str | None = None,
    damage: str | None = None,
) -> list[Path]:
    """Write ``model-card.md`` (the section), ``model-index.yaml`` and ``.eval_results/*.yaml``
    into ``out_dir``; with ``card``, also put the section and model-index into that README.md.
    ``damage`` (``--allow-damaged``): why the run is not whole, stated in the YAML (``hub_guard``)."""
    unknown = sorted(set(hub_datasets or {}) - set(data.summary.get("suites") or {}))
    if unknown:
        raise UsageError(f"--hub-dataset names suites not in this run: {', '.join(unknown)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    section = card_section(data)
    results = model_index_results(data, hub_datasets)
    if damage:
        warning = f"> **Warning: {DAMAGED}.** {md_cell(damage)}. Its figures are not a finished audit.\n\n"
        head, nl, rest = section.partition("## Bias, Risks, and Limitations\n\n")
        section = head + nl + warning + rest
        results = mark_results(results, damage)
    name = model_name or str(data.model.get("name") or "model")
    paths = [out_dir / "model-card.md", out_dir / "model-index.yaml"]
    paths[0].write_text(section, encoding="utf-8")
    paths[1].write_text(dump_yaml({"model-index": [{"name": name, "results": results}]}), encoding="utf-8")
    er_dir = out_dir / ".eval_results"
    er_dir.mkdir(exist_ok=True)
    for suite in data.summary.get("suites") or {}:
        entries = eval_results_entries(data, suite, hub_datasets, source_url)
        entries = mark_entries(entries, damage) if damage else entries
        if entries:
            p = er_dir / f"lm-audit-{safe_name(suite)}.yaml"
            p.write_text(dump_yaml(entries), encoding="utf-8")
            paths.append(p)
    if card is not None:
        old = card.read_text(encoding="utf-8") if card.is_file() else ""
        card.parent.mkdir(parents=True, exist_ok=True)
        card.write_text(merge_card(old, section, results, name), encoding="utf-8")
        paths.append(card)
    return paths
