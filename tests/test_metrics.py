"""Suite metrics against hand-computed values, and group comparisons on planted effects."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_runs import counterfactual_records, record, suite_manifest

from audit.gates.evaluate import StatsSettings
from audit.metrics.registry import METRICS, Frame, compute_metric
from audit.summary.suite import summarize_suite

STATS = StatsSettings(resamples=500, permutations=2000, seed=0)


def _point(name: str, frame: Frame, score: str | None = None, **params: object) -> dict[str, float]:
    parts = compute_metric(name, frame, frame.all_mask(), score, params)
    return {p.name: float(p.fn(p.columns.sum(0))) for p in parts}


def _tox_frame() -> Frame:
    # prompt a: samples 0.1, 0.7 ; prompt b: 0.2, 0.3 ; prompt c: 0.9, None
    rows = [("a", 0, 0.1), ("a", 1, 0.7), ("b", 0, 0.2), ("b", 1, 0.3), ("c", 0, 0.9), ("c", 1, None)]
    return Frame([record("tox", i, s, {"toxicity": v}) for i, s, v in rows])


def test_every_metric_has_a_documentation_card() -> None:
    expected = {
        "mean",
        "rate",
        "expected_max_toxicity",
        "toxicity_probability",
        "toxic_fraction",
        "pct_stereotype",
        "stereoset",
        "accuracy",
        "refusal_rate",
    }
    assert expected <= set(METRICS)
    for m in METRICS.values():
        assert len(m.doc) > 40 and ("better" in m.doc.lower() or "ideal" in m.doc), m.name


def test_toxicity_metrics_known_values() -> None:
    f = _tox_frame()
    assert _point("expected_max_toxicity", f)[""] == pytest.approx((0.7 + 0.3 + 0.9) / 3)
    assert _point("toxicity_probability", f)[""] == pytest.approx(2 / 3)
    assert _point("toxic_fraction", f)[""] == pytest.approx(2 / 5)  # None is not a sample
    assert _point("mean", f, "toxicity")[""] == pytest.approx((0.1 + 0.7 + 0.2 + 0.3 + 0.9) / 5)
    assert _point("rate", f, "toxicity", threshold=0.25)[""] == pytest.approx(3 / 5)
    emt = compute_metric("expected_max_toxicity", f, f.all_mask())[0]
    assert emt.extra["std"] == pytest.approx(np.std([0.7, 0.3, 0.9], ddof=1))
    assert emt.n == 3


def test_samples_of_one_prompt_form_one_resampling_cluster() -> None:
    f = _tox_frame()
    assert f.n_clusters == 3
    assert (f.cluster[f.item == f.item[0]] == f.cluster[0]).all()


def test_counterfactual_sets_are_the_resampling_unit() -> None:
    recs = counterfactual_records(n_pairs=6, samples=2)
    f = Frame(recs)
    assert f.n_items == 12 and f.n_clusters == 6


def test_pct_stereotype_and_stereoset_known_values() -> None:
    rows = [  # (stereotype, anti, unrelated)
        (-10.0, -12.0, -20.0),  # prefers stereotype; both beat unrelated
        (-15.0, -11.0, -13.0),  # prefers anti; stereo loses to unrelated, anti wins
        (-9.0, -10.0, -5.0),  # prefers stereotype; both lose to unrelated
        (-8.0, -9.0, -30.0),  # prefers stereotype; both win
    ]
    recs = [
        record("ss", str(i), 0, {"ll_stereotype": s, "ll_anti_stereotype": a, "ll_unrelated": u})
        for i, (s, a, u) in enumerate(rows)
    ]
    f = Frame(recs)
    assert _point("pct_stereotype", f)[""] == pytest.approx(75.0)
    got = _point("stereoset", f)
    ss, lms = 75.0, 100 * (2 + 1 + 0 + 2) / 8
    assert got["ss"] == pytest.approx(ss)
    assert got["lms"] == pytest.approx(lms)
    assert got["icat"] == pytest.approx(lms * min(ss, 100 - ss) / 50)


def test_accuracy_and_refusal_rate() -> None:
    recs = [
        record("q", str(i), 0, {"factual": v, "refusal": r})
        for i, (v, r) in enumerate([(1, 1), (0, 0), (1, 1), (1, 0)])
    ]
    f = Frame(recs)
    assert _point("accuracy", f)[""] == pytest.approx(0.75)
    assert _point("refusal_rate", f)[""] == pytest.approx(0.5)


def test_unknown_metric_and_missing_score_raise_clear_errors() -> None:
    f = _tox_frame()
    with pytest.raises(KeyError, match="unknown metric"):
        compute_metric("nope", f, f.all_mask())
    with pytest.raises(ValueError, match="needs a 'score'"):
        compute_metric("mean", f, f.all_mask())


def _bias_summary(gap: float, seed: int) -> dict:
    recs = counterfactual_records(n_pairs=50, samples=2, gap=gap, seed=seed)
    sm = suite_manifest(
        samples=2,
        metrics=[{"metric": "mean", "score": "sentiment", "by": ["group"], "name": "mean_sentiment"}],
    )
    return summarize_suite("bias", sm, recs, {"seed": 0, "scorers": {}}, STATS)


def test_planted_gap_is_found() -> None:
    s = _bias_summary(gap=0.25, seed=1)
    (g,) = s["groups"]
    assert g["attribute"] == "gender" and g["score"] == "sentiment"
    assert g["gap"]["min_group"] == "female" and g["gap"]["max_group"] == "male"
    assert g["gap"]["ci_low"] <= 0.25 <= g["gap"]["ci_high"]
    assert g["vs_overall"]["female"]["ci_high"] < 0
    assert g["gap"]["p_value"] < 0.01 and "within 50 counterfactual sets" in g["gap"]["test"]
    (t,) = s["tests"]
    assert t["p_holm"] < 0.01
    assert t["mean_diff"] < 0 and t["effect_size"] < -0.5
    assert t["n_pairs"] == 50


def test_null_gap_is_not_found() -> None:
    s = _bias_summary(gap=0.0, seed=1)
    (g,) = s["groups"]
    assert g["vs_overall"]["female"]["ci_low"] < 0 < g["vs_overall"]["female"]["ci_high"]
    assert g["gap"]["p_value"] > 0.05
    (t,) = s["tests"]
    assert t["p_value"] > 0.05
    assert abs(t["effect_size"]) < 0.3


def test_every_group_figure_carries_a_ci_and_the_protocol() -> None:
    s = _bias_summary(gap=0.1, seed=2)
    g = s["groups"][0]
    cells = [*g["by_group"].values(), g["overall"], g["gap"], *g["vs_overall"].values()]
    for c in cells:
        assert c["ci_low"] is not None and c["ci_high"] is not None
        assert c["ci_low"] <= c["estimate"] <= c["ci_high"]
    assert "k=2" in g["protocol"] and "T=1.0" in g["protocol"]
    m = s["metrics"][0]
    assert set(m["by"]["group"]) == {"female", "male"}
    assert "k=2, 20 tokens" in m["protocol"]


def test_holm_is_applied_across_the_suites_tests() -> None:
    recs = counterfactual_records(n_pairs=30, gap=0.2, seed=3, groups=("a", "b", "c"))
    s = summarize_suite("bias", suite_manifest(), recs, {"seed": 0}, STATS)
    tests = s["tests"]
    assert len(tests) == 3  # a-b, a-c, b-c
    ps = sorted((t["p_value"], t["p_holm"]) for t in tests)
    assert ps[0][1] == pytest.approx(min(1.0, 3 * ps[0][0]), rel=1e-3)
    assert all(h >= p for p, h in ps)


def test_summary_is_reproducible_under_a_seed() -> None:
    a = _bias_summary(gap=0.1, seed=4)
    b = _bias_summary(gap=0.1, seed=4)
    assert a["groups"] == b["groups"] and a["tests"] == b["tests"]


def test_data_suite_gap_is_tested_across_prompts() -> None:
    from synthetic_runs import toxicity_records

    recs = toxicity_records(n_prompts=80, samples=3, seed=5)
    for r in recs:
        if r["attributes"]["category"] == "threat":
            r["scores"]["toxicity"] = min(1.0, r["scores"]["toxicity"] + 0.2)
    sm = suite_manifest(scorers=["toxicity"], group_attributes=["category"], samples=3)
    (g,) = summarize_suite("tox", sm, recs, {"seed": 0}, STATS)["groups"]
    assert g["gap"]["max_group"] == "threat"
    assert g["gap"]["p_value"] < 0.01 and "across 80 prompts" in g["gap"]["test"]
    null = summarize_suite("tox", sm, toxicity_records(n_prompts=80, samples=3, seed=5), {"seed": 0}, STATS)
    assert null["groups"][0]["gap"]["p_value"] > 0.05
