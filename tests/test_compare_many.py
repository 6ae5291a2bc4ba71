"""``lm-audit compare`` with two and more runs, as a user reads it: a ranked table with significance
letters, A and B on the shared items with n_shared, items only some runs hold reported, no PASS
without thresholds, damaged runs refused, scorer version changes flagged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synthetic_runs import counterfactual_records, record, suite_manifest, write_run

from audit.cli import main
from audit.compare import compare_many
from audit.compare.report import compare_runs
from audit.gates.evaluate import StatsSettings

FAST = StatsSettings(resamples=300, permutations=1000)


def _suites() -> dict:
    return {
        "refuse": suite_manifest(
            scorers=["refusal"], group_attributes=["category"], metrics=[{"metric": "refusal_rate"}]
        ),
        "bias": suite_manifest(metrics=[{"metric": "mean", "score": "sentiment", "name": "mean_sentiment"}]),
    }


def _refusals(rates: dict[str, float], n: int = 80, seed: int = 0) -> dict[str, list[dict]]:
    """0/1 refusal outcomes per model on the same n prompts, correlated through a prompt effect."""
    rng = np.random.default_rng(seed)
    base = rng.random(n)
    out: dict[str, list[dict]] = {}
    for model, rate in rates.items():
        noise = rng.random(n)
        refused = (0.5 * base + 0.5 * noise) < rate
        out[model] = [
            record("refuse", f"p{i}", 0, {"refusal": float(refused[i])}, {"category": "cat" + str(i % 2)})
            for i in range(n)
        ]
    return out


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("many")
    refusals = _refusals({"A": 0.25, "B": 0.27, "C": 0.75})
    refusals["C"] = refusals["C"][5:]  # C misses p0..p4
    runs = []
    for name, gap in (("A", 0.0), ("B", 0.0), ("C", 0.0)):
        recs = refusals[name] + counterfactual_records(gap=gap, seed=1)
        runs.append(write_run(root / f"run-{name}", _suites(), recs, model=f"model-{name}"))
    return runs


def _figure(result: dict, suite: str, name: str) -> dict:
    return next(f for f in result["suites"][suite]["figures"] if f["figure"] == name)


def test_three_runs_are_ranked_with_significance_letters(three: list[Path]) -> None:
    res = compare_many(three, FAST)
    fig = _figure(res, "refuse", "refusal_rate")
    assert fig["kind"] == "binary" and fig["n_shared"] == 75
    ranked = [(m["run"], m["rank"], m["letters"]) for m in fig["models"]]
    assert ranked[0] == ("run-C", 1, "a")  # refuses most: best on misuse prompts
    (_, _, la), (_, _, lb) = ranked[1:]
    assert la == lb == "b"  # A and B do not differ significantly; both differ from C
    for m in fig["models"]:
        assert m["n"] == 75 and m["ci_low"] < m["estimate"] < m["ci_high"]
    pairs = {(p["a"], p["b"]): p for p in fig["pairwise"]}
    assert set(pairs) == {("run-A", "run-B"), ("run-A", "run-C"), ("run-B", "run-C")}
    ac = pairs[("run-A", "run-C")]
    assert ac["test"] == "Newcombe hybrid score interval" and ac["exact_test"]["test"] == "mcnemar-exact"
    assert ac["significant"] and ac["p_holm"] >= ac["p_value"]
    assert ac["delta"] == pytest.approx(ac["est_b"] - ac["est_a"]) and ac["ci_low"] > 0
    assert not pairs[("run-A", "run-B")]["significant"]
    # the items only some runs hold are reported, with which runs hold them
    cov = res["suites"]["refuse"]["coverage"]
    assert cov["n_shared_items"] == 75 and cov["n_items"] == {"run-A": 80, "run-B": 80, "run-C": 75}
    assert cov["not_shared"] == [{"runs": ["run-A", "run-B"], "n_items": 5, "examples": [f"p{i}" for i in range(5)]}]
    json.dumps(res)  # plain data


def test_compare_cli_prints_the_ranked_table_and_no_pass_without_thresholds(
    three: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "fast.yaml"
    policy.write_text("stats: {resamples: 300, permutations: 1000}\n")
    out = tmp_path / "cmp"
    assert main(["compare", *map(str, three), "--policy", str(policy), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("refusal_rate"))
    assert "n_shared=75" in line
    assert line.index("run-C") < line.index("run-A") and "] a" in line and "] b" in line
    assert "items only in run-A, run-B: 5" in text
    assert "PASS" not in text
    assert text.rstrip().splitlines()[-2].startswith("compare: ") and "no thresholds set" in text
    saved = json.loads((out / "compare.json").read_text())
    assert saved["kind"] == "compare-many" and len(saved["runs"]) == 3
    md = (out / "compare.md").read_text()
    assert "| refusal_rate | higher | 75 | run-C:" in md
    # with a threshold, later runs are judged against the first
    code = main(["compare", *map(str, three), "--policy", str(policy), "--max-regression", "refusal_rate=0.5"])
    assert code == 0 and "compare: PASS" in capsys.readouterr().out


def test_two_runs_show_a_and_b_on_the_shared_items(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Run A also holds 40 prompts B lacks, all refused: A's full-run rate is far above its rate on
    the shared prompts. A, B and the delta must all use the shared prompts (the old compare printed
    A on the full run, so the printed A -> B and the delta could disagree in sign)."""
    rates = _refusals({"A": 0.3, "B": 0.4}, n=80, seed=4)
    extra = [record("refuse", f"x{i}", 0, {"refusal": 1.0}, {"category": "cat0"}) for i in range(40)]
    a = write_run(tmp_path / "A", {"refuse": _suites()["refuse"]}, rates["A"] + extra)
    b = write_run(tmp_path / "B", {"refuse": _suites()["refuse"]}, rates["B"])
    res = compare_runs(a, b, FAST)
    r = next(f for f in res["suites"]["refuse"]["figures"] if f["figure"] == "refusal_rate")
    shared_a = np.mean([x["scores"]["refusal"] for x in rates["A"]])
    shared_b = np.mean([x["scores"]["refusal"] for x in rates["B"]])
    assert r["n_shared"] == 80 and r["n_a"] == 120 and r["n_b"] == 80
    assert r["a"] == pytest.approx(shared_a) and r["b"] == pytest.approx(shared_b)
    assert r["a_all"] > r["a"]  # the full run would have said A refuses more than B
    assert r["delta"] == pytest.approx(r["b"] - r["a"]) and r["delta"] > 0
    assert r["ci_low"] <= r["delta"] <= r["ci_high"]
    assert any("40 only in A" in w for w in res["suites"]["refuse"]["warnings"])
    assert main(["compare", str(a), str(b)]) == 0
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if "refusal_rate" in ln)
    assert f"A {r['a']:.3f} -> B {r['b']:.3f} (n_shared=80)" in line and "Newcombe hybrid score interval" in line
    assert "decided by the 95% CI of the worsening" in line
    assert text.rstrip().endswith("figures, no thresholds set") and "PASS" not in text


