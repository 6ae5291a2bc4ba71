"""Honest exports (#27 item 3): a damaged, incomplete, failed or running run gets no hub metadata
(``export --format model-card`` exits 2 with one line); ``--allow-damaged`` writes it with the damage
stated in the YAML itself; ``gate`` fails a failed or running manifest; a record key written twice
with different scores marks the run damaged."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from export_fixtures import audit_run

from audit.cli import main
from audit.core.errors import UsageError
from audit.store.run_store import read_records_checked, repair_records


def _set_status(run: Path, status: str) -> None:
    m = json.loads((run / "manifest.json").read_text())
    m["status"] = status
    (run / "manifest.json").write_text(json.dumps(m))


def _garble(run: Path) -> None:
    lines = (run / "records.jsonl").read_text().splitlines(keepends=True)
    lines[5] = '{"key": "bias/x", "completion": "cut\n'
    (run / "records.jsonl").write_text("".join(lines))


def _duplicate_with_other_scores(run: Path) -> str:
    lines = (run / "records.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    row["scores"] = {k: (v + 0.5 if isinstance(v, float) else v) for k, v in row["scores"].items()}
    (run / "records.jsonl").write_text("\n".join([*lines, json.dumps(row)]) + "\n")
    return row["key"]


def _one_line_refusal(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (_garble, ["damaged", "unreadable"]),
        (lambda run: _set_status(run, "failed"), ["status: failed"]),
        (lambda run: _set_status(run, "running"), ["status: interrupted"]),  # no writer holds it: killed
        (_duplicate_with_other_scores, ["damaged", "different scores"]),
    ],
    ids=["garbled-line", "failed", "running", "conflicting-duplicate"],
)
def test_no_hub_metadata_from_a_damaged_or_unfinished_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage, words: list[str]
) -> None:
    run = audit_run(tmp_path)
    damage(run)
    out = tmp_path / "mc"
    assert main(["export", str(run), "--format", "model-card", "--out", str(out)]) == 2
    _one_line_refusal(capsys, "no hub metadata", "--allow-damaged", *words)
    assert not out.exists()
    assert main(["gate", str(run)]) == 1  # and the run never passes a gate
    capsys.readouterr()

    assert main(["export", str(run), "--format", "model-card", "--out", str(out), "--allow-damaged"]) == 0
    index = yaml.safe_load((out / "model-index.yaml").read_text())
    results = index["model-index"][0]["results"]
    assert results
    for res in results:
        reason = res["dataset"]["args"]["lm_audit_damage"]
        assert all(w in reason for w in words), reason
        for m in res["metrics"]:
            assert m["name"].startswith("DAMAGED RUN: ") and m["verified"] is False
    for path in (out / ".eval_results").iterdir():
        for entry in yaml.safe_load(path.read_text()):
            assert entry["notes"].startswith("DAMAGED RUN (")
    assert "Warning: DAMAGED RUN" in (out / "model-card.md").read_text()
    from huggingface_hub import ModelCard  # the marked metadata is still valid model-index

    card = ModelCard(f"---\n{(out / 'model-index.yaml').read_text()}---\n\n# card\n", ignore_metadata_errors=False)
    assert all(r.metric_name.startswith("DAMAGED RUN") and r.verified is False for r in card.data.eval_results)


def test_a_whole_run_exports_unmarked_and_allow_damaged_changes_nothing(tmp_path: Path) -> None:
    run = audit_run(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["export", str(run), "--format", "model-card", "--out", str(a)]) == 0
    assert main(["export", str(run), "--format", "model-card", "--out", str(b), "--allow-damaged"]) == 0
    assert (a / "model-index.yaml").read_text() == (b / "model-index.yaml").read_text()
    assert "DAMAGED" not in (a / "model-index.yaml").read_text()


def test_allow_damaged_belongs_to_the_model_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = audit_run(tmp_path)
    assert main(["export", str(run), "--format", "csv", "--allow-damaged"]) == 2
    _one_line_refusal(capsys, "--allow-damaged", "model-card")


def test_gate_fails_a_failed_or_running_manifest_with_one_line_saying_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "lenient.yaml"  # every gate of the fixture run passes under it
    policy.write_text("version: 1\nsuite_gates: replace\ngates:\n  - {metric: expected_max_toxicity, op: '<=', threshold: 0.9}\n")
    run = audit_run(tmp_path)
    assert main(["gate", str(run), "--policy", str(policy)]) == 0
    assert "not complete" not in capsys.readouterr().out
    for status, shown in (("failed", "failed"), ("running", "interrupted"), ("weird", "weird")):
        _set_status(run, status)
        assert main(["gate", str(run), "--policy", str(policy)]) == 1
        out = capsys.readouterr().out
        assert f"gates: FAILED: the run is not complete (status: {shown})" in out
        junit = tmp_path / f"{status}.xml"
        assert main(["gate", str(run), "--policy", str(policy), "--junit", str(junit)]) == 1
        case = next(c for c in ET.parse(junit).getroot().iter("testcase") if c.get("name") == "run status")
        assert f"status: {shown}" in case.find("error").get("message")
        capsys.readouterr()


def test_a_duplicated_key_with_different_scores_marks_the_run_damaged(tmp_path: Path) -> None:
    run = audit_run(tmp_path)
    lines = (run / "records.jsonl").read_text().splitlines()
    (run / "records.jsonl").write_text("\n".join([*lines, lines[3]]) + "\n")  # the same record again: harmless
    _, damage = read_records_checked(run)
    assert damage is None
    key = _duplicate_with_other_scores(run)
    records, damage = read_records_checked(run)
    assert damage is not None and damage["n_conflicting_duplicates"] == 1
    assert key in damage["reason"] and "different scores" in damage["reason"]
    assert next(r for r in records if r.key == key).scores == json.loads(lines[0])["scores"]  # the first copy
    with pytest.raises(UsageError, match="cannot be resumed"):  # the writer will not pick a copy either
        repair_records(run / "records.jsonl", rewrite=True)
