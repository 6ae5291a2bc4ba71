"""The lean Llama decoder (audit/models/fast_decode.py) reproduces the HF forward, and generation
through it gives the same completions as generation through transformers."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from audit.core.errors import UsageError
from audit.core.types import GenParams, GenRequest
from audit.models.fast_decode import LlamaDecoder, supports, verified
from audit.models.gpt2_tokenizer import gpt2_tokenizer
from audit.models.hf import HFBackend


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


def test_prefill_groups_skip_left_padding_and_cover_every_row() -> None:
    from audit.models.fast_decode import GROUP_COST, prefill_groups

    widths = sorted([4, 5, 5, 6, 7, 7, 7, 8, 8, 9, 9, 10, 11, 11, 12, 12, 13, 14, 15, 16, 16, 18] * 3)
    groups = prefill_groups(widths, 2048)
    assert [g[0] for g in groups] == [0] + [g[1] for g in groups[:-1]] and groups[-1][1] == len(widths)
    assert all(w == max(widths[a:b]) for a, b, w in groups)
    computed = sum((b - a) * w for a, b, w in groups)
    assert computed + GROUP_COST * len(groups) < len(widths) * max(widths) + GROUP_COST  # beats one rectangle
    assert computed < 0.8 * len(widths) * max(widths)
    tight = prefill_groups([30] * 10, 64)  # the budget caps a group's positions
    assert all((b - a) * w <= 64 for a, b, w in tight)
    assert prefill_groups([100, 3], 50)[0] == (0, 1, 100)  # a row longer than the budget stands alone


def test_grouped_prefill_matches_the_hf_forward_and_never_reads_skipped_slots() -> None:
    model = tiny_llama()
    g = torch.Generator().manual_seed(2)
    lengths = [1, 2, 2, 3, 5, 8, 8, 12]
    width = max(lengths)
    ids = torch.randint(0, 50257, (len(lengths), width), generator=g)
    mask = torch.zeros_like(ids)
    for r, n in enumerate(lengths):
        mask[r, width - n :] = 1
        ids[r, : width - n] = 0
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    nxt = torch.randint(0, 50257, (len(lengths), 1), generator=g)
    import audit.models.fast_decode as fd

    dec = LlamaDecoder(model)
    saved, fd.PREFILL_TOKENS = fd.PREFILL_TOKENS, 24  # several groups
    try:
        with torch.inference_mode():
            dec.start(mask, pos, 2)
            for k_all, v_all in dec.cache:  # what torch.empty may hand out
                k_all.fill_(float("nan"))
                v_all.fill_(float("nan"))
            ours = [dec.step(ids, 0), dec.step(nxt, width)]
    finally:
        fd.PREFILL_TOKENS = saved
    assert len(fd.prefill_groups(lengths, 24)) > 1
    full = torch.cat([ids, nxt], dim=1)
    fmask = torch.cat([mask, torch.ones_like(nxt)], dim=1)
    with torch.inference_mode():
        ref = model(input_ids=full, attention_mask=fmask, position_ids=(fmask.cumsum(-1) - 1).clamp(min=0)).logits
    for j, got in enumerate(ours):
        assert torch.isfinite(got).all()
        assert torch.allclose(got, ref[:, width - 1 + j], atol=1e-4), j


def test_cpu_decoding_takes_onednn_products_unless_told_not_to(monkeypatch) -> None:
    from audit.models.fast_decode import onednn_linear

    if onednn_linear() is None:  # a torch build without oneDNN: F.linear is the only kernel
        assert verified(tiny_llama(), 0).kernel == "torch"
        return
    dec = verified(tiny_llama(), 0)
    assert dec is not None and dec.kernel == "onednn"
    monkeypatch.setenv("LM_AUDIT_DECODE_MATMUL", "torch")
    plain = verified(tiny_llama(), 0)
    assert plain is not None and plain.kernel == "torch"
    monkeypatch.setenv("LM_AUDIT_DECODE_MATMUL", "mkl")  # a typo is an error, not a silent default
    with pytest.raises(UsageError, match="LM_AUDIT_DECODE_MATMUL must be 'onednn' or 'torch', not 'mkl'"):
        verified(tiny_llama(), 0)
    # both reproduce the HF forward, also on the input-major weights verified() stored
    model = tiny_llama()
    ids = torch.tensor([[5, 6, 7, 8], [0, 0, 9, 10]])
    mask = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        ref = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1]
        for linear, kernel in ((onednn_linear(), "onednn"), (torch.nn.functional.linear, "torch")):
            dec = LlamaDecoder(model, linear, kernel)
            dec.start(mask, pos, 1)
            assert torch.allclose(dec.step(ids, 0), ref, atol=1e-4), kernel


def test_a_kernel_that_fails_or_disagrees_is_passed_over(monkeypatch) -> None:
    import audit.models.fast_decode as fd

    def broken(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("no such kernel on this CPU")

    def wrong(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, w) * 1.01

    monkeypatch.setattr(fd, "matmul_kernels", lambda dev: [("broken", broken), ("wrong", wrong), ("torch", torch.nn.functional.linear)])
    dec = verified(tiny_llama(), 0)
    assert dec is not None and dec.kernel == "torch"
    monkeypatch.setattr(fd, "matmul_kernels", lambda dev: [("broken", broken)])
    assert verified(tiny_llama(), 0) is None  # no kernel works: the HF path


def test_onednn_products_pad_rows_and_equal_the_unpadded_rows() -> None:
    from audit.models.fast_decode import ROW_MULTIPLE, onednn_linear

    linear = onednn_linear()
    if linear is None:
        return
    g = torch.Generator().manual_seed(3)
    w = torch.randn(96, 40, generator=g).t().contiguous().t()  # input-major, as the decoder stores it
    x = torch.randn(2 * ROW_MULTIPLE, 1, 40, generator=g)
    full = linear(x, w)
    assert full.shape == (2 * ROW_MULTIPLE, 1, 96)
    assert torch.allclose(full, torch.nn.functional.linear(x, w), atol=1e-5)
    for rows in (1, 3, ROW_MULTIPLE + 1):  # padded with zero rows: the same bits as in a full batch
        got = linear(x[:rows], w)
        assert got.shape == (rows, 1, 96)
        assert torch.equal(got, full[:rows])
