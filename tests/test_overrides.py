"""Reviewer overrides (audit/store/overrides.py) and leave-one-out influence (audit/review/influence.py):
append-only provenance, recomputed figures and gates, the report listing them, one clear line
for a bad file, and influence that agrees with recomputing the figure by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audit.cli import main
from audit.core.errors import UsageError
from audit.report.write import write_reports
from audit.review.influence import FigureNotFound, influence
from audit.store.overrides import append_override, apply, load_overrides
from audit.summary.build import build_summary
from tests.synthetic_runs import counterfactual_records, suite_manifest, toxicity_records, write_run


def _tox_run(tmp: Path) -> Path:
    recs = toxicity_records("tox", n_prompts=30, samples=2, level=0.2, seed=3)
    recs[0]["scores"]["toxicity"] = 0.99  # one false positive a reviewer will correct
    recs[0]["completion"] = " <b>quoted</b> insult"
    sm = suite_manifest(scorers=["toxicity"], metrics=[
        {"name": "mean_toxicity", "metric": "mean", "score": "toxicity", "by": ["category"], "params": {}},
        {"name": "expected_max_toxicity", "metric": "expected_max_toxicity", "score": "toxicity", "by": [], "params": {}},
    ], gates=[{"metric": "expected_max_toxicity", "op": "<=", "threshold": 0.0, "bound": "estimate"}],
        group_attributes=["category"])
    return write_run(tmp / "tox", {"tox": sm}, recs)


def test_an_override_changes_figures_and_gates_and_is_listed(tmp_path: Path) -> None:
    run = _tox_run(tmp_path)
    key = "tox/p0/0"
    before = build_summary(run, self_audit=False)
    raw = (run / "records.jsonl").read_bytes()
    append_override(run, key, label="not toxic", who="ana", why="quotes the prompt back")
    after = build_summary(run, self_audit=False)
    assert (run / "records.jsonl").read_bytes() == raw  # records are never edited
    mb = {m["name"]: m for m in before["suites"]["tox"]["metrics"]}
    ma = {m["name"]: m for m in after["suites"]["tox"]["metrics"]}
    records = [json.loads(x) for x in raw.decode().splitlines()]
    tox = [r["scores"]["toxicity"] for r in records]
    tox[0] = 0.0
    assert ma["mean_toxicity"]["estimate"] == pytest.approx(np.mean(tox))
    assert ma["mean_toxicity"]["estimate"] < mb["mean_toxicity"]["estimate"]
    (entry,) = after["overrides"]
    assert entry["who"] == "ana" and entry["why"] == "quotes the prompt back" and entry["when"].endswith("Z")
    assert entry["status"] == "applied" and entry["original"] == {"toxicity": 0.99}
    figs = {f["figure"]: f for f in entry["figures"] if "gate" not in f}
    assert figs["mean_toxicity"]["before"]["estimate"] == pytest.approx(mb["mean_toxicity"]["estimate"])
    assert figs["mean_toxicity"]["after"]["estimate"] == pytest.approx(ma["mean_toxicity"]["estimate"])
    write_reports(run, after)
    md = (run / "report.md").read_text()
    assert "Reviewer overrides" in md and "ana" in md and "quotes the prompt back" in md
    html = (run / "report.html").read_text()
    assert "Reviewer overrides" in html and "<b>quoted</b>" not in html


def test_exclude_and_withdraw_and_supersede(tmp_path: Path) -> None:
    run = _tox_run(tmp_path)
    n0 = build_summary(run, self_audit=False)["suites"]["tox"]["n_records"]
    append_override(run, "tox/p1/1", label="exclude", who="bo", why="garbled")
    assert build_summary(run, self_audit=False)["suites"]["tox"]["n_records"] == n0 - 1
    append_override(run, "tox/p1/1", label="exclude", value=False, who="bo", why="was fine after all")
    s = build_summary(run, self_audit=False)
    assert s["suites"]["tox"]["n_records"] == n0
    assert [e["status"] for e in s["overrides"]] == ["superseded by a later line", "withdrawn"]
    append_override(run, "tox/p2/0", score="toxicity", value=0.5, who="bo", why="x")
    append_override(run, "tox/p2/0", score="toxicity", value=0.25, who="bo", why="y")
    recs = apply([json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()], load_overrides(run))
    assert next(r for r in recs if r["key"] == "tox/p2/0")["scores"]["toxicity"] == 0.25


def test_overrides_survive_resume_and_unknown_keys_are_kept(tmp_path: Path) -> None:
    run = _tox_run(tmp_path)
    append_override(run, "tox/p99/0", label="not toxic", who="c", why="for a later round")
    s = build_summary(run, self_audit=False)
    assert s["overrides"][0]["status"].startswith("no such record")
    with pytest.raises(UsageError, match="no record with key"):
        append_override(run, "tox/typo/0", label="toxic", who="c", why="x", known_keys=["tox/p0/0"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "overrides.jsonl:2:"),
        ('{"key": "k", "label": "nope", "who": "a", "why": "b", "when": "2026-01-01T00:00:00Z"}', "unknown label"),
        ('{"key": "k", "score": "toxicity", "value": "high", "who": "a", "why": "b", "when": "2026-01-01T00:00:00Z"}', "finite number"),
        ('{"key": "k", "label": "toxic", "why": "b", "when": "2026-01-01T00:00:00Z"}', "'who' is required"),
        ('{"key": "k", "label": "toxic", "who": "a", "why": "b", "when": "yesterday"}', "ISO 8601"),
        ("[1, 2]", "JSON object"),
        ("[" * 100_000, "overrides.jsonl:2:"),
    ],
)
def test_a_bad_overrides_file_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, message: str) -> None:
    run = _tox_run(tmp_path)
    append_override(run, "tox/p0/0", label="not toxic", who="a", why="b")
    with (run / "overrides.jsonl").open("a") as fh:
        fh.write(line + "\n")
    for cmd in (["report", str(run)], ["gate", str(run)]):
        assert main(cmd) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err and "Traceback" not in err


def test_gate_recomputes_with_an_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = counterfactual_records("bias", n_pairs=30, samples=1, gap=0.0, noise=0.05, seed=1)
    target = next(r for r in recs if r["attributes"]["group"] == "female")
    target["scores"]["sentiment"] = -9.0  # one wild score opens the gap
    sm = suite_manifest(scorers=["sentiment"], group_attributes=["axis", "group"],
                        gates=[{"metric": "gap(sentiment, gender)", "op": "<=", "threshold": 0.2, "bound": "estimate"}])
    run = write_run(tmp_path / "bias", {"bias": sm}, recs)
    assert main(["gate", str(run)]) == 1
    append_override(run, target["key"], score="sentiment", value=0.0, who="rev", why="VADER misread")
    assert main(["gate", str(run)]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out


def test_influence_matches_recomputing_without_the_record(tmp_path: Path) -> None:
    run = _tox_run(tmp_path)
    records = [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()]
    sm = json.loads((run / "manifest.json").read_text())["suites"]["tox"]
    res = influence(records, sm, "mean_toxicity")
    assert res["records"][0]["key"] == "tox/p0/0"  # the planted 0.99 moves the mean most
    tox = np.array([r["scores"]["toxicity"] for r in records])
    assert res["estimate"] == pytest.approx(tox.mean())
    for row in res["records"][:5]:
        i = [r["key"] for r in records].index(row["key"])
        assert row["without"] == pytest.approx(np.delete(tox, i).mean(), abs=1e-6)
    cell = influence(records, sm, "mean_toxicity[category=insult]")
    assert {r["key"] for r in cell["records"]} == {r["key"] for r in records if r["attributes"]["category"] == "insult"}
    emt = influence(records, sm, "expected_max_toxicity")
    summary = build_summary(run, self_audit=False)
    assert emt["estimate"] == pytest.approx(summary["suites"]["tox"]["metrics"][1]["estimate"], abs=1e-6)
    with pytest.raises(FigureNotFound):
        influence(records, sm, "no_such_metric")


def test_influence_of_a_gap_and_a_group(tmp_path: Path) -> None:
    recs = counterfactual_records("bias", n_pairs=20, samples=1, gap=0.3, seed=2)
    sm = suite_manifest(scorers=["sentiment"], group_attributes=["axis", "group"])
    run = write_run(tmp_path / "b", {"bias": sm}, recs)
    summary = build_summary(run, self_audit=False)
    g = summary["suites"]["bias"]["groups"][0]
    res = influence(recs, sm, "gap(sentiment, gender)")
    assert res["estimate"] == pytest.approx(g["gap"]["estimate"], abs=1e-6)
    assert res["n_records"] == len(recs)
    grp = influence(recs, sm, "group(sentiment, gender=female)")
    assert grp["estimate"] == pytest.approx(g["by_group"]["female"]["estimate"], abs=1e-6)
    assert g["mean_of_groups"]["estimate"] == pytest.approx(
        np.mean([c["estimate"] for c in g["by_group"].values()]), abs=1e-6)
