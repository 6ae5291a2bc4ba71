"""CI-native outputs: ``lm-audit gate --sarif`` checked against the SARIF 2.1.0 JSON schema (vendored
in tests/fixtures/sarif/) with ``jsonschema``, the ``$GITHUB_STEP_SUMMARY`` job summary, the
composite action's scripts (action.yml) run as GitHub would run them, and the pre-commit hook
(.pre-commit-hooks.yaml) run by the real ``pre-commit try-repo``, offline."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from export_fixtures import audit_run, summary_of

from audit.cli import main
from audit.summary.read import all_gate_results

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the dev extra")

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "tests" / "fixtures" / "sarif" / "sarif-schema-2.1.0.json").read_text())
BIN = str(Path(sys.executable).parent)
BIAS_SUITE = """id: bias
title: Synthetic bias suite
gates:
  - {metric: mean_sentiment, op: '>=', threshold: -1}
  - {metric: "gap(sentiment, gender)", op: "<=", threshold: 0.1}
"""


def sarif_errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft4Validator(SCHEMA)  # the schema's own $schema: draft-04
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def _run_with_suite_file(tmp_path: Path) -> Path:
    """A finished synthetic run whose bias suite lives in ``tmp_path/suites/bias.yaml`` (the run's
    gate on the gap, 0.26 [0.20, 0.33], FAILs; the file declares it second, on line 5), toxicity
    0.32 [0.29, 0.34] gated at <= 0.9 (PASS)."""
    run = audit_run(tmp_path)
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "bias.yaml").write_text(BIAS_SUITE)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["suites"]["bias"]["path"] = str(tmp_path / "suites" / "bias.yaml")
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def _policy(tmp_path: Path, run: Path, on_inconclusive: str) -> Path:
    """Suite gates kept, plus an INCONCLUSIVE gate (threshold at the estimate) and an ERROR one."""
    est = summary_of(run)["suites"]["tox"]["metrics"][0]["estimate"]
    p = tmp_path / f"policy-{on_inconclusive}.yaml"
    p.write_text(
        f"suite_gates: keep\non_inconclusive: {on_inconclusive}\ngates:\n"
        f"  - {{metric: expected_max_toxicity, op: '<=', threshold: {est}, suite: tox}}\n"
        "  - {metric: no_such_figure, op: '>=', threshold: 0.5}\n"
    )
    return p


@pytest.fixture(autouse=True)
def _no_job_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


# --------------------------------------------------------------------------- SARIF


@pytest.mark.parametrize("on_inconclusive", ["fail", "warn"])
def test_gate_sarif_is_valid_with_one_result_per_failed_or_inconclusive_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], on_inconclusive: str
) -> None:
    run = _run_with_suite_file(tmp_path)
    policy = _policy(tmp_path, run, on_inconclusive)
    monkeypatch.chdir(tmp_path)  # the checkout: locations are relative to it
    out = tmp_path / "ci" / "gates.sarif"
    assert main(["gate", str(run), "--policy", str(policy), "--sarif", str(out)]) == 1
    assert f"sarif: {out}" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert sarif_errors(doc) == []
    assert doc["version"] == "2.1.0" and doc["runs"][0]["tool"]["driver"]["name"] == "lm-audit"

    from audit.summary.build import build_summary

    gates = all_gate_results(build_summary(run, policy, self_audit=False))
    assert sorted(g["verdict"] for g in gates) == ["ERROR", "FAIL", "INCONCLUSIVE", "PASS"]
    results = doc["runs"][0]["results"]
    assert len(results) == 3  # FAIL, INCONCLUSIVE, ERROR; PASS gates are no finding
    by_verdict = {r["properties"]["verdict"]: r for r in results}
    want_inconclusive = "error" if on_inconclusive == "fail" else "warning"
    assert {v: r["level"] for v, r in by_verdict.items()} == {
        "FAIL": "error", "INCONCLUSIVE": want_inconclusive, "ERROR": "error"
    }
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        assert r["message"]["text"].startswith(r["properties"]["verdict"])

    # the failing suite gate: the suite file, at the line that declares the gate
    fail = by_verdict["FAIL"]
    assert fail["ruleId"] == "gate/bias/gap(sentiment, gender) <= 0.1"
    loc = fail["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "suites/bias.yaml"
    assert loc["region"]["startLine"] == 5
    assert fail["properties"]["ci_high"] == pytest.approx(fail["properties"]["value"])
    assert "protocol" in fail["properties"]
    # a policy gate on a suite: the suite file (the tox suite has no file here, so the synthetic
    # path), with the policy's line as a related location
    inc = by_verdict["INCONCLUSIVE"]
    assert inc["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "synthetic.yaml"
    related = inc["relatedLocations"][0]["physicalLocation"]
    assert related["artifactLocation"]["uri"] == policy.name and related["region"]["startLine"] == 4
    # a policy gate that matched no suite lives in the policy file
    err = by_verdict["ERROR"]
    assert err["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": policy.name}, "region": {"startLine": 5}
    }


def test_a_passing_run_gives_an_empty_valid_sarif_and_a_damaged_one_an_integrity_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = audit_run(tmp_path, gap=0.0)
    loose = tmp_path / "loose.yaml"
    loose.write_text("gates:\n  - {metric: expected_max_toxicity, op: '<=', threshold: 0.99}\n")
    out = tmp_path / "pass.sarif"
    assert main(["gate", str(run), "--policy", str(loose), "--sarif", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert sarif_errors(doc) == [] and doc["runs"][0]["results"] == []

    with (run / "records.jsonl").open("a") as fh:
        fh.write('{"torn line\n')
    assert main(["gate", str(run), "--policy", str(loose), "--sarif", str(out)]) == 1
    doc = json.loads(out.read_text())
    assert sarif_errors(doc) == []
    (result,) = doc["runs"][0]["results"]
    assert result["ruleId"] == "run-integrity" and result["level"] == "error"
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("records.jsonl")


def test_the_schema_check_is_not_vacuous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the validator must catch: a made-up level, a result without a message, a bad version."""
    run = _run_with_suite_file(tmp_path)
    out = tmp_path / "g.sarif"
    main(["gate", str(run), "--sarif", str(out)])
    doc = json.loads(out.read_text())
    assert sarif_errors(doc) == []
    broken = json.loads(out.read_text())
    broken["runs"][0]["results"][0]["level"] = "fatal"
    assert any("level" in e for e in sarif_errors(broken))
    broken = json.loads(out.read_text())
    del broken["runs"][0]["results"][0]["message"]
    assert sarif_errors(broken)
    assert sarif_errors({**doc, "version": "2.0.0"})


