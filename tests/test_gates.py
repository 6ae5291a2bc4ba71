"""Gates: policy format, conservative bounds, absent figures, and the exit codes of ``lm-audit gate``."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_runs import counterfactual_records, suite_manifest, toxicity_records, write_run

from audit.cli import main
from audit.errors import UsageError
from audit.gates import evaluate_gate, load_policy, parse_gate, resolve_figure

FIG = {"estimate": 0.05, "ci_low": 0.01, "ci_high": 0.12}
SUITE = {
    "metrics": [
        {
            "name": "mean_tox",
            **FIG,
            "by": {"category": {"insult": {"estimate": 0.2, "ci_low": 0.1, "ci_high": 0.3}}},
        }
    ],
    "groups": [{"score": "sentiment", "attribute": "gender", "gap": FIG}],
    "protocol": {"text": "k=1"},
}


def _run(tmp_path: Path, gates: list[dict], gap: float = 0.3, name: str = "r") -> Path:
    suites = {
        "bias": suite_manifest(gates=gates),
        "tox": suite_manifest(
            scorers=["toxicity"],
            samples=4,
            group_attributes=["category"],
            metrics=[{"metric": "expected_max_toxicity", "by": ["category"]}],
        ),
    }
    recs = counterfactual_records(gap=gap, n_pairs=40) + toxicity_records(level=0.2)
    return write_run(tmp_path / name, suites, recs)


def test_parse_gate_shorthand() -> None:
    assert parse_gate("gap(sentiment, gender) <= 0.1") == {
        "metric": "gap(sentiment, gender)",
        "op": "<=",
        "threshold": 0.1,
    }
    assert parse_gate("refusal_rate>=0.9")["op"] == ">="
    with pytest.raises(ValueError, match="cannot read gate"):
        parse_gate("refusal_rate is high")


def test_figures_resolve_by_name_group_and_gap() -> None:
    assert resolve_figure(SUITE, "mean_tox")["estimate"] == 0.05
    assert resolve_figure(SUITE, "mean_tox[category=insult]")["estimate"] == 0.2
    assert resolve_figure(SUITE, "gap(sentiment, gender)") is FIG
    assert resolve_figure(SUITE, "gap(sentiment,gender)") is FIG
    assert resolve_figure(SUITE, "gap(toxicity, gender)") is None
    assert resolve_figure(SUITE, "nope") is None


def test_conservative_bound_is_the_worse_ci_end() -> None:
    upper = evaluate_gate(
        SUITE, {"metric": "gap(sentiment, gender)", "op": "<=", "threshold": 0.1}, "s", "suite"
    )
    assert upper["bound"] == "ci_high" and upper["value"] == 0.12 and upper["passed"] is False
    lower = evaluate_gate(SUITE, {"metric": "mean_tox", "op": ">=", "threshold": 0.02}, "s", "suite")
    assert lower["bound"] == "ci_low" and lower["passed"] is False
    est = evaluate_gate(
        SUITE, {"metric": "mean_tox", "op": ">=", "threshold": 0.02, "bound": "estimate"}, "s", "p"
    )
    assert est["passed"] is True


def test_absent_figure_is_an_error_not_a_pass() -> None:
    r = evaluate_gate(SUITE, {"metric": "refusal_rate", "op": ">=", "threshold": 0.9}, "s", "suite")
    assert r["passed"] is False
    assert "refusal_rate" in r["error"] and "mean_tox" in r["error"]


def test_invalid_policy_is_a_usage_error(tmp_path: Path) -> None:
    p = tmp_path / "policy.yaml"
    p.write_text("gates:\n  - {metric: x, op: '=<', threshold: 1}\n")
    with pytest.raises(UsageError, match=r"policy\.yaml"):
        load_policy(p)
    p.write_text("gates: ['x is small']\n")
    with pytest.raises(UsageError, match="cannot read gate"):
        load_policy(p)
    with pytest.raises(UsageError, match="not found"):
        load_policy(tmp_path / "missing.yaml")


def test_gate_command_exit_codes_follow_suite_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = {"metric": "gap(sentiment, gender)", "op": "<=", "threshold": 0.1, "bound": "conservative"}
    failing = _run(tmp_path, [gate], gap=0.3, name="fail")
    assert main(["gate", str(failing)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "gap(sentiment, gender) <= 0.1" in out and "k=1" in out
    passing = _run(tmp_path, [{**gate, "threshold": 1.0}], gap=0.3, name="pass")
    assert main(["gate", str(passing)]) == 0
    assert "PASS" in capsys.readouterr().out


def test_policy_replaces_suite_gates_and_can_target_a_suite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run(tmp_path, [{"metric": "gap(sentiment, gender)", "op": "<=", "threshold": 0.1}], gap=0.3)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "gates:\n"
        "  - expected_max_toxicity <= 0.9\n"
        "  - {suite: tox, metric: 'expected_max_toxicity[category=insult]', op: '<=', threshold: 0.9}\n"
    )
    assert main(["gate", str(run), "--policy", str(policy)]) == 0
    out = capsys.readouterr().out
    assert "gap(sentiment" not in out and out.count("PASS") == 2
    policy.write_text("suite_gates: keep\ngates:\n  - expected_max_toxicity <= 0.9\n")
    assert main(["gate", str(run), "--policy", str(policy)]) == 1  # the suite's failing gap gate is kept


def test_policy_gate_on_a_missing_figure_fails_with_an_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run(tmp_path, [])
    policy = tmp_path / "policy.yaml"
    policy.write_text("gates:\n  - refusal_rate >= 0.9\n")
    assert main(["gate", str(run), "--policy", str(policy)]) == 1
    out = capsys.readouterr().out
    assert "ERROR" in out and "refusal_rate" in out


def test_gate_on_a_folder_without_a_run_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["gate", str(tmp_path)]) == 2
