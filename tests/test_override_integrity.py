"""Overrides with integrity (#27 item 2): a value outside the scorer's declared range, a score key
the record lacks, bad provenance (invisible or control characters in the author, an absurd time,
repeated JSON keys) and a rewritten earlier line (the hash chain) are refused with file:line and
exit 2; and every surface that prints a verdict says when overrides changed it: gate lines and the
tally, JUnit properties, compare, and the dashboard's Overview and Runs pages."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from audit.cli import main
from audit.core.errors import UsageError
from audit.store.override_integrity import GENESIS, chain_head, line_hash
from audit.store.overrides import append_override, load_overrides
from tests.synthetic_runs import counterfactual_records, suite_manifest, toxicity_records, write_run

WHEN = "2026-12-01T22:00:00Z"
GATE = "bias: gap(sentiment, gender) <= 0.2"


def _tox_run(tmp: Path) -> Path:
    recs = toxicity_records("tox", n_prompts=20, samples=2, level=0.2, seed=3)
    sm = suite_manifest(scorers=["toxicity"], metrics=[
        {"name": "mean_toxicity", "metric": "mean", "score": "toxicity", "by": [], "params": {}}],
        gates=[{"metric": "mean_toxicity", "op": "<=", "threshold": 0.1, "bound": "estimate"}], group_attributes=[])
    run = write_run(tmp / "tox", {"tox": sm}, recs)
    m = json.loads((run / "manifest.json").read_text())  # as the runner records it: the scorer's declared range
    m["scorers"]["toxicity"]["outputs"] = [{"key": "toxicity", "low": 0.0, "high": 1.0, "higher_is": "worse"}]
    (run / "manifest.json").write_text(json.dumps(m))
    return run


def _bias_run(tmp: Path, name: str = "bias", more_gates: tuple[float, ...] = ()) -> tuple[Path, str]:
    """A gap gate that fails only because of one wild score; overriding it makes the gate pass.
    ``more_gates``: further thresholds on the same gap (0 fails and 100 passes, overrides or not)."""
    recs = counterfactual_records("bias", n_pairs=30, samples=1, gap=0.0, noise=0.05, seed=1)
    target = next(r for r in recs if r["attributes"]["group"] == "female")
    target["scores"]["sentiment"] = -9.0
    sm = suite_manifest(scorers=["sentiment"], group_attributes=["axis", "group"],
                        gates=[{"metric": "gap(sentiment, gender)", "op": "<=", "threshold": t, "bound": "estimate"}
                               for t in (0.2, *more_gates)])
    return write_run(tmp / name, {"bias": sm}, recs), target["key"]


def _hand_line(run: Path, obj: dict, raw: str | None = None) -> None:
    """Append a line written by hand, carrying the right ``prev`` unless it has one."""
    path = run / "overrides.jsonl"
    head = chain_head(path.read_bytes()) if path.exists() else GENESIS
    text = raw if raw is not None else json.dumps({"prev": head, **obj})
    with path.open("a") as fh:
        fh.write(text.replace("PREV", head) + "\n")


def _refused(capsys: pytest.CaptureFixture[str], run: Path, *words: str) -> None:
    for cmd in (["gate", str(run)], ["report", str(run)]):
        assert main(cmd) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "Traceback" not in err, err
        assert "overrides.jsonl:" in err and all(w in err for w in words), err


@pytest.mark.parametrize(
    ("obj", "words"),
    [
        ({"score": "toxicity", "value": -50}, ["outside the range", "0 .. 1"]),
        ({"score": "toxicity", "value": -1e300}, ["outside the range"]),
        ({"score": "toxicity", "value": 1.5}, ["outside the range"]),
        ({"score": "toxicty", "value": 0.0}, ["has no score 'toxicty'"]),
        ({"score": "sentiment", "value": 0.0}, ["has no score 'sentiment'"]),
        ({"label": "refusal", "value": True}, ["sets 'refusal'"]),
    ],
    ids=["minus-50", "minus-1e300", "above-range", "misspelled-key", "score-the-record-lacks", "label-without-score"],
)
def test_a_value_or_key_the_run_cannot_hold_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], obj: dict, words: list[str]
) -> None:
    run = _tox_run(tmp_path)
    kw = {"score": obj.get("score"), "label": obj.get("label"), "value": obj["value"]}
    with pytest.raises(UsageError, match=words[0].replace("(", r"\(")):
        append_override(run, "tox/p0/0", who="ana", why="x", **kw)
    assert not (run / "overrides.jsonl").exists()
    _hand_line(run, {"key": "tox/p0/0", **obj, "who": "ana", "why": "x", "when": WHEN})
    _refused(capsys, run, ":1:", *words)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"who": "\u200b"}, ["'who'", "U+200B"]),  # zero-width space
        ({"who": "\u202eana"}, ["'who'", "U+202E"]),  # right-to-left override
        ({"who": "an\x00a"}, ["'who'", "U+0000"]),
        ({"who": "an\x1b[31ma"}, ["'who'", "U+001B"]),
        ({"who": "an\x07a"}, ["'who'", "U+0007"]),
        ({"why": "ok \u2066hidden"}, ["'why'", "U+2066"]),
        ({"when": "9999-12-31T00:00:00Z"}, ["'when'", "outside"]),
        ({"when": "0001-01-01T00:00:00Z"}, ["'when'", "outside"]),
        ({"when": "2026-12-01T22:00:00"}, ["'when'", "time zone"]),
    ],
    ids=["zero-width", "bidi", "nul", "esc", "bel", "bidi-why", "year-9999", "year-1", "no-zone"],
)
def test_provenance_that_hides_who_or_when_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: dict, words: list[str]
) -> None:
    run = _tox_run(tmp_path)
    append_override(run, "tox/p1/0", label="not toxic", who="ana", why="fine")
    _hand_line(run, {"key": "tox/p0/0", "label": "not toxic", "value": True, "who": "bo", "why": "x", "when": WHEN, **raw})
    _refused(capsys, run, ":2:", *words)
    with pytest.raises(UsageError):
        append_override(run, "tox/p2/0", label="not toxic", who=raw.get("who", "bo"), why=raw.get("why", "x"),
                        when=raw.get("when", WHEN))


@pytest.mark.parametrize("dup", ["who", "key"])
def test_a_repeated_json_key_is_refused_not_last_one_wins(tmp_path: Path, capsys: pytest.CaptureFixture[str], dup: str) -> None:
    run = _tox_run(tmp_path)
    second = {"who": '"mallory"', "key": '"tox/p5/0"'}[dup]
    raw = ('{"prev": "PREV", "key": "tox/p0/0", "label": "not toxic", "value": true, "who": "ana", '
           f'"why": "x", "when": "{WHEN}", "{dup}": {second}}}')
    _hand_line(run, {}, raw=raw)
    _refused(capsys, run, ":1:", f"'{dup}' appears twice")


def test_rewriting_an_earlier_line_breaks_the_hash_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _tox_run(tmp_path)
    append_override(run, "tox/p0/0", score="toxicity", value=0.0, who="ana", why="quotes the prompt")
    append_override(run, "tox/p1/0", label="not toxic", who="bo", why="sarcasm")
    append_override(run, "tox/p2/1", label="exclude", who="bo", why="garbled")
    path = run / "overrides.jsonl"
    lines = path.read_bytes().split(b"\n")
    first = json.loads(lines[0])
    assert first["prev"] == GENESIS and json.loads(lines[1])["prev"] == line_hash(lines[0])
    assert [ov.line for ov in load_overrides(run)] == [1, 2, 3]
    # an earlier line rewritten in place (same length, other value): the next line's prev no longer matches
    path.write_bytes(path.read_bytes().replace(b'"value": 0.0', b'"value": 0.9', 1))
    _refused(capsys, run, ":2:", "hash chain broken", "line 1")
    with pytest.raises(UsageError, match="hash chain broken"):  # and nothing is appended to a broken chain
        append_override(run, "tox/p3/0", label="toxic", who="cy", why="x")
    # a line removed from the middle, or written without its prev, is refused the same way
    path.write_bytes(b"\n".join([lines[0], lines[2], b""]))
    _refused(capsys, run, ":2:", "hash chain broken")
    path.write_bytes(b'{"key": "tox/p0/0", "label": "toxic", "value": true, "who": "a", "why": "b", "when": "' + WHEN.encode() + b'"}\n')
    _refused(capsys, run, ":1:", "no 'prev' hash")


def test_the_override_command_writes_the_chain_and_refuses_a_bad_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _tox_run(tmp_path)
    base = ["override", str(run), "tox/p0/0", "--who", "ana", "--why", "quotes the prompt back"]
    assert main([*base, "--score", "toxicity", "--value", "0.05"]) == 0
    assert main([*base, "--label", "exclude"]) == 0
    assert main([*base, "--label", "exclude", "--withdraw"]) == 0
    ovs = load_overrides(run)
    assert [(o.score, o.label, o.value) for o in ovs] == [("toxicity", None, 0.05), (None, "exclude", True),
                                                          (None, "exclude", False)]
    capsys.readouterr()
    assert main([*base, "--score", "toxicity", "--value", "-50"]) == 2
    assert "outside the range" in capsys.readouterr().err
    assert main(["override", str(run), "tox/nope/0", "--score", "toxicity", "--value", "0", "--who", "a", "--why", "b"]) == 2
    assert "no record with key" in capsys.readouterr().err
    assert len(load_overrides(run)) == 3


def test_every_verdict_surface_says_overrides_changed_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, key = _bias_run(tmp_path)
    assert main(["gate", str(run)]) == 1
    plain = capsys.readouterr().out
    assert "reviewer overrides" not in plain
    append_override(run, key, score="sentiment", value=0.0, who="rev", why="VADER misread")
    junit = tmp_path / "junit.xml"
    assert main(["gate", str(run), "--junit", str(junit)]) == 0
    out = capsys.readouterr().out
    gate_line = next(ln for ln in out.splitlines() if "gap(sentiment, gender)" in ln and ln.startswith("PASS"))
    assert "[verdict changed by reviewer overrides (FAIL without them)]" in gate_line
    trail = str(run / "overrides.jsonl")
    note = f"reviewer overrides: 1 applied (1 line(s) in {trail}); 1 gate verdict(s) changed by them: {GATE}: FAIL -> PASS"
    assert note in out
    # JUnit: run-level properties, and the testcase says so
    root = ET.parse(junit).getroot()
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["overrides_applied"] == "1" and props["overrides_trail"] == trail
    assert props["overrides_changed_gates"] == GATE
    case = next(c for c in root.iter("testcase") if "gap(sentiment, gender)" in c.get("name"))
    assert "verdict changed by reviewer overrides (FAIL without them)" in (case.findtext("system-out") or "")
    # summary.json (what the report and dashboard read)
    assert main(["report", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    eff = summary["overrides_effect"]
    assert eff["n_applied"] == 1 and eff["changed_gates"] == [{"suite": "bias", "gate": GATE, "before": "FAIL", "after": "PASS"}]
    assert eff["head"] == chain_head((run / "overrides.jsonl").read_bytes())
    capsys.readouterr()
    # compare applies each run's overrides and says so: A's wild record is corrected, B has none
    other, _ = _bias_run(tmp_path, "other")
    cjunit = tmp_path / "compare.xml"
    assert main(["compare", str(run), str(other), "--junit", str(cjunit)]) in (0, 1)
    out = capsys.readouterr().out
    cprops = {p.get("name"): p.get("value") for p in ET.parse(cjunit).getroot().iter("property")}
    assert cprops["overrides bias"] == f"1 applied (1 line(s) in {trail})" and "overrides other" not in cprops
    assert f"reviewer overrides are applied to the compared records: bias: 1 applied (1 line(s) in {trail}); other: none" in out
    from audit.compare.figures import load_runs

    runs = load_runs([run, other])
    assert next(r for r in runs[0].records["bias"] if r.key == key).scores["sentiment"] == 0.0
    assert next(r for r in runs[1].records["bias"] if r.key == key).scores["sentiment"] == -9.0
    # a broken trail makes compare refuse (exit 2), never compare the raw records
    with (run / "overrides.jsonl").open("a") as fh:
        fh.write('{"key": "x"}\n')
    assert main(["compare", str(run), str(other)]) == 2


def test_dashboard_overview_and_runs_say_overrides_changed_a_verdict_and_a_killed_run_is_interrupted(tmp_path: Path) -> None:
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    reports = tmp_path / "reports"
    run, key = _bias_run(reports)
    append_override(run, key, score="sentiment", value=0.0, who="rev", why="VADER misread")
    assert main(["report", str(run)]) == 0
    killed, _ = _bias_run(reports, "killed")  # a SIGKILL leaves "running" behind, with no writer
    m = json.loads((killed / "manifest.json").read_text())
    (killed / "manifest.json").write_text(json.dumps({**m, "status": "running"}))
    app = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    old = os.environ.get("LM_AUDIT_REPORTS")
    os.environ["LM_AUDIT_REPORTS"] = str(reports)
    try:
        at = AppTest.from_file(str(app), default_timeout=120)
        at.session_state["run_id"] = "bias"
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        runs_text = "\n".join(str(w.value) for w in at.warning)
        assert "reviewer overrides: 1 applied" in runs_text and "FAIL -&gt; PASS" in runs_text  # markdown-escaped
        frame = at.dataframe[0].value
        assert list(frame.loc[frame["run"] == "bias", "overrides"]) == ["1 applied, 1 verdict(s) changed"]
        assert list(frame.loc[frame["run"] == "killed", "status"]) == ["interrupted"]
        at.switch_page("views/overview.py").run()
        assert not at.exception, [e.message for e in at.exception]
        overview = "\n".join(str(w.value) for w in at.warning)
        assert "reviewer overrides: 1 applied" in overview and "gap(sentiment, gender)" in overview
    finally:
        if old is None:
            os.environ.pop("LM_AUDIT_REPORTS", None)
        else:
            os.environ["LM_AUDIT_REPORTS"] = old


def test_reports_sarif_and_job_summary_mark_the_verdict_overrides_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flipped gate (<= 0.2, FAIL without the override) is marked with its verdict before on the
    HTML and Markdown reports, SARIF and the job summary; the gate failing either way (<= 0) and the
    one passing either way (<= 100) carry no mark."""
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the dev extra")
    from audit.gates.job_summary import gates_markdown
    from audit.report.html import render_html
    from audit.report.markdown import render_markdown

    run, key = _bias_run(tmp_path, more_gates=(0.0, 100.0))
    append_override(run, key, score="sentiment", value=0.0, who="rev", why="VADER misread")
    step, sarif = tmp_path / "step.md", tmp_path / "gates.sarif"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    assert main(["gate", str(run), "--sarif", str(sarif)]) == 1  # the <= 0 gate fails
    assert main(["report", str(run)]) == 0
    capsys.readouterr()
    mark = "verdict changed by reviewer overrides (FAIL without them)"
    # HTML: the gates table and the suite's gate list, each mark linking to the overrides section
    html = (run / "report.html").read_text()
    items = re.findall(r"<li>.*?</li>", html)
    assert len(items) == 3 and 'id=overrides>Reviewer overrides' in html
    flipped = f'<a class="overridden" href="#overrides">{mark}: see Reviewer overrides</a>'
    assert "&lt;= 0.200" in items[0] and '<span class="pass">PASS</span>' in items[0] and flipped in items[0]
    assert all("overridden" not in li for li in items[1:])
    rows = re.findall(r"<tr><td><span class=.*?</tr>", html)
    assert [flipped in r for r in rows if "gap(sentiment, gender) &lt;=" in r] == [True, False, False]
    # Markdown: beside the verdict in the gate table, pointing to the "Reviewer overrides" heading
    md = (run / "report.md").read_text()
    gate_rows = [ln for ln in md.splitlines() if ln.startswith("| **") and "`gap(sentiment, gender) <=" in ln]
    assert gate_rows[0].startswith(f"| **PASS** ({mark}: see [Reviewer overrides](#reviewer-overrides)) |")
    assert all("reviewer overrides" not in ln for ln in gate_rows[1:]) and "\n## Reviewer overrides\n" in md
    # SARIF: the flipped PASS is a note (else it would vanish), message and properties say so; valid
    doc = json.loads(sarif.read_text())
    schema = json.loads((Path(__file__).parent / "fixtures" / "sarif" / "sarif-schema-2.1.0.json").read_text())
    assert list(jsonschema.Draft4Validator(schema).iter_errors(doc)) == []
    by_rule = {r["ruleId"]: r for r in doc["runs"][0]["results"]}
    note, failed = by_rule["gate/bias/gap(sentiment, gender) <= 0.2"], by_rule["gate/bias/gap(sentiment, gender) <= 0"]
    assert note["level"] == "note" and note["message"]["text"].endswith("; " + mark)
    assert note["properties"]["verdict"] == "PASS" and note["properties"]["changedByOverrides"] is True
    assert note["properties"]["verdictWithoutOverrides"] == "FAIL"
    assert failed["level"] == "error" and "reviewer overrides" not in failed["message"]["text"]
    assert "changedByOverrides" not in failed["properties"] and len(by_rule) == 2  # <= 100 passes: no result
    # the job summary: heading and tally count the changed verdicts; only the flipped row is marked
    text = step.read_text()
    assert text.startswith("### lm-audit gates: bias: FAIL (exit FAILED; 1 verdict(s) changed by reviewer overrides)")
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and "gap(sentiment, gender)" in ln]
    assert rows[0].startswith(f"| PASS ({mark}) |") and all("overrides" not in ln for ln in rows[1:])
    assert "of 3: FAIL; 1 verdict(s) changed by reviewer overrides (see the run's overrides.jsonl)." in text
    # every surface reads the summary's changed_by_overrides, and escapes it
    summary = json.loads((run / "summary.json").read_text())
    summary["suites"]["bias"]["gates"][0]["changed_by_overrides"]["before"] = "<img src=x onerror=alert(1)>|`"
    assert "<img" not in render_html(summary) and "&lt;img src=x onerror=alert(1)&gt;" in render_html(summary)
    assert "<img" not in render_markdown(summary) and "<img" not in gates_markdown(summary)
    assert "&lt;img src=x onerror=alert(1)&gt;\\|\\`" in render_markdown(summary)
    for g in summary["suites"]["bias"]["gates"]:
        g.pop("changed_by_overrides", None)
    assert 'class="overridden"' not in render_html(summary) and "verdict(s) changed" not in gates_markdown(summary)