def test_sarif_to_an_unwritable_place_is_one_line_exit_2(tmp_path: Path) -> None:
    run = audit_run(tmp_path)
    (tmp_path / "file").write_text("")
    r = subprocess.run([sys.executable, "-m", "audit", "gate", str(run), "--sarif", str(tmp_path / "file" / "x.sarif")],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--sarif: cannot write" in r.stderr


# --------------------------------------------------------------------------- job summary


def test_github_step_summary_gets_the_gates_appended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run_with_suite_file(tmp_path)
    policy = _policy(tmp_path, run, "fail")
    target = tmp_path / "step_summary.md"
    target.write_text("## an earlier step\n\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    assert main(["gate", str(run), "--policy", str(policy)]) == 1
    assert f"job summary: {target}" in capsys.readouterr().out
    text = target.read_text()
    assert text.startswith("## an earlier step\n\n")  # appended, never overwritten
    assert "### lm-audit gates: run-a: FAIL (exit FAILED)" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and not ln.startswith("| verdict")]
    from audit.summary.build import build_summary

    gates = all_gate_results(build_summary(run, policy, self_audit=False))
    assert len(rows) == len(gates) == 4
    assert sorted(ln.split(" | ")[0].strip("| *") for ln in rows) == sorted(g["verdict"] for g in gates)
    fail = next(ln for ln in rows if ln.startswith("| **FAIL**"))
    assert "gap(sentiment, gender) &lt;= 0.1" in fail and "ci\\_high = " in fail
    assert "1 pass, 1 fail, 1 inconclusive, 1 error of 4: FAIL; INCONCLUSIVE is not a pass" in text
    assert "gates passed" not in text  # never a passed total that counts INCONCLUSIVE


def test_job_summary_cells_escape_suite_text_and_a_bad_target_is_exit_2(tmp_path: Path) -> None:
    from audit.gates.job_summary import cell, gates_markdown

    hostile = "<img src=x onerror=alert(1)>|`x`\n[link](javascript:alert(1))"
    shown = cell(hostile)
    assert "<img" not in shown and "\n" not in shown
    assert "\\|" in shown and "\\`" in shown and "\\[link\\]" in shown
    summary = {"run_id": hostile, "gates": {"passed": True, "n_total": 1, "n_failed": 0},
               "suites": {"s": {"gates": [{"suite": hostile, "metric": hostile, "op": "<=", "threshold": 1,
                                           "verdict": "PASS", "passed": True, "estimate": 0.5, "ci_low": 0.4,
                                           "ci_high": 0.6, "bound": "ci_high", "value": 0.6}]}}}
    md = gates_markdown(summary)
    table_rows = [ln for ln in md.splitlines() if ln.startswith("| PASS")]
    assert len(table_rows) == 1 and table_rows[0].count(" | ") == 5  # six cells, none split by a pipe
    assert "<img" not in md

    run = audit_run(tmp_path)
    r = subprocess.run([sys.executable, "-m", "audit", "gate", str(run)], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1", "GITHUB_STEP_SUMMARY": str(tmp_path)})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "GITHUB_STEP_SUMMARY" in r.stderr


# --------------------------------------------------------------------------- the composite action

ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
STEPS = {s.get("id", s.get("name")): s for s in ACTION["runs"]["steps"]}
EXPR = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def test_action_is_a_composite_whose_scripts_take_inputs_only_through_env() -> None:
    assert ACTION["runs"]["using"] == "composite"
    inputs = ACTION["inputs"]
    text = (ROOT / "action.yml").read_text()
    for ref in re.findall(r"inputs\.([A-Za-z0-9_-]+)", text):
        assert ref in inputs, ref
    for ref in re.findall(r"steps\.([A-Za-z0-9_-]+)\.outputs", text):
        assert ref in STEPS, ref
    for step in ACTION["runs"]["steps"]:
        if "run" in step:
            assert step["shell"] == "bash"
            assert "${{" not in step["run"], f"{step['name']}: expressions in a script invite injection"
        else:
            assert re.fullmatch(r"actions/(setup-python|upload-artifact)@v\d+", step["uses"])
    for name in ("install", "run", "gate"):
        assert name in STEPS
    assert {"run-dir", "gate-exit-code", "sarif", "junit"} <= set(ACTION["outputs"])


def _step(step: dict[str, Any], values: dict[str, str], cwd: Path, github: dict[str, str]) -> subprocess.CompletedProcess:
    """Run one step's script as a GitHub runner does (bash --noprofile --norc -eo pipefail)."""

    def expand(value: str) -> str:
        def one(m: re.Match[str]) -> str:
            expr = m.group(1)
            if expr.startswith("inputs."):
                return values.get(expr[7:], ACTION["inputs"][expr[7:]].get("default", ""))
            if expr == "github.action_path":
                return str(ROOT)
            m2 = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expr)
            assert m2, expr
            return github.get(f"{m2.group(1)}.{m2.group(2)}", "")

        return EXPR.sub(one, str(value))

    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", ""), "HF_HUB_OFFLINE": "1",
           "GITHUB_OUTPUT": github["output_file"], "GITHUB_STEP_SUMMARY": github["summary_file"]}
    env.update({k: expand(v) for k, v in (step.get("env") or {}).items()})
    script = cwd / "step.sh"
    script.write_text(step["run"])
    Path(github["output_file"]).write_text("")
    r = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=300)
    for line in Path(github["output_file"]).read_text().splitlines():
        key, _, val = line.partition("=")
        github[f"{step['id']}.{key}"] = val
    return r


