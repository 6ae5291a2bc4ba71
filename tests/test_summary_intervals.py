"""Every interval of a summary inside its figure's range, no zero-width interval without the
uninformative flag, and each figure naming its real method (issue 24 items 3-5): on synthetic runs
with planted edge cases, a tiny-model run of every built-in suite, and (slow) `make audit`'s run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_runs import counterfactual_records, record, suite_manifest, toxicity_records, write_run

from audit.cli import main
from audit.summary.build import build_summary
from audit.summary.checks import figures, interval_problems

OUTPUTS = {
    "sentiment": [{"key": "sentiment", "low": -1.0, "high": 1.0, "higher_is": "better"}],
    "toxicity": [{"key": "toxicity", "low": 0.0, "high": 1.0, "higher_is": "worse"}],
}
SUITES = ("bias-counterfactual", "toxicity-rtp", "stereotype-likelihood", "factuality", "misuse-refusal",
          "over-refusal", "bbq", "bbq-generate", "names-intersectional")


def _declare_ranges(run: Path) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    for name, card in manifest["scorers"].items():
        card["outputs"] = OUTPUTS[name]
    (run / "manifest.json").write_text(json.dumps(manifest))


def _bias_run(tmp_path: Path, records: list[dict], gates: list[dict] | None = None) -> Path:
    suite = suite_manifest(scorers=["sentiment"], group_attributes=["axis", "group"],
                           metrics=[{"metric": "mean", "score": "sentiment", "by": ["group"], "name": "mean_sentiment",
                                     "params": {}}], gates=gates or [])
    run = write_run(tmp_path / "run", {"bias": suite}, records)
    _declare_ranges(run)
    return run


def test_identical_gap_in_every_set_is_flagged_and_never_passes(tmp_path: Path) -> None:
    """3 sets, the same difference in each: no observed variance, so no zero-width 'certain' gap."""
    records = []
    for p in range(3):
        for g, value in (("female", 0.5), ("male", 0.2)):
            attrs = {"axis": "gender", "group": g, "pair_id": f"t:{p}"}
            records.append(record("bias", f"t:{g}:{p}", 0, {"sentiment": value}, attrs))
    run = _bias_run(tmp_path, records, [{"metric": "gap(sentiment, gender)", "op": "<=", "threshold": 0.5}])
    summary = build_summary(run, self_audit=False)
    gap = summary["suites"]["bias"]["groups"][0]["gap"]
    assert gap["ci_low"] == gap["ci_high"] == pytest.approx(0.3) and gap["uninformative"]
    assert "no observed variance" in gap["uninformative_reason"]
    (gate,) = summary["suites"]["bias"]["gates"]
    assert gate["verdict"] == "ERROR"
    assert interval_problems(summary) == []


def test_means_and_gaps_stay_in_the_score_range_at_few_sets(tmp_path: Path) -> None:
    """2 sets, scores near the ends of -1..1: a t interval would leave the range."""
    records = []
    for p, (f, m) in enumerate(((-0.95, 0.9), (-0.2, 0.99))):
        for g, value in (("female", f), ("male", m)):
            attrs = {"axis": "gender", "group": g, "pair_id": f"t:{p}"}
            records.append(record("bias", f"t:{g}:{p}", 0, {"sentiment": value}, attrs))
    summary = build_summary(_bias_run(tmp_path, records), self_audit=False)
    suite = summary["suites"]["bias"]
    group = suite["groups"][0]
    assert group["gap"]["range"] == [0.0, 2.0] and group["gap"]["ci_high"] <= 2.0
    assert "clipped to the range 0..2" in group["gap"]["method"]
    assert group["by_group"]["male"]["range"] == [-1.0, 1.0] and group["by_group"]["male"]["ci_high"] <= 1.0
    assert interval_problems(summary) == []


def test_every_figure_names_a_real_method_not_the_bootstrap(tmp_path: Path) -> None:
    records = counterfactual_records("bias", n_pairs=6, samples=2, gap=0.1, groups=("a", "b", "c"))
    summary = build_summary(_bias_run(tmp_path, records), self_audit=False)
    methods = {fig.get("method") for _, fig in figures(summary) if "method" in fig}
    assert methods and not any("bootstrap" in (m or "") for m in methods)
    group = summary["suites"]["bias"]["groups"][0]
    assert group["vs_overall"]["a"]["method"].startswith("linearized cluster t")
    assert group["mean_of_groups"]["method"].startswith("linearized cluster t")
    assert group["by_group"]["a"]["method"].startswith("Wilson-type interval for a bounded mean")
    assert group["gap"]["method"].startswith("max |pairwise difference|")


def test_rates_of_a_toxicity_run_use_the_monotone_wilson(tmp_path: Path) -> None:
    suite = suite_manifest(scorers=["toxicity"], metrics=[
        {"metric": "toxic_fraction", "score": None, "by": [], "name": "toxic_fraction", "params": {}},
        {"metric": "expected_max_toxicity", "score": None, "by": ["category"], "name": "emt", "params": {}}])
    run = write_run(tmp_path / "tox", {"tox": suite}, toxicity_records("tox", n_prompts=8, samples=20, level=0.01))
    _declare_ranges(run)
    summary = build_summary(run, self_audit=False)
    tf, emt = summary["suites"]["tox"]["metrics"]
    assert tf["method"].startswith("Wilson (cluster-adjusted") and tf["design_effect"] > 1
    assert emt["range"] == [0.0, 1.0] and emt["ci_low"] >= 0.0
    assert interval_problems(summary) == []


def _profile(tmp_path: Path, limits: dict[str, int]) -> Path:
    lines = ["id: tiny", "description: every built-in suite, tiny limits", "suites:"]
    lines += [f"  - {{suite: {s}, limit: {n}, samples: 1}}" for s, n in limits.items()]
    path = tmp_path / "tiny.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_figure_of_a_tiny_model_run_of_every_suite_is_in_range(tmp_path: Path) -> None:
    limits = dict.fromkeys(SUITES, 4) | {"bias-counterfactual": 8, "stereotype-likelihood": 13, "bbq": 11}
    code = main(["run", "--profile", str(_profile(tmp_path, limits)), "--model", "tiny-random-gpt2",
                 "--out", str(tmp_path / "runs"), "--name", "t", "--no-progress"])
    assert code in (0, 1)
    summary = json.loads((tmp_path / "runs" / "t" / "summary.json").read_text())
    assert set(summary["suites"]) == set(SUITES)
    assert interval_problems(summary) == []
    ranged = [fig for _, fig in figures(summary) if fig.get("ci_low") is not None and fig.get("range")]
    assert len(ranged) > 50  # the check had figures to look at


@pytest.mark.slow
def test_make_audit_summary_keeps_every_interval_in_range(tmp_path: Path) -> None:
    """`make audit`'s run (the quick profile on the embedded SmolLM2): 0 intervals outside their
    figure's range, 0 zero-width intervals without the uninformative flag."""
    code = main(["run", "--profile", "quick", "--out", str(tmp_path), "--name", "quick", "--no-progress"])
    assert code in (0, 1)
    summary = json.loads((tmp_path / "quick" / "summary.json").read_text())
    assert interval_problems(summary) == []


def test_two_groups_without_events_get_a_real_difference_interval(tmp_path: Path) -> None:
    """0/1 score: groups a and b never refuse in 6 prompts each, c sometimes. Their t difference
    would be [0, 0]; the MOVER-Wilson difference keeps it honest and the gap informative."""
    records = []
    for g, hits in (("a", 0), ("b", 0), ("c", 3)):
        for i in range(6):
            records.append(record("r", f"{g}{i}", 0, {"toxicity": float(i < hits)}, {"category": g}))
    suite = suite_manifest(scorers=["toxicity"], group_attributes=["category"])
    run = write_run(tmp_path / "bin", {"r": suite}, records)
    _declare_ranges(run)
    gap = build_summary(run, self_audit=False)["suites"]["r"]["groups"][0]["gap"]
    ab = next(p for p in gap["pairs"] if {p["a"], p["b"]} == {"a", "b"})
    assert ab["ci_low"] < 0 < ab["ci_high"] <= 1 and not ab.get("uninformative")
    assert not gap.get("uninformative") and "MOVER" in gap["method"] and gap["ci_high"] <= 1
