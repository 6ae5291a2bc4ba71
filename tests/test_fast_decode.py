"""The lean Llama decoder (audit/models/fast_decode.py) reproduces the HF forward, and generation
through it gives the same completions as generation through transformers."""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from audit.models.fast_decode import LlamaDecoder, supports, verified
from audit.models.gpt2_tokenizer import gpt2_tokenizer
from audit.models.hf import HFBackend
from audit.types import GenParams, GenRequest


def tiny_llama(**overrides: object) -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=50257, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=50256, eos_token_id=50256, tie_word_embeddings=True, **overrides,
    )
    return LlamaForCausalLM(cfg).eval()


def test_decoder_matches_the_hf_forward_step_by_step_with_left_padding() -> None:
    model = tiny_llama()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 50257, (3, 7), generator=g)
    mask = torch.ones_like(ids)
    ids[1, :3], mask[1, :3] = 0, 0
    ids[2, :6], mask[2, :6] = 0, 0  # a one-token prompt
    nxt = torch.randint(0, 50257, (3, 4), generator=g)
    dec = LlamaDecoder(model)
    with torch.inference_mode():
        dec.start(mask, (mask.cumsum(-1) - 1).clamp(min=0), 4)
        ours = [dec.step(ids, 0)] + [dec.step(nxt[:, j : j + 1], 7 + j) for j in range(3)]
        full = torch.cat([ids, nxt], dim=1)
        fmask = torch.cat([mask, torch.ones_like(nxt)], dim=1)
        ref = model(input_ids=full, attention_mask=fmask, position_ids=(fmask.cumsum(-1) - 1).clamp(min=0)).logits
    for j, got in enumerate(ours):
        assert torch.allclose(got, ref[:, 6 + j], atol=1e-4), j
    # the same prefill in row chunks (long prompts): same logits, same cache
    import audit.models.fast_decode as fd

    saved, fd.PREFILL_TOKENS = fd.PREFILL_TOKENS, 7  # one row per chunk
    try:
        with torch.inference_mode():
            dec.start(mask, (mask.cumsum(-1) - 1).clamp(min=0), 4)
            chunked = [dec.step(ids, 0)] + [dec.step(nxt[:, j : j + 1], 7 + j) for j in range(3)]
    finally:
        fd.PREFILL_TOKENS = saved
    for a, b in zip(chunked, ours, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_only_exact_llama_layouts_are_used() -> None:
    assert supports(tiny_llama())
    assert not supports(tiny_llama(attention_bias=True))
    assert not supports(tiny_llama(rope_scaling={"rope_type": "linear", "factor": 2.0}))
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2))
    assert not supports(gpt2) and verified(gpt2, 0) is None


def test_the_decoder_copies_no_weights() -> None:
    model = tiny_llama()
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.inference_mode():
        before = model(input_ids=ids).logits
        dec = LlamaDecoder(model)
        after = model(input_ids=ids).logits
    assert torch.equal(before, after)
    params = {p.data_ptr() for p in model.parameters()}
    for layer in dec.layers:
        for w in (layer[0], *layer[1], layer[2], layer[3], *layer[4], layer[5]):
            assert w.data_ptr() in params


def test_generation_is_the_same_through_the_lean_decoder_and_through_transformers() -> None:
    tok = gpt2_tokenizer()
    model = tiny_llama()
    # Random weights give a nearly flat next-token distribution, where a 1e-6 rounding difference
    # moves a draw across one of 50k tiny CDF steps; a trained model is peaked. Peak this one too.
    model.model.embed_tokens.weight.data *= 40
    backend = HFBackend(model, tok, name="tiny-llama", fingerprint="t", batch_size=8)
    assert backend.decoder() is not None
    reqs = [GenRequest(key=f"k{i}", prompt=p) for i, p in enumerate(
        ["Hello", "The quick brown fox jumps over", "A", "Once upon a time, in a land far away, there"]
    )]
    for params in (GenParams(max_new_tokens=12, temperature=1.0, top_p=0.9), GenParams(max_new_tokens=12, temperature=0.0)):
        lean = backend.generate(reqs, params, seed=3)
        backend.lean = False
        plain = backend.generate(reqs, params, seed=3)
        backend.lean = True
        assert [c.text for c in lean] == [c.text for c in plain]
        assert [c.n_tokens for c in lean] == [c.n_tokens for c in plain]
