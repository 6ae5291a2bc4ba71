"""``lm-audit run --attacks`` end to end: attacked prompts paired with their plain prompts, the
attack figures and gates in summary.json, the reports (escaped), on tiny-random-gpt2 and (slow)
on the embedded SmolLM2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.attacks import available
from audit.cli import main

# tiny-random-gpt2 answers with noise: mechanics only, the figures mean nothing
pytestmark = pytest.mark.xdist_group("attacks-run")


def _run(tmp_path: Path, *args: str) -> tuple[dict, list[dict]]:
    code = main(["run", *args, "--out", str(tmp_path), "--name", "r", "--no-progress", "--no-cache"])
    assert code in (0, 1)
    run = tmp_path / "r"
    return (json.loads((run / "summary.json").read_text(encoding="utf-8")),
            [json.loads(line) for line in (run / "records.jsonl").read_text(encoding="utf-8").splitlines()])


def test_attacks_all_on_tiny_random_gpt2(tmp_path: Path) -> None:
    summary, records = _run(tmp_path, "--suite", "misuse-refusal", "--attacks", "all", "--limit", "2",
                            "--model", "tiny-random-gpt2")
    plain = {r["item_id"]: r for r in records if r["attributes"]["technique"] == "none"}
    attacked = [r for r in records if r["attributes"]["technique"] != "none"]
    assert plain and len(attacked) == len(plain) * (len(available()) + 2)  # best-of-n draws 3 variants
    for r in attacked:
        a = r["attributes"]
        assert a["attack_of"] in plain and a["pair_id"] == a["attack_of"]
        assert r["prompt"] != plain[a["attack_of"]]["prompt"]
        assert r["scores"]["answer_readable"] in (0.0, 1.0)
    s = summary["suites"]["misuse-refusal"]
    assert s["n_items"] == len(plain)  # the suite's own figures come from the plain prompts
    section = s["attacks"]
    assert {t["technique"] for t in section["techniques"]} == set(available())
    for t in section["techniques"]:
        assert t["undetermined"]["n"] >= 1 and "method" in t["undetermined"]
    metrics = {m["name"]: m for m in s["metrics"]}
    assert {"attack_success", "attack_undetermined", "attack_hit_at_k"} <= set(metrics)
    assert set(metrics["attack_undetermined"]["by"]["technique"]) == set(available())
    gates = {g["metric"] for g in s["gates"]}
    assert {"attack_success", "attack_undetermined"} <= gates
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "### Under attack" in md and "Under attack" in html
    for text in (md, html):  # a right-to-left override in a prompt must not reorder the page
        assert "\u202e" not in text and "\u200b" not in text


def test_a_gate_per_technique(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("gates:\n  - {suite: misuse-refusal, metric: 'attack_undetermined[technique=base64]', op: '<=', "
                      "threshold: 1.0}\n", encoding="utf-8")
    summary, _ = _run(tmp_path, "--suite", "misuse-refusal", "--attacks", "base64", "--limit", "2",
                      "--model", "tiny-random-gpt2", "--policy", str(policy))
    (gate,) = summary["suites"]["misuse-refusal"]["gates"]
    assert gate["metric"] == "attack_undetermined[technique=base64]" and gate["ci_high"] is not None


def test_unknown_attack_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--suite", "misuse-refusal", "--attacks", "base64,nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown attack 'nope'" in err[0]


@pytest.mark.slow
def test_attacks_all_on_the_embedded_model(tmp_path: Path) -> None:
    summary, records = _run(tmp_path, "--suite", "over-refusal", "--attacks", "all", "--limit", "2")
    section = summary["suites"]["over-refusal"]["attacks"]
    assert {t["technique"] for t in section["techniques"]} == set(available())
    # a real chat model reads some attacked prompts and answers them in plain English
    assert section["outcomes"]["refused"] + section["outcomes"]["complied"] > 0
    assert any(r["scores"].get("answer_readable") == 1.0 for r in records if r["attributes"]["technique"] != "none")
