"""Gates: policy format, conservative bounds, absent figures, and the exit codes of ``lm-audit gate``."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_runs import counterfactual_records, suite_manifest, toxicity_records, write_run

from audit.cli import main
from audit.core.errors import UsageError
from audit.gates.evaluate import evaluate_gate, load_policy, parse_gate, resolve_figure

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
    assert "gap(sentiment" not in out and sum(ln.startswith("PASS") for ln in out.splitlines()) == 2
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


def _gate(fig: dict, op: str, threshold: float, **kw: object) -> dict:
    suite = {"metrics": [{"name": "m", **fig}], "protocol": {"text": "k=1"}, "resampling_unit": "prompts"}
    return evaluate_gate(suite, {"metric": "m", "op": op, "threshold": threshold, **kw}, "s", "suite", **{})


def test_verdicts_are_three_way_on_the_conservative_bound() -> None:
    fig = {"estimate": 0.05, "ci_low": 0.01, "ci_high": 0.08, "n_clusters": 40}
    assert _gate(fig, "<=", 0.1)["verdict"] == "PASS"
    assert _gate(fig, "<=", 0.005)["verdict"] == "FAIL"
    straddle = _gate(fig, "<=", 0.06)
    assert straddle["verdict"] == "INCONCLUSIVE" and straddle["passed"] is False
    assert _gate(fig, ">=", 0.005)["verdict"] == "PASS"
    assert _gate(fig, ">=", 0.2)["verdict"] == "FAIL"
    assert _gate(fig, ">", 0.08)["verdict"] == "FAIL"  # ci_high = 0.08 is not > 0.08
    # an explicit bound is a two-way judgment on that value
    assert _gate(fig, "<=", 0.06, bound="estimate")["verdict"] == "PASS"
    for r in (_gate(fig, "<=", 0.1), straddle):
        assert r["n_clusters"] == 40 and r["warnings"] == []


def test_inconclusive_says_how_many_more_would_decide_it() -> None:
    from audit.stats.planning import GateModel, units_needed

    # unit SD from the CI: 0.04 / t(39) * sqrt(40); the estimate 0.02 below the threshold is taken as true
    r = _gate({"estimate": 0.05, "ci_low": 0.01, "ci_high": 0.09, "n_clusters": 40}, "<=", 0.07)
    sd = 0.04 / 2.0226909 * 40**0.5
    total = units_needed(GateModel("<=", 0.07, sd, (0.05,)))
    assert r["needed"]["unit"] == "prompts" and r["needed"]["total"] == total and r["needed"]["more"] == total - 40
    assert r["needed"]["text"].startswith(f"≈ {total - 40:,} more prompts would decide this")
    on = _gate({"estimate": 0.07, "ci_low": 0.03, "ci_high": 0.11, "n_clusters": 40}, "<=", 0.07)
    assert on["verdict"] == "INCONCLUSIVE" and on["needed"]["more"] is None
    assert _gate({"estimate": 0.05, "ci_low": 0.01, "ci_high": 0.08, "n_clusters": 40}, "<=", 0.1)["needed"] is None


def test_uninformative_figure_never_passes() -> None:
    fig = {"estimate": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n_clusters": 40, "uninformative": True}
    r = _gate(fig, "<=", 0.1)
    assert r["verdict"] == "ERROR" and r["passed"] is False and "uninformative" in r["error"]


def test_few_clusters_warn_beside_the_ci() -> None:
    from audit.gates.lines import gate_line

    r = _gate({"estimate": 0.05, "ci_low": 0.01, "ci_high": 0.08, "n_clusters": 3}, "<=", 0.1)
    assert r["verdict"] == "PASS" and any("only 3 prompts" in w for w in r["warnings"])
    assert "(n=3)" in gate_line(r) and "warning: only 3 prompts" in gate_line(r)


def test_on_inconclusive_policy_sets_the_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from audit.gates.evaluate import verdict_of
    from audit.summary.build import build_summary
    from audit.summary.read import all_gate_results

    # a tiny planted gap on few sets: the gap gate straddles 0.1
    run = _run(tmp_path, [{"metric": "gap(sentiment, gender)", "op": "<=", "threshold": 0.1}], gap=0.1)
    policy = tmp_path / "policy.yaml"
    for mode, code in (("fail", 1), ("pass", 0), ("warn", 0)):
        policy.write_text(f"suite_gates: keep\non_inconclusive: {mode}\n")
        summary = build_summary(run, policy, self_audit=False)
        (r,) = all_gate_results(summary)
        assert verdict_of(r) == "INCONCLUSIVE" and r["needed"]["unit"] == "sets"
        g = summary["gates"]
        assert g["n_inconclusive"] == 1 and g["on_inconclusive"] == mode
        assert g["n_pass"] + g["n_fail"] + g["n_inconclusive"] + g["n_error"] == g["n_total"]
        assert main(["gate", str(run), "--policy", str(policy)]) == code
        out = capsys.readouterr().out
        assert "INCONCLUSIVE" in out and "more sets would decide this" in out


def test_verdict_of_reads_old_summaries() -> None:
    from audit.gates.evaluate import verdict_of

    assert verdict_of({"passed": True}) == "PASS"
    assert verdict_of({"passed": False}) == "FAIL"
    assert verdict_of({"passed": False, "error": "x"}) == "ERROR"
    assert verdict_of({"passed": False, "verdict": "INCONCLUSIVE"}) == "INCONCLUSIVE"


def test_reports_show_inconclusive_with_what_it_would_take(tmp_path: Path) -> None:
    from audit.report import render_html, render_markdown
    from audit.store.run_store import read_manifest
    from audit.summary.build import build_summary

    run = _run(tmp_path, [{"metric": "gap(sentiment, gender)", "op": "<=", "threshold": 0.1}], gap=0.1)
    summary = build_summary(run, self_audit=False)
    md = render_markdown(summary, read_manifest(run))
    html = render_html(summary, read_manifest(run))
    for text in (md, html):
        assert "INCONCLUSIVE" in text and "what it would take: ≈" in text and "more sets would decide this" in text


def test_a_small_limit_is_warned_about(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gate = {"metric": "gap(sentiment, gender)", "op": "<=", "threshold": 0.1}
    run = write_run(tmp_path / "few", {"bias": suite_manifest(gates=[gate])}, counterfactual_records(n_pairs=4))
    assert main(["gate", str(run)]) == 1
    out = capsys.readouterr().out
    assert "INCONCLUSIVE" in out and "fewer than 10 prompts/sets (as few as 4" in out and "lm-audit plan" in out


def test_no_built_in_gate_is_judged_on_the_point_estimate() -> None:
    """Every default gate of the shipped suites is three-valued on its CI (#24 item 2)."""
    import yaml

    from audit.suites import BUILTIN_SUITES_DIR

    paths = sorted(BUILTIN_SUITES_DIR.glob("*.yaml"))
    assert len(paths) >= 9
    bounds = {(p.stem, g["metric"]): g.get("bound", "conservative")
              for p in paths for g in yaml.safe_load(p.read_text(encoding="utf-8")).get("gates") or []}
    assert ("stereotype-likelihood", "crows_pairs_pct_stereotype") in bounds and ("bbq", "bbq.bias_ambig") in bounds
    assert {k: b for k, b in bounds.items() if b != "conservative"} == {}
    # a CrowS-Pairs figure across 60 is INCONCLUSIVE now, where the point estimate said FAIL
    crows = _gate({"estimate": 61.11, "ci_low": 53.81, "ci_high": 67.95, "n_clusters": 54}, "<=", 60)
    assert crows["verdict"] == "INCONCLUSIVE" and crows["bound"] == "ci_high"


def test_a_user_gate_on_the_point_estimate_says_it_is_no_statistical_verdict() -> None:
    from audit.export.junit import gate_message
    from audit.gates.lines import gate_line, gate_note

    r = _gate({"estimate": 0.3, "ci_low": -0.125, "ci_high": 0.7, "n_clusters": 40}, "<=", 0.3, bound="estimate")
    assert r["verdict"] == "PASS" and r["bound"] == "estimate"
    for text in (gate_line(r), gate_note(r), gate_message(r)):
        assert "point estimate: not a statistical verdict" in text, text
    on_ci = _gate({"estimate": 0.3, "ci_low": -0.125, "ci_high": 0.7, "n_clusters": 40}, "<=", 0.8)
    assert "not a statistical verdict" not in gate_line(on_ci) + gate_note(on_ci)