def test_damaged_or_empty_runs_never_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_run(tmp_path / "good", {"bias": _suites()["bias"]}, counterfactual_records(seed=1))
    torn = write_run(tmp_path / "torn", {"bias": _suites()["bias"]}, counterfactual_records(seed=2))
    with (torn / "records.jsonl").open("a") as fh:
        fh.write("{not json\n")
        fh.write(json.dumps(counterfactual_records(seed=3)[0] | {"key": "bias/extra/0"}) + "\n")
    empty = write_run(tmp_path / "empty", {"bias": _suites()["bias"]}, [])
    for bad in (torn, empty):
        capsys.readouterr()
        assert main(["compare", str(good), str(bad), "--max-regression", "*=1"]) == 1
        captured = capsys.readouterr()
        assert "PASS" not in captured.out
        err = captured.err.strip().splitlines()
        assert len(err) == 1 and "cannot be compared" in err[0] and str(bad) in err[0]
    # a run the store reader marked damaged in summary.json is refused too
    marked = write_run(tmp_path / "marked", {"bias": _suites()["bias"]}, counterfactual_records(seed=1))
    (marked / "summary.json").write_text(json.dumps({"damaged": {"reason": "2 unreadable lines"}}))
    assert main(["compare", str(good), str(marked), str(good)]) == 1
    assert "2 unreadable lines" in capsys.readouterr().err


def test_different_scorer_versions_are_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path / "a", {"bias": _suites()["bias"]}, counterfactual_records(seed=1))
    b = write_run(tmp_path / "b", {"bias": _suites()["bias"]}, counterfactual_records(seed=1))
    manifest = json.loads((b / "manifest.json").read_text())
    manifest["scorers"]["sentiment"]["version"] = "vader-9.9"
    (b / "manifest.json").write_text(json.dumps(manifest))
    (b / "summary.json").write_text(json.dumps({"scorer_validity": {"sentiment": {"fingerprint": "f2"}}}))
    (a / "summary.json").write_text(json.dumps({"scorer_validity": {"sentiment": {"fingerprint": "f1"}}}))
    res = compare_runs(a, b, FAST)
    assert any("'sentiment' version differs" in w for w in res["warnings"])
    assert any("'sentiment' fingerprint differs" in w for w in res["warnings"])
    assert main(["compare", str(a), str(b)]) == 0
    assert "warning: scorer 'sentiment' version differs" in capsys.readouterr().out


def test_fewer_than_two_runs_is_a_usage_error(three: list[Path]) -> None:
    assert main(["compare", str(three[0])]) == 2


