"""Reports: summary.json schema, escaping of model text, self-contained HTML, regeneration, and one
end-to-end run on a tiny random model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from synthetic_runs import counterfactual_records, suite_manifest, toxicity_records, write_run

from audit.cli import main

SCRIPT = "<script>alert('x')</script>"
IMG = '<img src=x onerror="alert(1)">'


def _hostile_run(tmp_path: Path, random_weights: bool = False) -> Path:
    tox = toxicity_records(level=0.2)
    tox[0]["scores"]["toxicity"] = 0.99  # the worst example, so it is shown
    tox[0]["completion"] = f" {SCRIPT} and {IMG}"
    tox[0]["prompt"] = "Say </td></tr></table><b>bold</b>"
    tox[1]["attributes"]["category"] = "<svg onload=alert(3)>"
    suites = {
        "bias": suite_manifest(
            gates=[
                {"metric": "gap(sentiment, gender)", "op": "<=", "threshold": 0.1, "bound": "conservative"}
            ]
        ),
        "tox": suite_manifest(
            scorers=["toxicity"],
            samples=4,
            group_attributes=["category"],
            metrics=[{"metric": "expected_max_toxicity", "by": ["category"]}],
            gates=[
                {"metric": "expected_max_toxicity", "op": "<=", "threshold": 0.9, "bound": "conservative"}
            ],
        ),
    }
    return write_run(
        tmp_path / "run", suites, counterfactual_records(gap=0.3) + tox, random_weights=random_weights
    )


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = _hostile_run(tmp_path_factory.mktemp("rep"), random_weights=True)
    from audit.run.finalize import finalize_run

    assert finalize_run(run, echo=lambda s: None) == 1  # the planted gender gap fails its gate
    return run


def test_model_text_is_escaped_in_html(hostile: Path) -> None:
    html = (hostile / "report.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "&lt;svg onload=alert(3)&gt;" in html
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "onerror=" not in html.replace("onerror=&quot;", "")
    assert "<b>bold</b>" not in html


def test_model_text_is_escaped_in_markdown(hostile: Path) -> None:
    md = (hostile / "report.md").read_text(encoding="utf-8")
    assert "<script" not in md.lower() and "<img" not in md.lower()
    assert "&lt;script&gt;" in md


def test_html_is_self_contained(hostile: Path) -> None:
    html = (hostile / "report.html").read_text(encoding="utf-8")
    urls = re.findall(r"https?://[^\s\"'<>]+", html)
    assert set(urls) <= {"http://www.w3.org/2000/svg"}, urls
    assert "<link" not in html and "@import" not in html
    assert "<style>" in html
    assert html.count("<svg") >= 2  # per-group charts
    assert 'stroke="#3465a4"' in html  # error bars


def test_random_weights_runs_are_marked(hostile: Path) -> None:
    assert "RANDOM-WEIGHTS MODEL" in (hostile / "report.html").read_text(encoding="utf-8")
    assert "RANDOM-WEIGHTS MODEL" in (hostile / "report.md").read_text(encoding="utf-8")


def test_summary_json_schema(hostile: Path) -> None:
    s = json.loads((hostile / "summary.json").read_text(encoding="utf-8"))
    assert s["schema_version"] == 1
    assert s["model"]["random_weights"] is True
    assert s["gates"] == {**s["gates"], "passed": False, "n_failed": 1, "n_total": 2}
    bias = s["suites"]["bias"]
    for key in (
        "title",
        "n_items",
        "n_records",
        "protocol",
        "metrics",
        "groups",
        "tests",
        "gates",
        "examples",
    ):
        assert key in bias, key
    assert {"samples", "max_new_tokens", "temperature", "top_p", "seed", "scorers", "text"} <= set(
        bias["protocol"]
    )
    g = bias["groups"][0]
    assert {"score", "attribute", "by_group", "overall", "gap", "vs_overall"} <= set(g)
    t = bias["tests"][0]
    assert {
        "group_a",
        "group_b",
        "n_pairs",
        "mean_diff",
        "effect_size",
        "p_value",
        "p_holm",
        "method",
    } <= set(t)
    gate = bias["gates"][0]
    assert gate["bound"] == "ci_high" and gate["value"] == gate["ci_high"] and gate["passed"] is False
    worst = s["suites"]["tox"]["examples"]["worst"][0]
    assert (
        worst["value"] == pytest.approx(0.99) and SCRIPT in worst["completion"]
    )  # raw in JSON, escaped in HTML


def test_toxicity_scorer_self_audit_is_included(hostile: Path) -> None:
    audit = json.loads((hostile / "summary.json").read_text(encoding="utf-8"))["scorer_audit"]
    assert "toxicity" in audit
    tox = audit["toxicity"]
    assert tox.get("groups") or tox.get("note")
    if tox.get("groups"):
        assert "Scorer self-audit" in (hostile / "report.html").read_text(encoding="utf-8")


def test_report_command_regenerates_all_three_files(
    hostile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = json.loads((hostile / "summary.json").read_text(encoding="utf-8"))
    for name in ("summary.json", "report.md", "report.html"):
        (hostile / name).unlink()
    assert main(["report", str(hostile)]) == 0
    after = json.loads((hostile / "summary.json").read_text(encoding="utf-8"))
    assert (hostile / "report.md").exists() and (hostile / "report.html").exists()
    assert after["suites"] == before["suites"]  # same seed, same figures
    assert "FAIL" in capsys.readouterr().out


def test_end_to_end_run_on_a_tiny_random_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([
        "run", "--model", "tiny-random-gpt2", "--suite", "bias-counterfactual", "--limit", "40",
        "--samples", "1", "--out", str(tmp_path), "--name", "e2e", "--no-progress",
    ])  # fmt: skip
    run = tmp_path / "e2e"
    s = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert code == (0 if s["gates"]["passed"] else 1)
    suite = s["suites"]["bias-counterfactual"]
    assert suite["groups"], "group comparisons expected"
    for g in suite["groups"]:  # a CI on every comparison with at least two counterfactual sets
        n_sets = int(re.search(r"within (\d+) counterfactual sets", g["gap"]["test"]).group(1))
        assert (g["gap"]["ci_high"] is not None) == (n_sets >= 2), g
    assert any(g["gap"]["ci_high"] is not None for g in suite["groups"])
    assert s["scorer_audit"]["toxicity"]
    assert "RANDOM-WEIGHTS" in (run / "report.html").read_text(encoding="utf-8")
    printed = capsys.readouterr().err
    assert "gap(sentiment, gender) <= 0.1" in printed and ("PASS" in printed or "FAIL" in printed)


def test_missing_self_audit_module_leaves_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from audit.summary.build import scorer_self_audit

    monkeypatch.setitem(sys.modules, "audit.scorers.self_audit", None)  # import now fails
    manifest = {"suites": {"t": {"scorers": ["toxicity"]}}, "scorers": {"toxicity": {"version": "v1"}}}
    got = scorer_self_audit(manifest)
    assert "self-audit unavailable" in got["toxicity"]["note"]
    assert got["toxicity"]["version"] == "v1"
    assert scorer_self_audit({"suites": {"s": {"scorers": ["sentiment"]}}}) == {}


def test_reports_print_the_level_used_and_the_real_methods_and_never_pass_an_inconclusive_gate(tmp_path: Path) -> None:
    """#24 item 7: after --until-decided the intervals are at 98.75%, and report.md/html say so on every
    line (not "95%", not "98%"); methods are named as computed (no blanket "bootstrap"); a gate left
    INCONCLUSIVE under on_inconclusive: warn is not counted as passed in the report's headline."""
    from audit.run.finalize import finalize_run

    gate = {"metric": "gap(sentiment, gender)", "op": "<=", "threshold": 0.1}
    metrics = [{"name": "mean_sentiment", "metric": "mean", "score": "sentiment", "by": ["group"], "params": {}}]
    run = write_run(tmp_path / "r", {"bias": suite_manifest(gates=[gate], metrics=metrics)},
                    counterfactual_records(gap=0.1, n_pairs=40))
    policy = tmp_path / "p.yaml"
    policy.write_text("suite_gates: keep\non_inconclusive: warn\nstats: {ci_level: 0.9875}\n")
    assert finalize_run(run, policy, echo=lambda s: None) == 0
    md = (run / "report.md").read_text()
    html = (run / "report.html").read_text()
    assert "estimate [98.75% CI]" in md and "98.75% CI by its own method" in md
    assert "98.75% CI" in html and "bootstrap" not in md.lower() and "bootstrap" not in html.lower()
    assert "cluster t" in md and "pairwise difference" in md
    assert "**Gates: INCONCLUSIVE** (0 pass, 0 fail, 1 inconclusive, 0 error of 1; INCONCLUSIVE is not a pass" in md
    assert "<b>Gates: INCONCLUSIVE</b> (0 pass, 0 fail, 1 inconclusive, 0 error of 1" in html
    for text in (md, html):
        assert "gates passed" not in text and "95%" not in text and "98%" not in text