def test_action_scripts_run_the_audit_gate_it_and_fail_the_job(tmp_path: Path) -> None:
    """The run, gate and fail steps of action.yml, on a tiny random-weights model: the run folder,
    SARIF (valid), JUnit and the job summary appear, and a failed gate fails the last step."""
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "pronouns.yaml").write_text(
        "id: pronouns\ntitle: Pronouns\ndescription: tiny\nversion: 0.1\ncitation: none\nlicence: CC0-1.0\n"
        "prompts:\n  templates:\n    - {id: t, text: '{group} said that', attributes: {}}\n"
        "  lexicons:\n    - attribute: pronoun\n      groups: {she: [she], he: [he]}\n"
        "generation: {samples: 2, max_new_tokens: 4, top_p: 0.9}\ngroup_attributes: [pronoun]\n"
        "scorers: [sentiment]\nmetrics:\n  - {name: mean_sentiment, metric: mean, score: sentiment}\n"
        "gates:\n  - {metric: mean_sentiment, op: '>=', threshold: 0.95}\n"
    )
    github = {"output_file": str(tmp_path / "gh_output"), "summary_file": str(tmp_path / "gh_summary.md")}
    values = {"suites": "suites/pronouns.yaml", "model": "tiny-random-gpt2", "name": "ci-run"}
    r = _step(STEPS["run"], values, tmp_path, github)
    assert r.returncode == 0, r.stderr[-2000:]
    run_dir = tmp_path / "lm-audit-reports" / "ci-run"
    assert github["run.run-dir"] == "lm-audit-reports/ci-run" and (run_dir / "report.html").is_file()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert list(manifest["suites"]) == ["pronouns"] and manifest["model"]["name"] == "tiny-random-gpt2"

    r = _step(STEPS["gate"], values, tmp_path, github)
    assert r.returncode == 0, r.stderr[-2000:]  # the step records the verdict; the last step acts on it
    assert github["gate.exit-code"] == "1"  # mean sentiment of random text is nowhere near 0.95
    doc = json.loads((tmp_path / "lm-audit.sarif").read_text())
    assert sarif_errors(doc) == [] and len(doc["runs"][0]["results"]) == 1
    assert doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "suites/pronouns.yaml"
    )
    assert (tmp_path / "lm-audit-junit.xml").is_file()
    assert "### lm-audit gates: ci-run: FAIL" in Path(github["summary_file"]).read_text()

    r = _step(STEPS["Fail on a failed gate"], values, tmp_path, github)
    assert r.returncode == 1 and "::error title=lm-audit::gates failed" in r.stdout
    github["gate.exit-code"] = "0"
    assert _step(STEPS["Fail on a failed gate"], values, tmp_path, github).returncode == 0

    r = _step(STEPS["run"], {**values, "suites": "no-such-suite"}, tmp_path, github)
    assert r.returncode == 2 and "no-such-suite" in r.stderr  # a usage error stops the job


