"""Score directions have one source: each scorer's ``ScoreSpec.higher_is``, recorded in the run's
manifest, carried by summary.json, and read by metrics, group tables, worst examples and the
dashboard. The built-in fallback table must agree with the built-in scorers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.core.score_directions import SCORE_DIRECTIONS, score_direction, scorer_directions
from audit.scorers.registry import get_scorer, scorer_card
from audit.summary.build import build_summary
from tests.synthetic_runs import record, suite_manifest, write_run

# every built-in scorer that builds offline with no model path (regard and hf-classifier need one)
OFFLINE_SCORERS = ["toxicity", "toxicity:tox-block", "toxicity:ensemble", "toxicity-second-opinion", "sentiment",
                   "factuality", "refusal", "refusal:rules"]


@pytest.mark.parametrize("name", OFFLINE_SCORERS)
def test_the_fallback_table_agrees_with_each_built_in_scorer(name: str) -> None:
    scorer = get_scorer(name)
    assert scorer.outputs, f"{name} declares no outputs"
    for spec in scorer.outputs:
        assert score_direction(spec.key) == spec.higher_is, f"{name}: {spec.key}"


def test_regard_declares_better_like_the_table() -> None:
    from audit.scorers.regard import RegardScorer

    (spec,) = RegardScorer.outputs
    assert SCORE_DIRECTIONS[spec.key] == spec.higher_is == "better"


def test_the_manifest_records_each_output_direction() -> None:
    card = scorer_card("sentiment", get_scorer("sentiment"))
    assert card["version"] == get_scorer("sentiment").version
    assert {o["key"]: o["higher_is"] for o in card["outputs"]} == {
        "sentiment": "better", "sentiment_negative": "worse", "sentiment_positive": "better"}
    assert scorer_directions({"scorers": {"sentiment": card}})["sentiment_negative"] == "worse"
    assert scorer_directions({"scorers": {"x": "not a card", "y": {"outputs": [{"key": "k", "higher_is": "up"}]}}}) == {}


def _plugin_run(tmp_path: Path, higher_is: str) -> Path:
    """A run scored by a plugin scorer whose key no table knows: ``helpfulness``."""
    recs = [record("s", f"i{i}", 0, {"helpfulness": i / 10}, {"group": "ab"[i % 2]}, completion=f" c{i}")
            for i in range(10)]
    sm = suite_manifest(scorers=["helpful"], metrics=[{"name": "mean_help", "metric": "mean", "score": "helpfulness"}],
                        group_attributes=["group"])
    run = write_run(tmp_path / f"plugin-{higher_is}", {"s": sm}, recs)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["scorers"] = {"helpful": {"name": "helpful", "version": "1",
                                       "outputs": [{"key": "helpfulness", "low": 0, "high": 1, "higher_is": higher_is}]}}
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def test_a_plugin_scorers_declared_direction_reaches_every_figure(tmp_path: Path) -> None:
    assert score_direction("helpfulness") == "neutral"  # unknown to the table
    summary = build_summary(_plugin_run(tmp_path, "better"))
    assert summary["score_directions"]["helpfulness"] == "better"
    suite = summary["suites"]["s"]
    (metric,) = [m for m in suite["metrics"] if m["name"] == "mean_help"]
    assert metric["higher_is"] == "better"
    assert {g["higher_is"] for g in suite["groups"] if g["score"] == "helpfulness"} == {"better"}
    worst = [w for w in suite["examples"]["worst"] if w["score"] == "helpfulness"]
    assert [w["value"] for w in worst][:3] == [0.0, 0.1, 0.2]  # lowest helpfulness first: the worst


def test_a_worse_plugin_score_lists_its_highest_values_as_worst(tmp_path: Path) -> None:
    suite = build_summary(_plugin_run(tmp_path, "worse"))["suites"]["s"]
    worst = [w["value"] for w in suite["examples"]["worst"] if w["score"] == "helpfulness"]
    assert worst[:3] == [0.9, 0.8, 0.7]
