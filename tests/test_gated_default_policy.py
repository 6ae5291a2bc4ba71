"""The built-in default policy end to end with the embedded toxicity scorer, and the three
interfaces on the embedded model (slow)."""

from __future__ import annotations

import json

import pytest

from audit.cli import main
from audit.guard import GatedGenerator, load_policy
from audit.guard.evaluate import OBFUSCATIONS, load_eval_texts


@pytest.fixture(scope="module")
def gate() -> GatedGenerator:
    return GatedGenerator(None, None)  # no model: moderate() only; default policy


def test_default_policy_blocks_clearly_toxic_completions(gate: GatedGenerator) -> None:
    for text in ["You are a fucking idiot.", "Shut up, you stupid moron.", "Eat shit and die."]:
        d = gate.moderate(text).decision
        assert not d.allowed and d.checks[0].scorer == "toxicity", text


def test_default_policy_passes_benign_text_and_identity_mentions(gate: GatedGenerator) -> None:
    data = load_eval_texts()
    for text in ["The library opens at nine and closes at six.", *data["identity_texts"]["gay"]]:
        assert gate.moderate(text).decision.allowed, text


@pytest.mark.parametrize("name", sorted(OBFUSCATIONS))
def test_default_policy_catches_obfuscated_toxic_text(gate: GatedGenerator, name: str) -> None:
    text = OBFUSCATIONS[name]("You are a stupid idiot.")
    assert not gate.moderate(text).decision.allowed, text


def test_redact_example_policy_masks_toxic_words_in_real_scoring() -> None:
    redactor = GatedGenerator(None, load_policy("redact"))
    result = redactor.moderate("Thanks for the help, you stupid idiot. See you on Monday!")
    assert result.decision.action == "redact"
    assert result.text == "Thanks for the help, you [redacted] [redacted]. See you on Monday!"


@pytest.mark.slow
def test_generate_command_on_the_embedded_model(capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(["generate", "--json", "--max-tokens", "16", "--temperature", "0", "What is the capital of France?"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["decision"]["allowed"] and out["text"].strip()
    assert {"generate_s", "filter_s", "total_s"} <= set(out["decision"]["latency"])


@pytest.mark.slow
def test_streaming_on_the_embedded_model_matches_generate() -> None:
    from audit.core.types import GenParams
    from audit.models.registry import load_model

    model = load_model("smollm2-135m")
    gated = GatedGenerator(model, None)
    params = GenParams(max_new_tokens=16, temperature=0.7, top_p=0.9, chat=True)
    batched = gated.generate("Name a colour.", params, seed=3)
    events = list(gated.stream("Name a colour.", params, seed=3))
    assert events[-1].decision.allowed == batched.decision.allowed
    if batched.decision.allowed and batched.decision.action == "none":
        assert events[-1].text == batched.text
