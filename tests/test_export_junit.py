"""``--junit FILE`` on ``gate``, ``compare`` and ``run``: parsed with junitparser, the counts and
each testcase's result match the gate (or comparison) results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from export_fixtures import audit_run, summary_of

from audit.cli import main

junitparser = pytest.importorskip("junitparser", reason="junitparser is in the dev extra")


def _policy(tmp_path: Path, run: Path, on_inconclusive: str) -> Path:
    """Suite gates kept (one FAIL, one PASS) plus an INCONCLUSIVE one (threshold at the estimate)
    and an ERROR one (a figure no suite has)."""
    est = summary_of(run)["suites"]["tox"]["metrics"][0]["estimate"]
    p = tmp_path / f"policy-{on_inconclusive}.yaml"
    p.write_text(
        f"suite_gates: keep\non_inconclusive: {on_inconclusive}\ngates:\n"
        f"  - {{metric: expected_max_toxicity, op: '<=', threshold: {est}, suite: tox}}\n"
        "  - {metric: no_such_figure, op: '>=', threshold: 0.5}\n"
    )
    return p


def _cases(path: Path) -> dict[str, tuple[str, str]]:
    """testcase name -> (outcome, message)"""
    out = {}
    for suite in junitparser.JUnitXml.fromfile(str(path)):
        for case in suite:
            res = case.result
            kind = type(res[0]).__name__.lower() if res else "pass"
            out[f"{suite.name}/{case.name}"] = (kind, res[0].message if res else case.system_out)
    return out


@pytest.mark.parametrize("on_inconclusive", ["fail", "warn"])
def test_gate_junit_counts_match_gate_results(tmp_path: Path, on_inconclusive: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    run = audit_run(tmp_path)
    policy = _policy(tmp_path, run, on_inconclusive)
    xml = tmp_path / "junit.xml"
    code = main(["gate", str(run), "--policy", str(policy), "--junit", str(xml)])
    assert code == 1  # the FAIL and the ERROR fail the exit code either way
    assert f"junit: {xml}" in capsys.readouterr().out
    from audit.summary.build import build_summary
    from audit.summary.read import all_gate_results

    summary = build_summary(run, policy, self_audit=False)
    g = summary["gates"]
    assert (g["n_pass"], g["n_fail"], g["n_inconclusive"], g["n_error"]) == (1, 1, 1, 1)
    doc = junitparser.JUnitXml.fromfile(str(xml))
    inc_fails = on_inconclusive == "fail"
    assert doc.tests == g["n_total"] == 4
    assert doc.failures == g["n_fail"] + (g["n_inconclusive"] if inc_fails else 0)
    assert doc.errors == g["n_error"]
    assert doc.skipped == (0 if inc_fails else g["n_inconclusive"])
    cases = _cases(xml)
    for r in all_gate_results(summary):
        name = f"lm-audit.{r['suite'] or 'policy'}/{r['metric']} {r['op']} {r['threshold']:.10g}"
        kind, msg = cases[name]
        want = {"PASS": "pass", "FAIL": "failure", "ERROR": "error",
                "INCONCLUSIVE": "failure" if inc_fails else "skipped"}[r["verdict"]]
        assert kind == want, name
        assert msg.startswith(r["verdict"])
        if r["verdict"] != "ERROR":
            assert f"[{r['ci_low']:.4g}, {r['ci_high']:.4g}] (95% CI" in msg
            assert f"judged on {r['bound']}" in msg and f"protocol: {r['protocol']}" in msg
        else:
            assert "could not be assessed" in msg


def test_damaged_run_is_an_error_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = audit_run(tmp_path)
    with (run / "records.jsonl").open("a") as fh:
        fh.write('{"torn line\n')
    xml = tmp_path / "junit.xml"
    assert main(["gate", str(run), "--junit", str(xml)]) == 1
    cases = _cases(xml)
    kind, msg = cases["lm-audit.run/run integrity"]
    assert kind == "error" and "damaged" in msg


def test_compare_junit_one_case_per_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = audit_run(tmp_path, "base", level=0.2)
    b = audit_run(tmp_path, "worse", level=0.5, seed=0)  # same prompts, more toxic completions
    xml = tmp_path / "compare.xml"
    code = main(["compare", str(a), str(b), "--max-regression", "expected_max_toxicity=0.01",
                 "--out", str(tmp_path / "cmp"), "--junit", str(xml)])
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    figures = [(sid, r) for sid, s in result["suites"].items() for r in s["figures"]]
    doc = junitparser.JUnitXml.fromfile(str(xml))
    assert doc.tests == len(figures) == result["n_figures"]
    assert doc.failures == result["n_regressed"] >= 1
    assert code == 1
    kind, msg = _cases(xml)["lm-audit.compare.tox/expected_max_toxicity"]
    assert kind == "failure" and msg.startswith("REGRESSED") and "max regression 0.01" in msg


def test_compare_junit_damaged_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = audit_run(tmp_path, "base")
    b = audit_run(tmp_path, "other")
    (b / "records.jsonl").write_text("")
    xml = tmp_path / "compare.xml"
    assert main(["compare", str(a), str(b), "--junit", str(xml)]) == 1
    doc = junitparser.JUnitXml.fromfile(str(xml))
    assert (doc.tests, doc.errors) == (1, 1)


def test_run_junit_and_export_hints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real (tiny random-weights) run: --junit writes the gates, and the end of the output says
    how to get the Inspect log and the model-card section."""
    xml = tmp_path / "run.xml"
    code = main(["run", "--model", "tiny-random-gpt2", "--suite", "misuse-refusal", "--limit", "4",
                 "--out", str(tmp_path), "--name", "tiny", "--no-progress", "--no-cache", "--junit", str(xml)])
    out = capsys.readouterr().out
    assert code in (0, 1)
    summary = summary_of(tmp_path / "tiny")
    doc = junitparser.JUnitXml.fromfile(str(xml))
    assert doc.tests == summary["gates"]["n_total"] > 0
    assert f"junit: {xml}" in out
    assert f"lm-audit export {tmp_path / 'tiny'} --format inspect" in out
    assert "--format model-card" in out


def test_messages_print_the_level_the_figures_used() -> None:
    """After --until-decided the intervals are at 98.75%: JUnit and the model card say so (not '99%')."""
    from audit.export.common import figure_text

    fig = {"estimate": 0.2, "ci_low": 0.1, "ci_high": 0.3, "n": 40}
    assert "(98.75% CI, n=40)" in figure_text(fig, 0.9875) and "(95% CI, n=40)" in figure_text(fig, 0.95)
