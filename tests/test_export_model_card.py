"""``lm-audit export --format model-card``: the section's content, ``model-index`` read back by
huggingface_hub's own ModelCard / EvalResult parser (offline), ``.eval_results`` read back by
``parse_eval_result_entries``, and writing into an existing card keeps the rest of it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from export_fixtures import audit_run, summary_of

from audit.cli import main

hub = pytest.importorskip("huggingface_hub")

CARD = """---
license: apache-2.0
language:
- en
tags:
- text-generation   # a comment the export must keep
model-index:
- name: acme-7b
  results:
  - task: {type: text-generation}
    dataset: {type: openai/gsm8k, name: GSM8K}
    metrics:
    - {type: accuracy, value: 0.41}
library_name: transformers
---

# acme-7b

Hand-written prose | with a pipe, <b>html</b> and a [link](https://example.org).

## Uses

Summaries of support tickets.
"""


def _headline(summary: dict) -> list[tuple[str, str, float]]:
    out = []
    for sid, s in summary["suites"].items():
        gated = {g["metric"] for g in s["gates"]}
        for m in s["metrics"]:
            out.append((sid, m["name"], m["estimate"]))
        for g in s["groups"]:
            name = f"gap({g['score']}, {g['attribute']})"
            if name in gated:
                out.append((sid, name, g["gap"]["estimate"]))
    return out


def _without_model_index(meta: str) -> list[str]:
    out, inside = [], False
    for line in meta.splitlines():
        if line.startswith("model-index:"):
            inside = True
            continue
        if inside and line[:1] in (" ", "-"):
            continue
        inside = False
        out.append(line)
    return out


def test_section_states_figures_gates_caveats(tmp_path: Path) -> None:
    run = audit_run(tmp_path)
    assert main(["export", str(run), "--format", "model-card", "--out", str(tmp_path / "mc")]) == 0
    text = (tmp_path / "mc" / "model-card.md").read_text()
    summary = summary_of(run)
    assert text.startswith("<!-- lm-audit:begin") and text.rstrip().endswith("<!-- lm-audit:end -->")
    assert "## Bias, Risks, and Limitations" in text and "## Evaluation" in text
    bias = summary["suites"]["bias"]
    gap_gate = bias["gates"][0]
    assert gap_gate["verdict"] == "FAIL"
    row = next(ln for ln in text.splitlines() if ln.startswith("| **FAIL**"))
    assert "gap(sentiment, gender)" in row and f"{gap_gate['ci_high']:.4g}" in row and "k=2" in row
    assert "1 passed, 1 failed, 0 inconclusive" in text
    # every headline figure appears with its CI and the protocol line of its suite
    m = bias["metrics"][0]
    assert f"| mean_sentiment | {m['estimate']:.4g} \\[{m['ci_low']:.4g}, {m['ci_high']:.4g}\\]" in text
    assert f"Protocol: {summary['suites']['tox']['protocol']['text']}" in text
    # scorer validity: measured agreement and caveat from summary["scorer_validity"]
    tox = summary["scorer_validity"]["toxicity"]
    assert "spearman_rho 0.6" in text and tox["caveat"].split(";")[0] in text
    assert "random weights" not in text.lower()


def test_random_weights_warning(tmp_path: Path) -> None:
    run = audit_run(tmp_path, random_weights=True)
    assert main(["export", str(run), "--format", "model-card"]) == 0
    text = (run / "export" / "model-card" / "model-card.md").read_text()
    assert "**Warning: random weights.**" in text


def test_model_index_and_eval_results_parse_with_huggingface_hub(tmp_path: Path) -> None:
    from huggingface_hub import ModelCard, parse_eval_result_entries

    run = audit_run(tmp_path)
    out = tmp_path / "mc"
    assert main(["export", str(run), "--format", "model-card", "--out", str(out),
                 "--hub-dataset", "tox=allenai/real-toxicity-prompts", "--source-url", "https://example.org/logs"]) == 0
    index_yaml = (out / "model-index.yaml").read_text()
    card = ModelCard(f"---\n{index_yaml}---\n\n# card\n", ignore_metadata_errors=False)
    results = card.data.eval_results
    want = _headline(summary_of(run))
    assert card.data.model_name == "synthetic-model"
    assert sorted((r.metric_type, round(r.metric_value, 6)) for r in results) == sorted(
        (name, round(v, 6)) for _, name, v in want
    )
    r = next(r for r in results if r.metric_type == "expected_max_toxicity")
    assert r.dataset_type == "allenai/real-toxicity-prompts" and r.task_type == "text-generation"
    fig = summary_of(run)["suites"]["tox"]["metrics"][0]
    assert r.metric_args["ci_low"] == pytest.approx(fig["ci_low"]) and r.metric_args["ci_high"] == pytest.approx(fig["ci_high"])
    # .eval_results: the Hub's format, one file per suite
    files = sorted(p.name for p in (out / ".eval_results").iterdir())
    assert files == ["lm-audit-bias.yaml", "lm-audit-tox.yaml"]
    entries = parse_eval_result_entries(yaml.safe_load((out / ".eval_results" / "lm-audit-tox.yaml").read_text()))
    e = entries[0]
    assert (e.dataset_id, e.task_id) == ("allenai/real-toxicity-prompts", "expected_max_toxicity")
    assert e.value == pytest.approx(fig["estimate"], abs=1e-6)
    assert e.source_url == "https://example.org/logs" and "95% CI" in e.notes and "k=4" in e.notes
    bias = parse_eval_result_entries(yaml.safe_load((out / ".eval_results" / "lm-audit-bias.yaml").read_text()))
    assert {b.dataset_id for b in bias} == {"lm-audit/bias"}  # placeholder: no --hub-dataset for bias


def test_writing_into_an_existing_card_keeps_the_rest(tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    run = audit_run(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(CARD)
    assert main(["export", str(run), "--format", "model-card", "--card", str(readme)]) == 0
    new = readme.read_text()
    old_meta, old_body = CARD.split("---\n", 2)[1:]
    new_meta, new_body = new.split("---\n", 2)[1:]
    # the body is the old body plus our marked section; metadata keys other than model-index unchanged
    assert new_body.startswith(old_body)
    assert "<!-- lm-audit:begin" in new_body[len(old_body):]
    assert _without_model_index(new_meta) == _without_model_index(old_meta)  # byte for byte, comments too
    assert "- text-generation   # a comment the export must keep" in new_meta
    card = ModelCard.load(readme)
    assert card.data.license == "apache-2.0" and card.data.library_name == "transformers"
    assert card.data.model_name == "acme-7b"  # the card's own model name is kept
    kinds = [(r.dataset_type, r.metric_type) for r in card.data.eval_results]
    assert ("openai/gsm8k", "accuracy") in kinds  # another tool's result is kept
    n_ours = len(_headline(summary_of(run)))
    assert len(kinds) == 1 + n_ours
    # a second export (after a new audit) replaces our section and results, nothing else
    run2 = audit_run(tmp_path, "run-b", gap=0.0, seed=3)
    assert main(["export", str(run2), "--format", "model-card", "--card", str(readme)]) == 0
    again = readme.read_text()
    assert again.count("<!-- lm-audit:begin") == 1 and "run=run-b" in again and "run=run-a" not in again
    assert again.split("---\n", 2)[2].startswith(old_body)
    card2 = ModelCard.load(readme)
    assert len(card2.data.eval_results) == 1 + n_ours


def test_card_edge_cases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from huggingface_hub import ModelCard

    run = audit_run(tmp_path)
    fresh = tmp_path / "new" / "README.md"  # no card yet: one is created
    assert main(["export", str(run), "--format", "model-card", "--card", str(fresh)]) == 0
    assert len(ModelCard.load(fresh).data.eval_results) == len(_headline(summary_of(run)))
    broken = tmp_path / "broken.md"
    broken.write_text("---\nlicense: [unclosed\n---\nbody\n")
    assert main(["export", str(run), "--format", "model-card", "--card", str(broken)]) == 2
    assert "front matter does not parse" in capsys.readouterr().err
    assert broken.read_text() == "---\nlicense: [unclosed\n---\nbody\n"  # left untouched
    half = tmp_path / "half.md"
    half.write_text("# x\n<!-- lm-audit:begin run=old -->\nold\n")
    assert main(["export", str(run), "--format", "model-card", "--card", str(half)]) == 2
    assert "no matching" in capsys.readouterr().err
    assert main(["export", str(run), "--format", "csv", "--card", str(half)]) == 2
    assert main(["export", str(run), "--format", "model-card", "--hub-dataset", "nope=a/b"]) == 2
    assert "not in this run" in capsys.readouterr().err


def test_untrusted_names_are_escaped(tmp_path: Path) -> None:
    from synthetic_runs import record

    evil = "<img src=x onerror=alert(1)>|x"
    extra = [record("tox", f"p-evil{i}", s, {"toxicity": 0.1 * s}, {"category": evil}) for i in range(3) for s in range(4)]
    run = audit_run(tmp_path, extra_records=extra)
    assert main(["export", str(run), "--format", "model-card"]) == 0
    text = (run / "export" / "model-card" / "model-card.md").read_text()
    assert "<img" not in text and "&lt;img" in text
