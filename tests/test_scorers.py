"""Embedded scorers on labelled fixtures, the shared input contract (edge cases, batching) and the
registry. Backends that need real or synthetic transformer weights live in test_scorers_backends.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.errors import UsageError
from audit.scorers.base import Scorer
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


EMBEDDED = ["toxicity", "sentiment"]


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
    out = scorer.score(["A plain sentence."])[0]
    assert set(out) == {spec.key for spec in scorer.outputs}


@pytest.mark.parametrize("name", EMBEDDED)
def test_edge_cases_get_values_in_range(name: str) -> None:
    scorer = get_scorer(name)
    rows = scorer.score(EDGE_TEXTS)
    assert len(rows) == len(EDGE_TEXTS)
    specs = {s.key: s for s in scorer.outputs}
    for text, row in zip(EDGE_TEXTS, rows, strict=True):
        for key, value in row.items():
            assert value is not None, (key, text[:30])
            assert value == value, "NaN"
            assert specs[key].low <= value <= specs[key].high, (key, value, text[:30])


@pytest.mark.parametrize("name", EMBEDDED)
def test_blank_text_gets_documented_benign_value(name: str) -> None:
    scorer = get_scorer(name)
    for row in scorer.score(["", "   ", "\n\t"]):
        assert all(v == 0.0 for v in row.values()), row


@pytest.mark.parametrize("name", EMBEDDED)
@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["nested"]])
def test_non_strings_raise_one_clear_type_error(name: str, bad: object) -> None:
    scorer = get_scorer(name)
    with pytest.raises(TypeError, match=r"text #1 is .*, expected str"):
        scorer.score(["fine", bad])  # type: ignore[list-item]


@pytest.mark.parametrize("name", EMBEDDED)
def test_batched_equals_one_by_one(name: str) -> None:
    scorer = get_scorer(name)
    texts = [r["text"] for r in _jsonl("toxicity_labelled.jsonl")] + EDGE_TEXTS
    batched = scorer.score(texts)
    single = [scorer.score([t])[0] for t in texts]
    assert batched == single


@pytest.mark.parametrize("name", EMBEDDED)
def test_empty_batch(name: str) -> None:
    assert get_scorer(name).score([]) == []


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
    for name in ("toxicity", "sentiment"):
        assert name in names
    assert get_scorer("toxicity") is get_scorer("toxicity")
    assert get_scorer("toxicity", neutralize_identity=True) is not get_scorer("toxicity")


def test_registry_backend_suffix_selects_backend() -> None:
    assert get_scorer("toxicity:embedded").version == get_scorer("toxicity").version
    with pytest.raises(UsageError, match="unknown scorer"):
        get_scorer("no-such-scorer")
