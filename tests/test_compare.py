"""``lm-audit compare``: planted differences are found with the right verdict, null ones are not,
and regressions beyond a threshold set the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_runs import counterfactual_records, record, suite_manifest, toxicity_records, write_run

from audit.cli import main
from audit.compare.report import compare_runs
from audit.gates.evaluate import StatsSettings

FAST = StatsSettings(resamples=500, permutations=1000)


def _suites() -> dict:
    return {
        "bias": suite_manifest(metrics=[{"metric": "mean", "score": "sentiment", "name": "mean_sentiment"}]),
        "tox": suite_manifest(
            scorers=["toxicity"],
            samples=4,
            group_attributes=["category"],
            metrics=[{"metric": "expected_max_toxicity"}],
        ),
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cmp")
    # same prompts and pair effects (seed) in both runs; B adds a gender gap and more toxicity
    a = write_run(
        root / "A", _suites(), counterfactual_records(gap=0.0, seed=1) + toxicity_records(level=0.2, seed=1)
    )
    b_tox = toxicity_records(level=0.2, seed=1)
    for r in b_tox:
        r["scores"]["toxicity"] = min(1.0, r["scores"]["toxicity"] + 0.15)
    b = write_run(root / "B", _suites(), counterfactual_records(gap=0.3, seed=1) + b_tox)
    return a, b


def _figures(result: dict, suite: str) -> dict[str, dict]:
    return {r["figure"]: r for r in result["suites"][suite]["figures"]}


def test_planted_differences_get_the_right_verdicts(runs: tuple[Path, Path]) -> None:
    a, b = runs
    res = compare_runs(a, b, FAST)
    tox = _figures(res, "tox")["expected_max_toxicity"]
    assert tox["verdict"] == "worse"
    assert tox["delta"] == pytest.approx(0.15, abs=0.02)
    assert tox["ci_low"] > 0 and tox["p_value"] < 0.01
    assert tox["n_shared"] == 60
    gap = _figures(res, "bias")["gap(sentiment, gender)"]
    assert gap["verdict"] == "worse" and gap["b"] > gap["a"]
    assert _figures(res, "tox")["gap(toxicity, category)"]["verdict"] == "no significant change"
    # the reverse direction is an improvement
    back = compare_runs(b, a, FAST)
    assert _figures(back, "tox")["expected_max_toxicity"]["verdict"] == "better"


def test_a_run_compared_with_itself_shows_no_change(runs: tuple[Path, Path]) -> None:
    a, _ = runs
    res = compare_runs(a, a, FAST)
    for suite in res["suites"].values():
        for r in suite["figures"]:
            assert r["verdict"] == "no significant change"
            assert r["delta"] == pytest.approx(0.0)
    assert res["passed"]


def test_exit_code_follows_the_regression_threshold(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = runs
    assert main(["compare", str(a), str(b)]) == 0  # no threshold: report only
    assert main(["compare", str(a), str(b), "--max-regression", "expected_max_toxicity=0.3"]) == 0
    out_dir = tmp_path / "out"
    code = main(
        ["compare", str(a), str(b), "--max-regression", "expected_max_toxicity=0.05", "--out", str(out_dir)]
    )
    assert code == 1
    assert "REGRESSED" in capsys.readouterr().out
    saved = json.loads((out_dir / "compare.json").read_text())
    assert saved["passed"] is False and saved["n_regressed"] == 1
    assert "REGRESSED" in (out_dir / "compare.md").read_text()
    # improvements never fail
    assert main(["compare", str(b), str(a), "--max-regression", "*=0"]) == 0


def test_thresholds_from_the_policy(runs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = runs
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "compare:\n  max_regression:\n    'gap(sentiment, gender)': 0.05\n"
        "stats: {resamples: 300, permutations: 500}\n"
    )
    assert main(["compare", str(a), str(b), "--policy", str(policy)]) == 1


def test_bad_arguments_are_usage_errors(runs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = runs
    assert main(["compare", str(a), str(b), "--max-regression", "expected_max_toxicity"]) == 2
    other = write_run(tmp_path / "other", {"x": suite_manifest()}, [record("x", "1", 0, {"sentiment": 0.1})])
    assert main(["compare", str(a), str(other)]) == 2
    # a threshold naming no figure fails loudly instead of passing silently
    assert main(["compare", str(a), str(b), "--max-regression", "no_such_metric=0.1"]) == 1
