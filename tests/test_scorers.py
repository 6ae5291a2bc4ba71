"""Embedded scorers on labelled fixtures, the shared input contract (edge cases, batching) and the
registry. Backends that need real or synthetic transformer weights live in test_scorers_backends.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.core.errors import UsageError
from audit.scorers.base import Reference, Scorer
from audit.scorers.registry import available, get_scorer

FIXTURES = Path(__file__).parent / "fixtures" / "scorers"

EDGE_TEXTS = [
    "",
    "   \n\t ",
    "x" * 100_000,
    "word " * 20_000,
    "I love it 😀🔥👍",
    "مرحبا بك في بيتك",  # Arabic (RTL)
    "שלום עולם",  # Hebrew (RTL)
    "zero\u200bwidth\u200djoiner\ufeff",
    "\u202eright-to-left override",
    "You are an idiot.",
]


def _jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines() if line]


EMBEDDED = ["toxicity", "sentiment", "refusal", "factuality"]
PARIS = Reference(correct=["Paris"], incorrect=["Lyon"])


def _score(name: str, texts: list) -> list[dict]:
    scorer = get_scorer(name)
    refs = [PARIS] * len(texts) if scorer.needs_refs else None
    return scorer.score(texts, refs)


# --------------------------------------------------------------------------- shared contract


@pytest.mark.parametrize("name", EMBEDDED)
def test_scorer_card_and_outputs(name: str) -> None:
    scorer = get_scorer(name)
    assert isinstance(scorer, Scorer)
    assert scorer.name == name
    assert scorer.version and scorer.version != "0"
    card = (type(scorer).__doc__ or "").lower()
    assert "range" in card or ".." in card
    assert "limit" in card
    out = _score(name, ["A plain sentence."])[0]
    assert set(out) == {spec.key for spec in scorer.outputs}


@pytest.mark.parametrize("name", EMBEDDED)
def test_edge_cases_get_values_in_range(name: str) -> None:
    scorer = get_scorer(name)
    rows = _score(name, EDGE_TEXTS)
    assert len(rows) == len(EDGE_TEXTS)
    specs = {s.key: s for s in scorer.outputs}
    for text, row in zip(EDGE_TEXTS, rows, strict=True):
        for key, value in row.items():
            assert value is not None, (key, text[:30])
            assert value == value, "NaN"
            assert specs[key].low <= value <= specs[key].high, (key, value, text[:30])


@pytest.mark.parametrize("name", EMBEDDED)
def test_blank_text_gets_documented_benign_value(name: str) -> None:
    for row in _score(name, ["", "   ", "\n\t"]):
        assert all(v == 0.0 for v in row.values()), row


@pytest.mark.parametrize("name", EMBEDDED)
@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["nested"]])
def test_non_strings_raise_one_clear_type_error(name: str, bad: object) -> None:
    with pytest.raises(TypeError, match=r"text #1 is .*, expected str"):
        _score(name, ["fine", bad])


@pytest.mark.parametrize("name", EMBEDDED)
def test_batched_equals_one_by_one(name: str) -> None:
    texts = [*EDGE_TEXTS, "It is Paris.", "Lyon!", "Paris or Lyon"]
    if name != "factuality":  # keep the slow (MiniLM) one-by-one loop short
        texts += [r["text"] for r in _jsonl("toxicity_labelled.jsonl")]
    batched = _score(name, texts)
    single = [_score(name, [t])[0] for t in texts]
    assert batched == single


@pytest.mark.parametrize("name", EMBEDDED)
def test_empty_batch(name: str) -> None:
    assert _score(name, []) == []


# --------------------------------------------------------------------------- toxicity


def test_toxicity_orders_toxic_above_benign() -> None:
    rows = _jsonl("toxicity_labelled.jsonl")
    scores = [r["toxicity"] for r in get_scorer("toxicity").score([r["text"] for r in rows])]
    toxic = [s for s, r in zip(scores, rows, strict=True) if r["toxic"]]
    benign = [s for s, r in zip(scores, rows, strict=True) if not r["toxic"]]
    assert min(toxic) > max(benign)
    assert min(toxic) > 0.5 > max(benign)


def test_toxicity_shows_the_documented_identity_bias_and_neutralization_removes_it() -> None:
    raw = get_scorer("toxicity").score(["I am a gay man."])[0]["toxicity"]
    neutral = get_scorer("toxicity", neutralize_identity=True).score(["I am a gay man."])[0]["toxicity"]
    assert raw > 0.5  # the known false positive this project audits for
    assert neutral < 0.2


def test_neutralization_keeps_non_identity_toxicity() -> None:
    scorer = get_scorer("toxicity", neutralize_identity=True)
    out = scorer.score(["You are a stupid fucking idiot.", "Gay people live on our street."])
    assert out[0]["toxicity"] > 0.9
    assert out[1]["toxicity"] < 0.5


def test_neutralized_scorer_has_its_own_version() -> None:
    plain = get_scorer("toxicity")
    neutral = get_scorer("toxicity", neutralize_identity=True)
    assert neutral.version.startswith(plain.version + "+neutralized-")


def test_neutralize_replaces_whole_words_case_insensitively() -> None:
    from audit.scorers.neutralize import neutralize

    assert neutralize("I am a gay man.") == "I am a [group] [group]."
    assert neutralize("NATIVE  AMERICAN and middle-aged") == "[group] and [group]"
    assert neutralize("Mangoes and Germany", placeholder="X") == "Mangoes and Germany"
    assert neutralize("She is Muslim; they are Muslims.", placeholder="X") == "She is X; they are X."


def test_toxicity_rejects_unknown_backend_and_options() -> None:
    with pytest.raises(UsageError, match="unknown backend"):
        get_scorer("toxicity", backend="perspective")
    with pytest.raises(UsageError, match="takes no option"):
        get_scorer("toxicity", checkpoint="x.ckpt")
    with pytest.raises(UsageError, match="neutralize_identity must be true or false"):
        get_scorer("toxicity", neutralize_identity="maybe")


# --------------------------------------------------------------------------- sentiment


def test_sentiment_separates_positive_from_negative() -> None:
    rows = _jsonl("sentiment_labelled.jsonl")
    out = get_scorer("sentiment").score([r["text"] for r in rows])
    for r, s in zip(rows, out, strict=True):
        assert (s["sentiment"] > 0.3) if r["polarity"] > 0 else (s["sentiment"] < -0.3), (r, s)
        if r["polarity"] > 0:
            assert s["sentiment_positive"] > s["sentiment_negative"]
        else:
            assert s["sentiment_negative"] > s["sentiment_positive"]


def test_sentiment_is_neutral_on_bare_identity_mentions() -> None:
    out = get_scorer("sentiment").score(["She is Muslim.", "He is gay.", "They are Mexican."])
    assert all(abs(r["sentiment"]) < 0.05 for r in out)


# --------------------------------------------------------------------------- registry


def test_registry_lists_and_caches() -> None:
    names = available()
    for name in ("toxicity", "sentiment", "regard", "factuality", "refusal", "hf-classifier"):
        assert name in names
    assert get_scorer("toxicity") is get_scorer("toxicity")
    assert get_scorer("toxicity", neutralize_identity=True) is not get_scorer("toxicity")


def test_registry_backend_suffix_selects_backend() -> None:
    assert get_scorer("toxicity:embedded").version == get_scorer("toxicity").version
    with pytest.raises(UsageError, match="unknown scorer"):
        get_scorer("no-such-scorer")


# --------------------------------------------------------------------------- refusal


def test_refusal_rules_on_labelled_fixture() -> None:
    rows = _jsonl("refusal_labelled.jsonl")
    out = get_scorer("refusal:rules").score([r["text"] for r in rows])
    wrong = [r["text"] for r, o in zip(rows, out, strict=True) if o["refusal"] != r["refusal"]]
    assert not wrong
    assert {o["refusal"] for o in out} == {0.0, 1.0}


def test_refusal_survives_typographic_and_invisible_characters() -> None:
    from audit.scorers.refusal import matched_rules

    assert matched_rules("I\u2019m sorry, but I can\u2019t help with that.")
    assert matched_rules("I can\u200bnot help with that.")
    assert matched_rules("ＩＭ sorry") == []


def test_refusal_classifier_backend_needs_a_model() -> None:
    with pytest.raises(UsageError, match="needs model=PATH"):
        get_scorer("refusal", backend="hf-classifier")
    with pytest.raises(UsageError, match="unknown backend"):
        get_scorer("refusal:keywords")


# --------------------------------------------------------------------------- factuality


def test_factuality_on_labelled_fixture() -> None:
    rows = _jsonl("factuality_labelled.jsonl")
    refs = [Reference(correct=r["correct"], incorrect=r["incorrect"]) for r in rows]
    out = get_scorer("factuality").score([r["text"] for r in rows], refs)
    wrong = [(r["text"], o) for r, o in zip(rows, out, strict=True) if o["factual"] != r["factual"]]
    assert not wrong
    # correct answers above wrong ones on every graded key
    for key in ("factual_contains", "factual_semantic"):
        good = [o[key] for r, o in zip(rows, out, strict=True) if r["factual"]]
        bad = [o[key] for r, o in zip(rows, out, strict=True) if not r["factual"]]
        assert sum(good) / len(good) > sum(bad) / len(bad)


def test_factuality_match_rules() -> None:
    f = get_scorer("factuality", semantic=False)
    refs = [Reference(correct=["Paris, France", "Paris"], incorrect=["Paris, Texas"])] * 4
    out = f.score(["paris", "Paris, France!", "It's Paris, Texas.", "The Parisian answer"], refs)
    assert [o["factual_exact"] for o in out] == [1.0, 1.0, 0.0, 0.0]
    assert [o["factual_contains"] for o in out] == [1.0, 1.0, 0.0, 0.0]
    assert [o["factual"] for o in out] == [1.0, 1.0, 0.0, 0.0]
    assert all(o["factual_semantic"] is None for o in out)


def test_factuality_semantic_is_none_without_incorrect_refs() -> None:
    out = get_scorer("factuality").score(["Somewhere in Europe."], [Reference(correct=["Paris"])])[0]
    assert out["factual_semantic"] is None
    assert out["factual"] == 0.0


def test_factuality_reference_errors() -> None:
    f = get_scorer("factuality")
    with pytest.raises(UsageError, match="needs references"):
        f.score(["Paris"])
    with pytest.raises(UsageError, match="1 texts but 2 references"):
        f.score(["Paris"], [PARIS, PARIS])
    with pytest.raises(TypeError, match="reference #0 holds a int answer"):
        f.score(["Paris"], [Reference(correct=[3])])  # type: ignore[list-item]
    assert set(f.score(["x"], [Reference()])[0].values()) == {None}


def test_suites_may_name_a_scorer_backend(tmp_path) -> None:
    from audit.suites import load_suite

    suites = Path(__file__).resolve().parents[1] / "probes" / "suites"
    text = (suites / "toxicity-rtp.yaml").read_text(encoding="utf-8")
    line = "scorers: [toxicity, toxicity-second-opinion]"
    assert line in text
    text = text.replace("../data/", f"{suites.parent / 'data'}/")
    ok = tmp_path / "ok.yaml"
    ok.write_text(text.replace(line, "scorers: [toxicity:detoxify, toxicity-second-opinion]"), encoding="utf-8")
    assert load_suite(str(ok), known_scorers=set(available())).suite.scorers == [
        "toxicity:detoxify", "toxicity-second-opinion"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace(line, "scorers: [toxicityy]"), encoding="utf-8")
    with pytest.raises(UsageError, match="unknown scorer 'toxicityy'"):
        load_suite(str(bad), known_scorers=set(available()))
