"""GatedGenerator: decisions for each action, fail-closed on errors and timeouts, redaction,
windows, neutralization, the decision log, streaming with early stop, and the CLI commands."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from audit.cli import main
from audit.core.errors import UsageError
from audit.core.types import Completion, GenParams, GenRequest
from audit.guard import Check, GatedGenerator, Policy, load_policy
from audit.guard.policy import DEFAULT_POLICY_PATH, EXAMPLE_POLICY_DIR
from audit.models.base import LoglikelihoodResult, ModelBackend, ModelInfo
from audit.models.registry import load_model
from audit.scorers.base import Scorer, ScoreSpec

BAD_WORDS = ("idiot", "stupid", "moron", "gay")
TOX = (ScoreSpec("toxicity", 0.0, 1.0, "worse", "fake toxicity"),)


class KeywordScorer(Scorer):
    """1.0 when a listed word appears as a whole word, else 0.0 (sees the normalized text)."""

    name = "keyword"

    def __init__(self, words: Sequence[str] = BAD_WORDS, key: str = "toxicity") -> None:
        self.pattern = re.compile(r"\b(" + "|".join(words) + r")\b")
        self.key = key
        self.outputs = (ScoreSpec(key, 0.0, 1.0, "worse", "keyword"),)
        self.seen: list[str] = []

    def score(self, texts, refs=None):  # type: ignore[no-untyped-def]
        self.seen.extend(texts)
        return [{self.key: 1.0 if self.pattern.search(t) else 0.0} for t in texts]


class DensityScorer(Scorer):
    """Share of words that are bad words: dilutes in long texts, like a real classifier."""

    name = "density"
    outputs = TOX

    def score(self, texts, refs=None):  # type: ignore[no-untyped-def]
        out = []
        for t in texts:
            words = re.findall(r"[a-z]+", t)
            bad = sum(w in BAD_WORDS for w in words)
            out.append({"toxicity": bad / len(words) if words else 0.0})
        return out


class RaisingScorer(Scorer):
    name = "raising"
    outputs = TOX

    def score(self, texts, refs=None):  # type: ignore[no-untyped-def]
        raise RuntimeError("model file missing")


class HangingScorer(Scorer):
    """Blocks until released; stands in for a scorer that hangs or is far too slow."""

    name = "hanging"
    outputs = TOX

    def __init__(self) -> None:
        self.release = threading.Event()

    def score(self, texts, refs=None):  # type: ignore[no-untyped-def]
        self.release.wait(30)
        return [{"toxicity": 0.0} for _ in texts]


class ScriptedModel(ModelBackend):
    """Returns ``outputs[sample]`` (the last one for later samples) and records every call."""

    supports_loglikelihood = False

    def __init__(self, outputs: Sequence[str]) -> None:
        self.outputs = list(outputs)
        self.calls: list[tuple[list[GenRequest], GenParams]] = []

    def info(self) -> ModelInfo:
        return ModelInfo(name="scripted", backend="test", fingerprint="x")

    def generate(self, requests, params, seed):  # type: ignore[no-untyped-def]
        self.calls.append((list(requests), params))
        return [Completion(self.outputs[min(r.sample, len(self.outputs) - 1)], n_tokens=5) for r in requests]

    def loglikelihood(self, requests):  # type: ignore[no-untyped-def]
        return [LoglikelihoodResult(0.0, 0) for _ in requests]


def _policy(action: str = "block", scorer: Scorer | None = None, **kw) -> Policy:  # type: ignore[no-untyped-def]
    return Policy(
        name="test",
        output_checks=[Check(name="tox", scorer=scorer or KeywordScorer(), threshold=0.5, action=action)],
        **kw,
    )


# ---------------------------------------------------------------------- policies


def test_default_policy_is_safe_by_default() -> None:
    policy = load_policy(None)
    assert policy.name == "default"
    assert policy.fail_mode == "closed"
    assert policy.input_checks and policy.output_checks
    assert load_policy("default") == policy
    assert DEFAULT_POLICY_PATH.is_file()


@pytest.mark.parametrize("path", sorted(EXAMPLE_POLICY_DIR.glob("filter-*.yaml")), ids=lambda p: p.stem)
def test_example_policies_load(path: Path) -> None:
    policy = load_policy(path)
    assert policy.output_checks
    assert load_policy(path.stem.removeprefix("filter-")) == policy


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("name: x\noutput_checks: [{scorer: toxicity, action: explode}]\n", "action"),
        ("name: x\ninput_checks: [{scorer: toxicity, action: regenerate}]\n", "outputs only"),
        ("name: x\noutput_checks: [{threshold: 0.5}]\n", "exactly one"),
        ("name: x\nunknown_field: 1\n", "unknown_field"),
        ("- just\n- a list\n", "mapping"),
        ("name: [unclosed\n", "YAML"),
    ],
)
def test_bad_policy_files_are_usage_errors(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=re.escape(fragment) if fragment != "exactly one" else "exactly one"):
        load_policy(path)


def test_missing_policy_name_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not found"):
        load_policy("no-such-policy")


# ---------------------------------------------------------------------- actions


def test_clean_completion_passes_unchanged_with_a_full_decision() -> None:
    model = ScriptedModel(["Have a lovely day."])
    result = GatedGenerator(model, _policy()).generate("Hi")
    d = result.decision
    assert result.text == "Have a lovely day."
    assert d.allowed and d.action == "none" and d.stage is None
    assert d.scores == {"output:tox": 0.0}
    assert d.thresholds == {"output:tox": 0.5}
    assert set(d.latency) == {"generate_s", "filter_s", "total_s"}
    assert d.to_dict()["checks"][0]["flagged"] is False


def test_block_returns_the_refusal_message_and_says_why() -> None:
    model = ScriptedModel(["You are an idiot."])
    policy = _policy("block", refusal_message="Nope.")
    result = GatedGenerator(model, policy).generate("Hi")
    d = result.decision
    assert result.text == "Nope."
    assert result.raw_text == "You are an idiot."
    assert not d.allowed and d.action == "block" and d.stage == "output"
    assert "tox" in d.reason and "1.000 >= 0.5" in d.reason
    assert len(model.calls) == 1  # block does not retry


def test_regenerate_retries_with_new_seeds_until_a_completion_passes() -> None:
    model = ScriptedModel(["You idiot.", "You moron.", "What a nice question."])
    result = GatedGenerator(model, _policy("regenerate", max_retries=3)).generate("Hi")
    assert result.text == "What a nice question."
    assert result.decision.allowed and result.decision.action == "regenerate"
    assert [a["attempt"] for a in result.decision.attempts] == [0, 1, 2]
    samples = [call[0][0].sample for call in model.calls]
    assert samples == [0, 1, 2]  # a new sample index, hence a new random stream, per retry


def test_regenerate_blocks_after_the_retry_budget() -> None:
    model = ScriptedModel(["You idiot."])
    result = GatedGenerator(model, _policy("regenerate", max_retries=2)).generate("Hi")
    assert not result.decision.allowed and result.decision.action == "block"
    assert len(result.decision.attempts) == 3
    assert "after 2 regeneration" in result.decision.reason
    assert result.text == Policy().refusal_message


def test_regenerate_samples_even_when_asked_for_greedy() -> None:
    model = ScriptedModel(["You idiot.", "Fine."])
    gate = GatedGenerator(model, _policy("regenerate"))
    gate.generate("Hi", GenParams(do_sample=False, max_new_tokens=5))
    assert model.calls[0][1].greedy and not model.calls[1][1].greedy


def test_redact_masks_the_flagged_words_and_keeps_the_rest() -> None:
    model = ScriptedModel(["You are a stupid idiot, but have a nice day."])
    result = GatedGenerator(model, _policy("redact")).generate("Hi")
    assert result.text == "You are a **** ****, but have a nice day."
    assert result.decision.allowed and result.decision.action == "redact"
    assert result.decision.checks[-1].flagged is False  # the redacted text passes


def test_redact_maps_obfuscated_words_back_to_the_original() -> None:
    gate = GatedGenerator(None, _policy("redact", mask="[x]"))
    text = "Well, you are a s\u200bt\u200bupid i d i o t and ＭＯＲＯＮ; see you tomorrow at 10."
    result = gate.moderate(text)
    assert result.text == "Well, you are a [x] [x] and [x]; see you tomorrow at 10."


def test_redact_falls_back_to_the_flagged_sentence() -> None:
    class SentenceScorer(Scorer):
        name = "sentence"
        outputs = TOX

        def score(self, texts, refs=None):  # type: ignore[no-untyped-def]
            # flags "go away now" only as a phrase: no single word trips it
            return [{"toxicity": float("go away now" in t)} for t in texts]

    gate = GatedGenerator(None, _policy("redact", scorer=SentenceScorer()))
    result = gate.moderate("Hello there. Go away now! See you.")
    assert result.decision.action == "redact"
    assert result.text.startswith("Hello there.") and result.text.endswith("See you.")
    assert "away" not in result.text and "****" in result.text


def test_terms_check_redacts_without_a_scorer() -> None:
    policy = Policy(output_checks=[Check(terms=["api key", "password"], action="redact")])
    result = GatedGenerator(None, policy).moderate("My PASSWORD is hunter2 and my A P I key is 42.")
    assert result.text == "My **** is hunter2 and my **** is 42."


def test_input_check_blocks_before_the_model_runs() -> None:
    model = ScriptedModel(["fine"])
    policy = Policy(input_checks=[Check(name="in", scorer=KeywordScorer(), action="block")])
    result = GatedGenerator(model, policy).generate("Tell the idiot a joke")
    assert not result.decision.allowed and result.decision.stage == "input"
    assert model.calls == []
    assert result.raw_text is None


def test_input_redact_changes_what_the_model_sees() -> None:
    model = ScriptedModel(["fine"])
    policy = Policy(input_checks=[Check(name="in", scorer=KeywordScorer(), action="redact")])
    result = GatedGenerator(model, policy).generate("Tell the idiot a joke")
    assert model.calls[0][0][0].prompt == "Tell the **** a joke"
    assert result.decision.allowed and result.decision.action == "redact" and result.decision.stage == "input"


def test_below_direction_flags_low_scores() -> None:
    refusal = KeywordScorer(("sorry",), key="refusal")
    policy = Policy(output_checks=[Check(scorer=refusal, key="refusal", threshold=0.5, direction="below")])
    gate = GatedGenerator(None, policy)
    assert gate.moderate("Sorry, I cannot help.").decision.allowed
    assert not gate.moderate("Sure, here is how.").decision.allowed


# ---------------------------------------------------------------------- failures


def test_fail_closed_when_the_scorer_raises() -> None:
    result = GatedGenerator(ScriptedModel(["hello"]), _policy("redact", scorer=RaisingScorer())).generate("Hi")
    d = result.decision
    assert not d.allowed and d.action == "block"
    assert "model file missing" in d.reason and "fail closed" in d.reason
    assert d.checks[0].error and d.checks[0].score is None


def test_fail_closed_when_the_scorer_times_out() -> None:
    scorer = HangingScorer()
    gate = GatedGenerator(ScriptedModel(["hello"]), _policy(scorer=scorer, scorer_timeout_s=0.2))
    try:
        result = gate.generate("Hi")
    finally:
        scorer.release.set()
        gate.close()
    assert not result.decision.allowed
    assert "timed out" in result.decision.reason
    assert result.text == Policy().refusal_message


def test_fail_open_only_when_the_policy_says_so() -> None:
    open_policy = _policy(scorer=RaisingScorer(), fail_mode="open")
    result = GatedGenerator(ScriptedModel(["hello"]), open_policy).generate("Hi")
    assert result.decision.allowed and result.text == "hello"
    assert result.decision.checks[0].failed_open
    assert "failed open" in result.decision.reason and "model file missing" in result.decision.reason
    per_check = Policy(
        fail_mode="closed",
        output_checks=[Check(scorer=RaisingScorer(), fail_mode="open"), Check(name="kw", scorer=KeywordScorer())],
    )
    assert GatedGenerator(ScriptedModel(["hello"]), per_check).generate("Hi").decision.allowed


def test_a_scorer_without_the_key_is_refused_before_any_text() -> None:
    """No declared range for the key, so no threshold can be checked (tests/test_guard_policy_ranges.py)."""
    policy = Policy(output_checks=[Check(scorer=KeywordScorer(key="other"), key="toxicity")])
    with pytest.raises(UsageError, match="declares no range for 'toxicity'"):
        GatedGenerator(None, policy)


# ---------------------------------------------------------------------- hardening


def test_obfuscated_toxic_text_is_caught_after_normalization() -> None:
    gate = GatedGenerator(None, _policy())
    raw = Policy(name="raw", normalize={"enabled": False}, output_checks=[Check(scorer=KeywordScorer())])
    raw_gate = GatedGenerator(None, raw)
    for text in ["you 1d10t", "you іdіоt", "you id\u200biot", "you i d i o t", "you IdIoT", "you ｉｄｉｏｔ"]:
        assert not gate.moderate(text).decision.allowed, text
    assert raw_gate.moderate("you 1d10t").decision.allowed  # the same check without normalization misses


def test_sliding_windows_catch_one_toxic_sentence_in_a_long_text() -> None:
    text = "The garden is green and calm. " * 25 + "You are a stupid idiot. " + "We planted beans today. " * 25
    windowed = Policy(output_checks=[Check(scorer=DensityScorer(), threshold=0.3)])
    whole = Policy(output_checks=[Check(scorer=DensityScorer(), threshold=0.3, windows=False)])
    assert GatedGenerator(None, whole).moderate(text).decision.allowed  # diluted over the whole text
    result = GatedGenerator(None, windowed).moderate(text)
    assert not result.decision.allowed
    a, b = result.decision.checks[0].span
    assert "stupid idiot" in text[a:b] and b - a < 60  # the decision points at the sentence


def test_neutralized_identity_terms_are_not_scored() -> None:
    plain = GatedGenerator(None, _policy())
    neutral = GatedGenerator(None, _policy(neutralize_terms=["gay", "muslim"]))
    assert not plain.moderate("I am a gay man.").decision.allowed
    assert neutral.moderate("I am a GAY man.").decision.allowed
    assert not neutral.moderate("I am a gay idiot.").decision.allowed


# ---------------------------------------------------------------------- log


@pytest.mark.parametrize("log_text", [False, True])
def test_decisions_are_appended_to_the_jsonl_log(tmp_path: Path, log_text: bool) -> None:
    log = tmp_path / "logs" / "decisions.jsonl"
    gate = GatedGenerator(ScriptedModel(["You idiot.", "Nice."]), _policy("regenerate", log_text=log_text), log_path=log)
    gate.generate("first")
    gate.generate("second")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) == 2
    assert rows[0]["decision"]["action"] == "regenerate" and rows[0]["policy"] == "test"
    assert rows[0]["model"] == "scripted" and len(rows[0]["prompt_sha256"]) == 16
    assert ("text" in rows[0]) is log_text
    if log_text:
        assert rows[0]["text"] == "Nice." and rows[1]["prompt"] == "second"


# ---------------------------------------------------------------------- streaming


class LengthScorer(Scorer):
    """Flags any text of 12 characters or more."""

    name = "length"
    outputs = TOX

    def score(self, texts, refs=None):  # type: ignore[no-untyped-def]
        return [{"toxicity": float(len(t) >= 12)} for t in texts]


@pytest.fixture(scope="module")
def tiny():  # type: ignore[no-untyped-def]
    return load_model("tiny-random-gpt2")


def test_streaming_stops_the_model_early_when_a_check_fails(tiny) -> None:  # type: ignore[no-untyped-def]
    policy = Policy(normalize={"enabled": False}, stream_check_every=2, output_checks=[Check(scorer=LengthScorer())])
    gate = GatedGenerator(tiny, policy)
    forward_calls = 0
    original = tiny.model.forward

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal forward_calls
        forward_calls += 1
        return original(*args, **kwargs)

    tiny.model.forward = counting
    try:
        events = list(gate.stream("Hello", GenParams(max_new_tokens=64, do_sample=False)))
    finally:
        tiny.model.forward = original
    final = events[-1]
    assert final.done and not final.decision.allowed and final.decision.stopped_early
    assert final.decision.attempts[0]["n_tokens"] < 64
    assert forward_calls == final.decision.attempts[0]["n_tokens"] < 64
    assert Policy().refusal_message in final.text


def test_streamed_text_equals_the_batched_completion_when_it_passes(tiny) -> None:  # type: ignore[no-untyped-def]
    gate = GatedGenerator(tiny, Policy(output_checks=[Check(scorer=KeywordScorer(("zzzzqqq",)))]))
    params = GenParams(max_new_tokens=24, temperature=1.0, top_p=0.9)
    batched = gate.generate("Once upon a time", params, seed=7)
    events = list(gate.stream("Once upon a time", params, seed=7))
    assert events[-1].decision.allowed and not events[-1].decision.stopped_early
    assert "".join(e.delta for e in events) == batched.text == events[-1].text


def test_stream_releases_only_checked_text() -> None:
    model = ScriptedModel(["one two three four five idiot six seven"])
    policy = Policy(stream_check_every=1, output_checks=[Check(scorer=KeywordScorer(), action="block")])
    events = list(GatedGenerator(model, policy).stream("Hi"))
    released = "".join(e.delta for e in events[:-1])
    assert "idiot" not in released and released.startswith("one two")
    assert not events[-1].decision.allowed


def test_stream_input_block_yields_only_the_refusal() -> None:
    model = ScriptedModel(["fine"])
    policy = Policy(input_checks=[Check(scorer=KeywordScorer())])
    events = list(GatedGenerator(model, policy).stream("you idiot"))
    assert len(events) == 1 and events[0].done and events[0].delta == Policy().refusal_message
    assert model.calls == []


# ---------------------------------------------------------------------- CLI


def _terms_policy(tmp_path: Path) -> Path:
    path = tmp_path / "terms.yaml"
    path.write_text(
        "name: terms-only\n"
        "input_checks:\n  - {name: banned-prompt, terms: [forbidden], action: block}\n"
        "output_checks:\n  - {name: words, terms: [idiot, stupid, moron, shit, fuck, bitch, asshole], action: block}\n"
    )
    return path


def test_generate_command_prints_text_and_decision_as_json(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    policy = _terms_policy(tmp_path)
    code = main(["generate", "--model", "tiny-random-gpt2", "--policy", str(policy), "--json", "--max-tokens", "8", "Hi"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["decision"]["allowed"] and out["decision"]["policy"] == "terms-only"
    assert isinstance(out["text"], str)
    code = main(["generate", "--model", "tiny-random-gpt2", "--policy", str(policy), "a forbidden prompt"])
    text = capsys.readouterr().out
    assert code == 1 and "BLOCKED" in text and "banned-prompt" in text


def test_generate_command_usage_errors(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["generate", "--model", "tiny-random-gpt2", "--max-tokens", "0", "Hi"]) == 2
    assert main(["generate", "--model", "tiny-random-gpt2", "--policy", "nope", "Hi"]) == 2
    assert "error:" in capsys.readouterr().err


def test_gate_eval_command_writes_figures(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "eval"
    code = main(["gate-eval", "--policy", str(_terms_policy(tmp_path)), "--out", str(out), "--no-latency"])
    assert code == 0
    report = json.loads((out / "gate_eval.json").read_text())
    figures = report["output"]
    assert 0 < figures["block_rate_toxic"] < 1  # a short deny-list catches some toxic texts, not all
    assert figures["false_block_rate_benign"] == 0.0
    assert set(figures["identity_false_block_rate"]) >= {"gay", "muslim", "black", "white"}
    assert set(figures["bypass"]) >= {"leetspeak", "homoglyphs", "zero_width", "spacing", "case"}
    # normalization closes the leetspeak/homoglyph gaps that a raw deny-list leaves open
    assert figures["bypass"]["homoglyphs"]["bypass_rate"] < figures["bypass"]["homoglyphs"]["bypass_rate_without_normalization"]
    assert "block rate on toxic text" in (out / "gate_eval.md").read_text()