def test_few_shared_prompts_give_no_false_certainty(tmp_path: Path) -> None:
    """The issue's case: runs that share 3 prompts. The old compare printed a tight percentile CI
    excluding 0 beside p = 0.25-0.50; now the interval is a t interval (t(2) = 4.3 standard errors)
    and the p-value comes from the same interval, so they agree, and a warning says how rough it is.
    With no shared prompt and a single set, no zero-width CI."""
    tox = suite_manifest(scorers=["toxicity"], group_attributes=[], metrics=[{"metric": "mean", "score": "toxicity"}])
    rng = np.random.default_rng(5)
    a_recs = [record("tox", f"p{i}", 0, {"toxicity": float(rng.uniform(0.2, 0.3))}) for i in range(40)]
    b_recs = [record("tox", f"p{i}", 0, {"toxicity": a_recs[i]["scores"]["toxicity"] - 0.05 + d})
              for i, d in enumerate((-0.05, 0.0, 0.05))]
    b_recs += [record("tox", f"q{i}", 0, {"toxicity": float(rng.uniform(0.2, 0.3))}) for i in range(37)]
    a = write_run(tmp_path / "a", {"tox": tox}, a_recs)
    b = write_run(tmp_path / "b", {"tox": tox}, b_recs)
    r = compare_runs(a, b, FAST)["suites"]["tox"]["figures"][0]
    assert r["n_shared"] == 3 and r["delta"] == pytest.approx(-0.05)
    assert r["p_value"] >= 0.2 and r["verdict"] == "no significant change" and r["ci_low"] < 0 < r["ci_high"]
    assert r["test"] == "paired cluster bootstrap (300, t on 3 clusters (bootstrap SE))"
    assert any("only 3 shared clusters" in w for w in r["warnings"])
    assert r["ci_high"] - r["ci_low"] > 0
    one = write_run(tmp_path / "one", {"bias": _suites()["bias"]}, counterfactual_records(n_pairs=1, seed=1))
    two = write_run(tmp_path / "two", {"bias": _suites()["bias"]},
                    [x | {"attributes": x["attributes"] | {"pair_id": "other"}} for x in counterfactual_records(n_pairs=1, seed=2)])
    for f in compare_runs(one, two, FAST)["suites"]["bias"]["figures"]:
        assert f["n_shared"] == 0 and f["verdict"] == "no significant change"
        assert f["ci_low"] is None or f["ci_low"] < f["ci_high"]


def test_an_uninformative_run_is_marked_and_never_ranked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """#24 item 7: a random-weights model whose sentiment is always 0 has a gap of 0 by construction.
    The ranked table and compare mark it uninformative and never rank it first (or at all); a
    constant-0 mean gets no rate-style interval; a regression threshold on it fails."""
    real = counterfactual_records(gap=0.3, seed=1)
    flat = [r | {"scores": {"sentiment": 0.0}} for r in counterfactual_records(gap=0.0, seed=2)]
    a = write_run(tmp_path / "real", {"bias": _suites()["bias"]}, real, model="real-model")
    b = write_run(tmp_path / "random", {"bias": _suites()["bias"]}, flat, model="random", random_weights=True)
    res = compare_many([a, b], FAST)
    gap = _figure(res, "bias", "gap(sentiment, gender)")
    by_run = {m["run"]: m for m in gap["models"]}
    assert by_run["random"]["uninformative"] and by_run["random"]["rank"] is None and by_run["random"]["letters"] == ""
    assert by_run["real"]["rank"] == 1 and gap["models"][0]["run"] == "real"
    assert any("uninformative in random" in w for w in gap["warnings"])
    assert not any(p["significant"] for p in gap["pairwise"])
    mean = {m["run"]: m for m in _figure(res, "bias", "mean_sentiment")["models"]}["random"]
    assert mean["uninformative"] and mean["ci_low"] is None and "uninformative" in mean["method"]
    from audit.compare.render import many_lines

    line = next(ln for ln in many_lines(res) if "gap(sentiment, gender)" in ln)
    assert "1. real" in line and "-. random 0.000 (uninformative: constant score, not ranked)" in line
    main(["compare", str(a), str(b)])
    out = capsys.readouterr().out
    assert any("gap(sentiment, gender)" in ln and ln.rstrip().endswith(": uninformative") for ln in out.splitlines()), out
    two = compare_runs(a, b, FAST, max_regression={"gap(sentiment, gender)": 0.05})
    r = next(f for f in two["suites"]["bias"]["figures"] if f["figure"] == "gap(sentiment, gender)")
    assert r["verdict"] == "uninformative" and r["uninformative"] == ["random"] and r["regressed"] is True
    assert any("says nothing" in w for w in r["warnings"]) and not two["passed"]
