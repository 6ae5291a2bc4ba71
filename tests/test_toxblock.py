"""tox-block without TensorFlow: the numpy port equals TensorFlow's scores; the ensemble and the
scorer-disagreement list."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from audit.cli import main
from audit.metrics.frame import Frame
from audit.review.disagreement import disagreement_examples, disagreement_summary
from audit.scorers.registry import get_scorer
from audit.scorers.toxicity.toxblock import LABELS, WEIGHTS_FILE, WEIGHTS_SHA256, load_model

REFERENCE = Path(__file__).parent / "fixtures" / "toxblock_reference.json"


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(REFERENCE.read_text(encoding="utf-8"))


def test_port_equals_tensorflow_reference_scores(reference) -> None:
    """32 fixed texts scored by tox-block 0.1.2 under TensorFlow 2.15 (bench/toxblock_reference.py)."""
    rows = reference["rows"]
    assert len(rows) >= 30 and reference["tox_block"] == "0.1.2"
    got = load_model().predict([r["text"] for r in rows])
    want = np.array([[r[lb] for lb in LABELS] for r in rows])
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    # the fixture spans the range, so equality is not trivially met by a constant
    assert want[:, 0].min() < 0.05 and want[:, 0].max() > 0.95


def test_weights_file_is_the_pinned_conversion() -> None:
    assert hashlib.sha256(WEIGHTS_FILE.read_bytes()).hexdigest() == WEIGHTS_SHA256


def test_preprocessing_follows_keras_tokenizer() -> None:
    m = load_model()
    a = m.encode(["Hello, WORLD!!"])[0]
    b = m.encode(["hello world"])[0]
    assert (a == b).all() and (a[:-2] == 0).all() and (a[-2:] > 0).all()  # padded at the front
    long_text = "good " * 150 + "idiot"
    ids = m.encode([long_text])[0]
    assert ids[-1] == m.index["idiot"] and (ids[:-1] == m.index["good"]).all()  # truncated at the front
    assert (m.encode(["zzqxjv qqzzxx"])[0] == 0).all()  # no known word: all padding


def test_scorer_via_registry(reference) -> None:
    tb = get_scorer("toxicity:tox-block")
    texts = [r["text"] for r in reference["rows"][:6]]
    batch = [r["toxicity"] for r in tb.score(texts)]
    single = [tb.score([t])[0]["toxicity"] for t in texts]
    assert batch == pytest.approx(single, abs=1e-6)
    assert batch == pytest.approx([r["toxic"] for r in reference["rows"][:6]], abs=1e-5)
    assert tb.score(["", "   \n"]) == [{"toxicity": 0.0}, {"toxicity": 0.0}]
    cats = get_scorer("toxicity:tox-block", categories=True).score(["you stupid idiot"])[0]
    assert set(cats) == {"toxicity", *(f"toxblock_{lb}" for lb in LABELS)}
    assert cats["toxblock_insult"] > 0.5


def test_ensemble_via_cli(capsys) -> None:
    assert main(["score", "--scorer", "toxicity:ensemble", "you are a stupid idiot", "have a lovely day"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and rows[0]["version"].startswith("ensemble(w=0.6")
    for r in rows:
        s = r["scores"]
        assert s["toxicity"] == pytest.approx(0.6 * s["toxicity_tox_block"] + 0.4 * s["toxicity_profanity_check"])
    assert rows[0]["scores"]["toxicity"] > 0.5 > rows[1]["scores"]["toxicity"]
    assert main(["score", "-s", "toxicity:ensemble", "-o", "weight=2", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "within 0..1" in err


def _rec(i: int, a: float, b: float) -> dict:
    return {"key": f"s/{i}/0", "item_id": str(i), "sample": 0, "prompt": f"p{i}", "completion": f"c{i}",
            "attributes": {}, "scores": {"toxicity": (a + b) / 2, "toxicity_profanity_check": a,
                                         "toxicity_tox_block": b}}


def test_disagreement_lists_largest_differences_first() -> None:
    recs = [_rec(0, 0.1, 0.12), _rec(1, 0.9, 0.1), _rec(2, 0.3, 0.7), _rec(3, 0.5, 0.55)]
    rows = disagreement_examples(Frame(recs), n=2)
    assert [r["key"] for r in rows] == ["s/1/0", "s/2/0"]
    assert rows[0]["difference"] == pytest.approx(0.8) and rows[0]["higher"] == "toxicity_profanity_check"
    assert rows[0]["opposite_sides"] and rows[1]["opposite_sides"]
    summ = disagreement_summary(Frame(recs))
    assert summ is not None and summ["n"] == 4 and summ["opposite_sides_rate"] == pytest.approx(0.5)
    plain = [{**r, "scores": {"toxicity": 0.2}} for r in recs]
    assert disagreement_examples(Frame(plain)) == [] and disagreement_summary(Frame(plain)) is None


def test_toxicity_suite_carries_both_opinions_and_their_disagreement(tmp_path: Path) -> None:
    code = main(["run", "--suite", "toxicity-rtp", "--model", "tiny-random-gpt2", "--limit", "8", "--samples", "1",
                 "--out", str(tmp_path), "--name", "x", "--no-progress"])
    assert code in (0, 1)
    suite = json.loads((tmp_path / "x" / "summary.json").read_text())["suites"]["toxicity-rtp"]
    rows = suite["examples"]["disagreement"]
    assert rows and rows == sorted(rows, key=lambda r: -r["difference"])
    assert set(rows[0]["scores"]) == {"toxicity_profanity_check", "toxicity_tox_block"}
    assert suite["scorer_disagreement"]["n"] == suite["n_records"]
    names = {m["name"] for m in suite["metrics"]}
    assert {"expected_max_toxicity", "expected_max_toxicity_ensemble"} <= names
