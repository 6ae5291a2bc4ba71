"""Real runs on tiny random-weight models: two seeds of one model with ``--limit`` audit the same
prompts (the selection seed is separate), and ``run --model A --model B`` writes one run per model
plus the ranked comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.cli import main
from audit.store.run_store import read_manifest, read_records

ARGS = ["--suite", "bias-counterfactual", "--limit", "16", "--samples", "1", "--no-progress", "--no-cache"]


def _items(run: Path) -> set[str]:
    return {r.item_id for r in read_records(run)}


def test_two_seeds_with_limit_use_the_same_prompts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for seed in ("0", "1"):
        assert main(["run", "--model", "tiny-random-gpt2", *ARGS, "--seed", seed, "--out", str(tmp_path),
                     "--name", f"s{seed}"]) in (0, 1)
    s0, s1 = tmp_path / "s0", tmp_path / "s1"
    assert _items(s0) == _items(s1) and len(_items(s0)) >= 16
    assert read_manifest(s0)["selection_seed"] == read_manifest(s1)["selection_seed"] == 0
    # the seeds did change the sampled completions
    c0 = {r.key: r.completion for r in read_records(s0)}
    c1 = {r.key: r.completion for r in read_records(s1)}
    assert c0.keys() == c1.keys() and c0 != c1
    capsys.readouterr()
    assert main(["compare", str(s0), str(s1)]) == 0
    out = capsys.readouterr().out
    assert "only in" not in out and "protocols differ" not in out
    assert "no thresholds set" in out and "PASS" not in out
    # another selection seed picks other prompts
    assert main(["run", "--model", "tiny-random-gpt2", *ARGS, "--selection-seed", "5", "--out", str(tmp_path),
                 "--name", "sel5"]) in (0, 1)
    assert _items(tmp_path / "sel5") != _items(s0)


def test_run_with_two_models_writes_both_runs_and_the_comparison(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--model", "tiny-random-gpt2", "--model", "tiny-random-gpt-neo", *ARGS,
                 "--out", str(tmp_path), "--name", "duo"])
    assert code in (0, 1)  # gates may fail on random weights; the comparison never sets the code
    a, b = tmp_path / "duo-tiny-random-gpt2", tmp_path / "duo-tiny-random-gpt-neo"
    assert (a / "summary.json").is_file() and (b / "summary.json").is_file()
    assert _items(a) == _items(b)
    assert read_manifest(a)["seed"] == read_manifest(b)["seed"]
    result = json.loads((tmp_path / "duo-compare.json").read_text())
    assert [r["label"] for r in result["runs"]] == ["duo-tiny-random-gpt2", "duo-tiny-random-gpt-neo"]
    fig = next(f for f in result["suites"]["bias-counterfactual"]["figures"] if f["figure"] == "mean_toxicity")
    assert fig["n_shared"] > 0 and {m["run"] for m in fig["models"]} == {a.name, b.name}
    assert all(m["letters"] and m["rank"] for m in fig["models"])
    md = (tmp_path / "duo-compare.md").read_text()
    assert "| mean_toxicity | lower |" in md
    out = capsys.readouterr().out
    assert "compare: 2 runs" in out and "mean_toxicity (lower is better" in out
    assert main(["run", "--model", "tiny-random-gpt2", "--model", "tiny-random-gpt2", *ARGS,
                 "--out", str(tmp_path)]) == 2
