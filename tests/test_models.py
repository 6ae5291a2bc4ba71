"""The hf backend: real-checkpoint loading path, batch-invariant sampling, log-likelihoods."""

from __future__ import annotations

import math
import random

import pytest
import torch

from audit.core.errors import ModelUnavailableError
from audit.core.types import GenParams, GenRequest, LoglikelihoodRequest
from audit.models.hf import HFBackend, load_hf
from audit.models.registry import byte_level_tokenizer, load_model, tiny_random_model

PROMPTS = [
    "The woman worked as a",
    "The man was known for",
    "Hi",
    "A much longer prompt that will need plenty of left padding in a batch",
    "",
    "The Muslim person was described as",
    "Zero\u200bwidth and emoji 🙂 and RTL שלום",
]
GREEDY = GenParams(max_new_tokens=12, do_sample=False)
SAMPLED = GenParams(max_new_tokens=12, temperature=1.0, top_p=0.9, top_k=50)


def _requests(samples: int = 1) -> list[GenRequest]:
    return [GenRequest(key=f"item{i}", prompt=p, sample=s) for i, p in enumerate(PROMPTS) for s in range(samples)]


@pytest.fixture(scope="module", params=["gpt2", "gpt-neo"])
def saved_tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A tiny random GPT-2 / GPT-Neo saved with save_pretrained, as a real checkpoint would be."""
    kind = request.param
    path = tmp_path_factory.mktemp(f"tiny-{kind}")
    tok = byte_level_tokenizer()
    model = tiny_random_model(kind, vocab_size=len(tok))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return kind, path


def test_saved_checkpoint_loads_through_hf_backend(saved_tiny) -> None:
    kind, path = saved_tiny
    backend = load_model(str(path), batch_size=4)
    info = backend.info()
    assert info.backend == "hf"
    assert info.details["model_type"] == ("gpt2" if kind == "gpt2" else "gpt_neo")
    assert len(info.fingerprint) == 16
    # the reloaded checkpoint behaves exactly like the in-memory model it was saved from
    in_memory = load_model(f"tiny-random-{kind}", batch_size=4)
    reqs = _requests()
    assert [c.text for c in backend.generate(reqs, SAMPLED, seed=3)] == [
        c.text for c in in_memory.generate(reqs, SAMPLED, seed=3)
    ]


def test_fingerprint_changes_with_weights(saved_tiny, tmp_path) -> None:
    kind, path = saved_tiny
    tok = byte_level_tokenizer()
    other = tiny_random_model(kind, vocab_size=len(tok), seed=99)
    other.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    assert load_hf(str(tmp_path)).info().fingerprint != load_hf(str(path)).info().fingerprint


@pytest.mark.parametrize("kind", ["tiny-random-gpt2", "tiny-random-gpt-neo"])
@pytest.mark.parametrize("params", [GREEDY, SAMPLED], ids=["greedy", "sampled"])
def test_batched_equals_one_by_one(kind: str, params: GenParams) -> None:
    backend = load_model(kind)
    reqs = _requests(samples=2)
    outputs = {}
    for bs in (1, 3, 16):
        backend.batch_size = bs
        outputs[bs] = [c.text for c in backend.generate(reqs, params, seed=11)]
    assert outputs[1] == outputs[3] == outputs[16]
    # a different batch composition (shuffled order, a subset) gives the same per-record text
    shuffled = reqs[:]
    random.Random(0).shuffle(shuffled)
    backend.batch_size = 4
    by_key = {(r.key, r.sample): c.text for r, c in zip(shuffled, backend.generate(shuffled, params, seed=11), strict=True)}
    assert [by_key[(r.key, r.sample)] for r in reqs] == outputs[1]
    single = backend.generate([reqs[5]], params, seed=11)[0].text
    assert single == outputs[1][5]


def test_sampling_depends_on_seed_key_and_sample_only() -> None:
    backend = load_model("tiny-random-gpt2")
    reqs = _requests(samples=3)
    a = [c.text for c in backend.generate(reqs, SAMPLED, seed=1)]
    b = [c.text for c in backend.generate(reqs, SAMPLED, seed=2)]
    assert a != b  # the run seed matters
    assert len({a[0], a[1], a[2]}) > 1  # samples of one prompt differ
    # the same key and sample with a different prompt share the random stream, not the text
    pair = [GenRequest(key="k", prompt="The woman was", sample=0), GenRequest(key="k", prompt="The man was", sample=0)]
    outs = backend.generate(pair, SAMPLED, seed=1)
    assert all(o.n_tokens > 0 for o in outs)


def test_greedy_matches_manual_argmax() -> None:
    backend = load_model("tiny-random-gpt2")
    tok, model = backend.tokenizer, backend.model
    ids = tok("The woman worked as a")["input_ids"]
    with torch.inference_mode():
        for _ in range(6):
            nxt = int(model(torch.tensor([ids])).logits[0, -1].argmax())
            ids.append(nxt)
    expected = tok.decode(ids[-6:], skip_special_tokens=True)
    got = backend.generate([GenRequest("k", "The woman worked as a")], GenParams(max_new_tokens=6, do_sample=False), 0)
    assert got[0].text == expected


def test_tiny_top_p_is_greedy() -> None:
    backend = load_model("tiny-random-gpt-neo")
    reqs = _requests()
    nucleus = GenParams(max_new_tokens=8, top_p=1e-9)
    greedy = GenParams(max_new_tokens=8, do_sample=False)
    assert [c.text for c in backend.generate(reqs, nucleus, 5)] == [c.text for c in backend.generate(reqs, greedy, 5)]


def test_stop_strings_and_max_new_tokens() -> None:
    backend = load_model("tiny-random-gpt2")
    full = backend.generate([GenRequest("k", "Hello")], GenParams(max_new_tokens=20, do_sample=False), 0)[0]
    assert full.n_tokens == 20
    stop = full.text[5:7]
    cut = backend.generate([GenRequest("k", "Hello")], GenParams(max_new_tokens=20, do_sample=False, stop=(stop,)), 0)[0]
    assert cut.text == full.text[: full.text.index(stop)]


def test_loglikelihood_matches_manual_and_is_batch_invariant() -> None:
    backend = load_model("tiny-random-gpt2", batch_size=2)
    reqs = [
        LoglikelihoodRequest("The woman", " worked as a nurse"),
        LoglikelihoodRequest("", "The man worked as a nurse"),
        LoglikelihoodRequest("A", " b"),
    ]
    batched = backend.loglikelihood(reqs)
    backend.batch_size = 1
    single = backend.loglikelihood(reqs)
    for x, y in zip(batched, single, strict=True):
        assert x.n_tokens == y.n_tokens
        assert math.isclose(x.logprob, y.logprob, rel_tol=1e-4, abs_tol=1e-4)
    # manual: log P(" b" | "A") from one forward pass
    tok, model = backend.tokenizer, backend.model
    ids = tok("A b")["input_ids"]
    with torch.inference_mode():
        lp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    n_ctx = len(tok("A")["input_ids"])
    manual = sum(float(lp[i - 1, ids[i]]) for i in range(n_ctx, len(ids)))
    assert math.isclose(batched[2].logprob, manual, rel_tol=1e-4)
    assert batched[1].n_tokens == len(tok("The man worked as a nurse")["input_ids"])
    assert all(r.logprob < 0 for r in batched)


def test_missing_local_path_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ModelUnavailableError, match="not found"):
        load_model(str(tmp_path / "nope"))
    with pytest.raises(ModelUnavailableError, match="GGUF file not found"):
        load_model(str(tmp_path / "x.gguf"))


def test_backend_handles_missing_pad_token() -> None:
    tok = byte_level_tokenizer()
    tok.pad_token = None
    backend = HFBackend(tiny_random_model("gpt2", vocab_size=len(tok)), tok, name="t", fingerprint="t")
    assert backend.pad_id == tok.eos_token_id
    assert backend.generate([GenRequest("k", "a"), GenRequest("j", "bbbb")], GREEDY, 0)[0].n_tokens == 12
