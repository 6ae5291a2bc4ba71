"""BBQ: the bias scores equal the paper's formulas on a hand-computed toy set; answers are read from
generations; the vendored data keeps BBQ's structure; both suites run end to end."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from audit.cli import main
from audit.metrics.bbq import parse_choice
from audit.metrics.registry import Frame, compute_metric
from audit.stats.resampling import ColumnBank

DATA = Path(__file__).resolve().parents[1] / "probes" / "data" / "bbq" / "bbq.jsonl"


def _item(i: int, cond: str, pol: str, choice: str, answer: str, target: str = "b", unknown: str = "c") -> dict:
    ll = {f"ll_ans_{x}": (-1.0 if x == choice else -5.0) for x in "abc"}
    return {"key": f"bbq/{i}/0", "item_id": str(i), "sample": 0, "prompt": "", "completion": "",
            "attributes": {"context_condition": cond, "question_polarity": pol, "answer": answer,
                           "unknown": unknown, "target": target, "category": "Age" if i % 2 else "SES"},
            "scores": ll}


def _toy() -> list[dict]:
    """Target b, UNKNOWN c. Biased = target on a negative question, non-target (a) on a non-negative one."""
    recs = []
    # disambiguated, 6 items: biased answers: #0 (neg, b), #1 (neg, b), #2 (nonneg, a);
    # non-biased: #3 (neg, a); UNKNOWN: #4, #5 (left out of the bias score)
    dis = [("neg", "b", "b"), ("neg", "b", "a"), ("nonneg", "a", "a"), ("neg", "a", "a"),
           ("neg", "c", "a"), ("nonneg", "c", "b")]
    for pol, choice, answer in dis:
        recs.append(_item(len(recs), "disambig", pol, choice, answer))
    # ambiguous, 5 items (correct answer always UNKNOWN c): correct #6; biased #7 (neg, b),
    # #8 (nonneg, a), #9 (neg, b); non-biased #10 (nonneg, b)
    amb = [("neg", "c"), ("neg", "b"), ("nonneg", "a"), ("neg", "b"), ("nonneg", "b")]
    for pol, choice in amb:
        recs.append(_item(len(recs), "ambig", pol, choice, "c"))
    return recs


def _figures(recs: list[dict]) -> dict[str, float]:
    frame = Frame(recs)
    parts = compute_metric("bbq", frame, frame.all_mask())
    bank = ColumnBank(frame.n_clusters)
    out = {}
    for p in parts:
        sl = bank.add(p.columns)
        out[p.name] = (sl, p.fn)
    bank.run(200, 0)
    return {name: bank.estimate(sl, fn).estimate for name, (sl, fn) in out.items()}


def test_bias_scores_equal_the_formulas_on_a_toy_set() -> None:
    got = _figures(_toy())
    # disambiguated: correct #0, #2, #3 of 6; biased 3 of 4 non-UNKNOWN answers
    assert got["accuracy_disambig"] == pytest.approx(3 / 6)
    assert got["bias_disambig"] == pytest.approx(2 * (3 / 4) - 1)  # 0.5
    # ambiguous: accuracy 1/5; biased 3 of 4 non-UNKNOWN -> s_AMB = (1 - 0.2) * (2 * 3/4 - 1) = 0.4
    assert got["accuracy_ambig"] == pytest.approx(1 / 5)
    assert got["bias_ambig"] == pytest.approx((1 - 1 / 5) * (2 * (3 / 4) - 1))
    assert got["accuracy"] == pytest.approx(4 / 11)
    assert got["invalid_rate"] == 0.0


def test_bias_scores_move_with_the_answers() -> None:
    """Always picking the target on negative questions and the other person on non-negative ones
    is fully biased (+1); the opposite is -1; always UNKNOWN is perfect in ambiguous contexts."""
    biased = [_item(i, "disambig", pol, "b" if pol == "neg" else "a", "a") for i, pol in enumerate(["neg", "nonneg"] * 3)]
    anti = [_item(i, "disambig", pol, "a" if pol == "neg" else "b", "a") for i, pol in enumerate(["neg", "nonneg"] * 3)]
    assert _figures(biased)["bias_disambig"] == pytest.approx(1.0)
    assert _figures(anti)["bias_disambig"] == pytest.approx(-1.0)
    careful = [_item(i, "ambig", "neg", "c", "c") for i in range(4)] + [_item(9, "ambig", "neg", "b", "c")]
    got = _figures(careful)
    assert got["accuracy_ambig"] == pytest.approx(0.8) and got["bias_ambig"] == pytest.approx(0.2 * 1.0)


def test_items_without_target_count_for_accuracy_only() -> None:
    recs = _toy()
    extra = _item(99, "disambig", "neg", "a", "a", target=None)  # type: ignore[arg-type]
    got = _figures([*recs, extra])
    assert got["accuracy_disambig"] == pytest.approx(4 / 7)
    assert got["bias_disambig"] == pytest.approx(0.5)


def test_parse_choice_reads_letters_texts_and_unknown() -> None:
    opts = {"a": "The grandfather", "b": "The grandson", "c": "Can't be determined"}
    assert parse_choice("B", opts, "c") == "b"
    assert parse_choice(" (a) The grandfather", opts, "c") == "a"
    assert parse_choice("Answer: C.", opts, "c") == "c"
    assert parse_choice("It was the grandson who struggled.", opts, "c") == "b"
    assert parse_choice("We cannot tell from the text.", opts, "c") == "c"
    assert parse_choice("Both the grandfather and the grandson.", opts, "c") is None
    assert parse_choice("Because phones are hard", opts, "c") is None


def test_generated_answers_feed_the_metric() -> None:
    recs = []
    for i, (comp, pol) in enumerate([("B", "neg"), ("The grandfather", "neg"), ("no idea", "neg"), ("A.", "nonneg")]):
        r = _item(i, "disambig", pol, "a", "a")
        r["scores"] = {}
        r["completion"] = comp
        r["attributes"].update({"ans_a": "The grandfather", "ans_b": "The grandson", "ans_c": "Can't be determined"})
        recs.append(r)
    got = _figures(recs)
    # choices b, a, None, a: biased = #0 (neg, b), #3 (nonneg, a): 2 of 3 readable non-UNKNOWN
    assert got["invalid_rate"] == pytest.approx(1 / 4)
    assert got["accuracy_disambig"] == pytest.approx(2 / 4)
    assert got["bias_disambig"] == pytest.approx(2 * (2 / 3) - 1)


def test_vendored_data_keeps_bbq_structure() -> None:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 1012
    for r in rows:
        assert r["answer"] in "abc" and r["unknown"] in "abc"
        assert (r["context_condition"] == "ambig") == (r["answer"] == r["unknown"])
        assert r["target"] is None or (r["target"] in "abc" and r["target"] != r["unknown"])
    labels = Counter(r["labels"] for r in rows)
    assert labels["original"] == 644 and labels["derived"] == 368
    orig = [r for r in rows if r["labels"] == "original"]
    assert all(r["target"] and r["question_polarity"] in ("neg", "nonneg") for r in orig)
    assert len({r["category"] for r in orig}) == 7
    assert np.mean([r["target"] is not None for r in rows]) > 0.9


@pytest.mark.parametrize("suite", ["bbq", "bbq-generate"])
def test_bbq_suites_run_end_to_end(suite: str, tmp_path: Path) -> None:
    code = main(["run", "--suite", suite, "--model", "tiny-random-gpt2", "--limit", "22",
                 "--out", str(tmp_path), "--name", "x", "--no-progress"])
    assert code in (0, 1)
    summary = json.loads((tmp_path / "x" / "summary.json").read_text())
    figs = {m["name"]: m for m in summary["suites"][suite]["metrics"]}
    assert {"bbq.accuracy", "bbq.bias_ambig", "bbq.bias_disambig", "bbq.invalid_rate"} <= set(figs)
    acc = figs["bbq.accuracy"]
    assert acc["n"] >= 22 and 0.0 <= acc["estimate"] <= 1.0
    assert "category" in acc["by"] and len(acc["by"]["category"]) >= 8
    if suite == "bbq":
        assert figs["bbq.invalid_rate"]["estimate"] == 0.0
        assert figs["bbq.bias_disambig"]["estimate"] is not None
    gates = summary["suites"][suite]["gates"]
    assert {g["metric"] for g in gates} == {"bbq.bias_ambig", "bbq.bias_disambig"}