# --------------------------------------------------------------------------- the pre-commit hook

GOOD_SUITE = """id: tiny
title: Tiny
description: a tiny suite
version: 0.1
citation: none
licence: CC0-1.0
prompts:
  templates:
    - {id: t, text: "{group} said that", attributes: {}}
  lexicons:
    - attribute: pronoun
      groups: {she: [she], he: [he]}
generation: {samples: 1, max_new_tokens: 5, top_p: 0.9}
group_attributes: [pronoun]
scorers: [sentiment]
metrics:
  - {name: mean_sentiment, metric: mean, score: sentiment, by: [pronoun]}
"""


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=cwd,
                   check=True, capture_output=True, timeout=60)


def test_pre_commit_hook_validates_changed_suite_files(tmp_path: Path) -> None:
    pytest.importorskip("pre_commit", reason="pre-commit is in the dev extra")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    hooks = tmp_path / "hooks"  # a repository holding this project's hook manifest, unchanged
    hooks.mkdir()
    shutil.copy(ROOT / ".pre-commit-hooks.yaml", hooks / ".pre-commit-hooks.yaml")
    _git("init", "-q", cwd=hooks)
    _git("add", ".pre-commit-hooks.yaml", cwd=hooks)
    _git("commit", "-qm", "hooks", cwd=hooks)
    project = tmp_path / "project"
    (project / "suites").mkdir(parents=True)
    (project / "suites" / "good.yaml").write_text(GOOD_SUITE)
    (project / "suites" / "broken.yaml").write_text(GOOD_SUITE.replace("metric: mean,", "metric: meen,"))
    (project / "config.yaml").write_text("not: a suite\n")  # outside suites/: not the hook's business
    _git("init", "-q", cwd=project)
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", ""), "HF_HUB_OFFLINE": "1",
           "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "PIP_NO_INDEX": "1"}

    def try_repo(*files: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(hooks), "lm-audit-validate",
                               "--files", *files], cwd=project, env=env, capture_output=True, text=True, timeout=300)

    good = try_repo("suites/good.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert re.search(r"lm-audit validate \(suite files\)\.+Passed", good.stdout)
    bad = try_repo("suites/good.yaml", "suites/broken.yaml")
    assert bad.returncode == 1
    assert re.search(r"lm-audit validate \(suite files\)\.+Failed", bad.stdout)
    assert "exit code: 2" in bad.stdout
    assert "error: suites/broken.yaml:17: metrics.0.metric: unknown metric 'meen'" in bad.stdout
    assert "OK suites/good.yaml" in bad.stdout
    other = try_repo("config.yaml")
    assert other.returncode == 0 and "(no files to check)Skipped" in other.stdout


def test_the_job_summary_never_shows_an_inconclusive_run_as_passed() -> None:
    """on_inconclusive: warn lets the exit code pass; the summary still says INCONCLUSIVE."""
    from audit.gates.job_summary import gates_markdown

    gate = {"suite": "s", "metric": "m", "op": "<=", "threshold": 1, "estimate": 0.5, "ci_low": 0.4,
            "bound": "ci_high"}
    summary = {"run_id": "r", "gates": {"passed": True, "n_total": 2, "n_failed": 0, "on_inconclusive": "warn"},
               "suites": {"s": {"gates": [
                   {**gate, "verdict": "PASS", "passed": True, "ci_high": 0.6, "value": 0.6},
                   {**gate, "verdict": "INCONCLUSIVE", "passed": True, "ci_high": 1.6, "value": 1.6}]}}}
    md = gates_markdown(summary)
    assert "### lm-audit gates: r: INCONCLUSIVE (exit passed)" in md
    assert "1 pass, 0 fail, 1 inconclusive, 0 error of 2: INCONCLUSIVE; INCONCLUSIVE is not a pass" in md
    assert "PASSED" not in md and "gates passed" not in md
