"""Every built-in suite, and a custom suite from a temp dir, runs end to end on tiny-random-gpt2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.cli import main
from audit.suites import load_suite
from audit.summary.checks import interval_problems

# suite -> (limit, score keys every record of it must carry)
CASES = {
    "bias-counterfactual": (10, {"sentiment", "toxicity"}),
    "toxicity-rtp": (8, {"toxicity"}),
    "stereotype-likelihood": (13, set()),
    "factuality": (6, {"factual"}),
    "misuse-refusal": (11, {"refusal"}),
    "names-intersectional": (8, {"sentiment", "toxicity"}),
}


def _run(tmp_path: Path, suite: str, limit: int, *extra: str) -> tuple[int, Path]:
    code = main(["run", "--suite", suite, "--model", "tiny-random-gpt2", "--limit", str(limit),
                 "--out", str(tmp_path / "runs"), "--name", "x", "--no-progress", *extra])
    return code, tmp_path / "runs" / "x"


@pytest.mark.parametrize("name", sorted(CASES))
def test_builtin_suite_runs_end_to_end(name: str, tmp_path: Path) -> None:
    limit, keys = CASES[name]
    extra = ["--samples", "2", "--protocol", "helm"] if name == "toxicity-rtp" else ["--samples", "1"]
    code, run = _run(tmp_path, name, limit, *extra)
    assert code in (0, 1)  # 1: a default gate failed, which random weights may well do
    loaded = load_suite(name)
    manifest = json.loads((run / "manifest.json").read_text())
    entry = manifest["suites"][name]
    assert manifest["status"] == "complete"
    samples = entry["generation"]["samples"]
    if name == "toxicity-rtp":
        assert entry["protocol"] == "helm" and samples == 2
    records = [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()]
    assert len(records) == entry["n_items"] * samples
    assert entry["n_items"] >= limit
    for r in records:
        assert keys <= set(r["scores"]), r["scores"]
        for attr in loaded.suite.group_attributes:
            if name != "bias-counterfactual":  # there, each record carries its own axis only
                assert attr in r["attributes"]
        if loaded.suite.task == "likelihood":
            item = next(it for it in loaded.items if it.item_id == r["item_id"])
            assert {f"ll_{o}" for o in item.options} == set(r["scores"])
            assert all(v <= 0 for v in r["scores"].values())
    if name == "bias-counterfactual":
        groups = {(r["attributes"]["axis"], r["attributes"]["group"]) for r in records}
        assert groups == {(it.attributes["axis"], it.attributes["group"]) for it in loaded.items}
    summary = json.loads((run / "summary.json").read_text())["suites"][name]
    names = {m["name"] for m in summary["metrics"]}
    for m in loaded.suite.metrics:
        assert m.label in names or any(n.startswith(m.label + ".") for n in names), (m.label, names)
    assert len(summary["gates"]) == len(loaded.suite.gates)


def test_custom_suite_from_a_temp_dir_runs(tmp_path: Path) -> None:
    (tmp_path / "lex.yaml").write_text("attribute: pet\ngroups: {cat: [the cat, my cat], dog: [the dog, my dog]}\n")
    (tmp_path / "pets.yaml").write_text(
        """
id: pets
title: Pets
description: a custom suite in a temp dir
version: 1
citation: none
licence: CC0-1.0
prompts:
  templates:
    - {id: liked, text: "{group} liked to", attributes: {mood: calm}}
    - {id: hated, text: "Everyone said {group} was", attributes: {mood: tense}}
  lexicons: [lex.yaml]
generation: {samples: 2, max_new_tokens: 5, top_p: 0.9}
group_attributes: [pet]
scorers: [sentiment]
metrics:
  - {name: mean_sentiment, metric: mean, score: sentiment, by: [pet, mood]}
gates:
  - {metric: "gap(sentiment, pet)", op: "<=", threshold: 5, bound: estimate}
"""
    )
    code, run = _run(tmp_path, str(tmp_path / "pets.yaml"), 100)
    # the random-weights model's sentiment is constant: its gap is uninformative, an ERROR (issue 11)
    assert code in (0, 1)
    records = [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()]
    assert len(records) == 2 * 2 * 2 * 2  # templates x forms x groups x samples
    # counterfactual prompts share their sampling stream: same key prefix for cat and dog
    by_pair: dict[tuple[str, int], set[str]] = {}
    for r in records:
        by_pair.setdefault((r["attributes"]["pair_id"], r["sample"]), set()).add(r["attributes"]["pet"])
    assert all(v == {"cat", "dog"} for v in by_pair.values())
    summary = json.loads((run / "summary.json").read_text())
    (gate,) = summary["suites"]["pets"]["gates"]
    assert summary["gates"]["n_total"] == 1 and (code == 0) == summary["gates"]["passed"]
    assert gate["verdict"] == "PASS" or "uninformative" in (gate.get("error") or "")


@pytest.mark.slow
def test_every_builtin_suite_runs_on_the_embedded_model(tmp_path: Path) -> None:
    """The five suites in one run on smollm2-135m, one stratified set per group (--limit 1)."""
    args = ["run", "--model", "smollm2-135m", "--limit", "1", "--samples", "1", "--out", str(tmp_path),
            "--name", "smol", "--no-progress"]
    for name in sorted(CASES):
        args += ["--suite", name]
    assert main(args) in (0, 1)
    run = tmp_path / "smol"
    records = [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()]
    by_suite: dict[str, list[dict]] = {}
    for r in records:
        by_suite.setdefault(r["suite"], []).append(r)
    assert set(by_suite) == set(CASES)
    for name, rows in by_suite.items():
        if name == "stereotype-likelihood":
            assert all(v < 0 for r in rows for v in r["scores"].values())
        else:
            # a real model writes text for nearly every prompt
            assert sum(bool(r["completion"].strip()) for r in rows) >= 0.8 * len(rows), name
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["suites"]) == set(CASES)
    # one set per group: every interval still inside its range, no unflagged zero-width one
    assert interval_problems(summary) == []
