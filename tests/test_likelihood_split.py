"""The split likelihood path (body, then the projection on scored positions only, packed trees for
shared prefixes) gives the per-row reference path's numbers, and models whose logits are more than
``head(body(x))`` fall back to their own forward pass."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from audit.core.types import LoglikelihoodRequest
from audit.models import likelihood, packing
from audit.models.registry import load_model
from tests.test_likelihood_shared_prefix import REQS as SHARED_REQS

# the shared-prefix tests' requests, plus an empty continuation and one branching off a shared
# prefix earlier than the others (a trie with a branch inside a branch)
REQS = [*SHARED_REQS, LoglikelihoodRequest(context="abc", continuation=""),
        LoglikelihoodRequest(context="", continuation="Poor people are rarely asked.")]


def _same(a: list, b: list, tol: float = 1e-4) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert abs(x.logprob - y.logprob) <= tol * max(1.0, abs(x.logprob))
        assert (x.n_tokens, x.is_greedy) == (y.n_tokens, y.is_greedy)


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("budget", [16, 2048])
def test_split_equals_reference_gpt2(shared: bool, budget: int, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = load_model("tiny-random-gpt2", batch_size=4)
    backend.shared_prefix = shared
    monkeypatch.setattr(likelihood, "TOKEN_BUDGET", budget)  # 16: one or two rows per batch
    ref = likelihood.score_requests(backend, REQS, mode="reference")
    assert likelihood.split_ok(backend.model, backend.device, backend.pad_id)
    for mode in ("split", "logits", "auto"):
        _same(ref, likelihood.score_requests(backend, REQS, mode=mode))
    _same(ref, backend.loglikelihood(REQS))


def test_trees_are_built_and_checked() -> None:
    backend = load_model("tiny-random-gpt2")
    seqs = []
    for ctx, cont in likelihood.split_all(backend, REQS):
        s = ctx + cont
        seqs.append((s, min(len(cont), len(s) - 1)))
    rows = packing.make_rows(seqs, list(range(len(seqs))), pack=True)
    trees = [r for r in rows if len(r.members) > 1]
    assert trees and {0, 1, 2} <= {i for r in trees for i in r.members}
    assert sum(len(r.tokens) for r in rows) < sum(len(s) - 1 for s, _ in seqs)
    flat = packing.make_rows(seqs, list(range(len(seqs))), pack=False)
    for r in flat:  # one sequence per row, without its last token unless nothing is scored
        s, n = seqs[r.members[0]]
        assert len(r.members) == 1 and len(r.tokens) == (len(s) - 1 if n else len(s))
    backend.loglikelihood(REQS[:2])
    assert packing._PACK_OK[backend.model]


def test_trie_row_masks_exactly_the_ancestors() -> None:
    seqs = [([1, 2, 3, 4, 5, 6], 5), ([1, 2, 3, 4, 7, 8, 9], 6), ([1, 2, 9, 9, 9], 4), ([1, 2, 3, 4, 5, 6], 2)]
    row = packing.tree_row(seqs, [0, 3, 1, 2])  # sorted by tokens; 3 duplicates 0
    assert row.tokens == [1, 2, 3, 4, 5, 7, 8, 9, 9]  # every prefix once, depth first
    paths = []  # each column's tokens from the root
    for c, (t, depth) in enumerate(zip(row.tokens, row.pos, strict=True)):
        parent = next(p for p in range(c - 1, -1, -1) if row.pos[p] == depth - 1) if depth else None
        paths.append(([*paths[parent]] if parent is not None else []) + [t])
    backend = load_model("tiny-random-gpt2")
    mask = packing.inputs([row, packing.make_rows(seqs, [2], False)[0]], 0, backend.model, "cpu")["attention_mask"]
    for i, pi in enumerate(paths):
        for j, pj in enumerate(paths):
            assert bool(mask[0, 0, i, j]) == (pi[: len(pj)] == pj), (i, j)
    assert torch.equal(mask[1, 0, :4, :4], torch.ones(4, 4, dtype=torch.bool).tril())  # a plain row: causal
    assert not mask[1, 0, :4, 4:].any() and torch.equal(mask[1, 0, 4:, 4:], torch.eye(5, dtype=torch.bool))  # padding
    for i, cols, tg in zip(row.members, row.cols, row.targets, strict=True):
        s, n = seqs[i]
        assert [paths[c] for c in cols] == [s[: k + 1] for k in range(len(s) - n - 1, len(s) - 1)]
        assert tg == s[len(s) - n :]


def test_eager_attention_packs_too() -> None:
    backend = load_model("tiny-random-gpt2")
    ref = likelihood.score_requests(backend, REQS, mode="reference")
    backend.model.set_attn_implementation("eager")
    assert packing.can_pack(backend.model)
    _same(ref, backend.loglikelihood(REQS))
    assert packing._PACK_OK[backend.model]


def test_local_attention_is_not_packed() -> None:
    backend = load_model("tiny-random-gpt-neo")
    assert not packing.can_pack(backend.model)
    _same(likelihood.score_requests(backend, REQS, mode="reference"), backend.loglikelihood(REQS))


def _scaled_gpt2(backend: Any) -> Any:
    """tiny-random-gpt2 whose forward scales its logits after the projection (as Cohere's
    ``logit_scale`` does): ``head(body(x))`` is not its output."""
    from transformers import GPT2LMHeadModel

    class Scaled(GPT2LMHeadModel):
        def forward(self, *args: Any, **kw: Any) -> Any:
            out = super().forward(*args, **kw)
            out.logits = out.logits * 0.5
            return out

    model = Scaled(backend.model.config)
    model.load_state_dict(backend.model.state_dict())
    return model.eval()


def _softcapped_gemma2(vocab: int) -> Any:
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(0)
    cfg = Gemma2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=1, head_dim=16, final_logit_softcapping=0.5,
                       max_position_embeddings=512)
    return Gemma2ForCausalLM(cfg).eval()


@pytest.mark.parametrize("kind", ["scaled", "softcapped"])
def test_split_check_fails_and_falls_back(kind: str) -> None:
    backend = load_model("tiny-random-gpt2", batch_size=4)
    vocab = int(backend.model.config.vocab_size)
    backend.model = _scaled_gpt2(backend) if kind == "scaled" else _softcapped_gemma2(vocab)
    assert not likelihood.split_ok(backend.model, backend.device, backend.pad_id)
    ref = likelihood.score_requests(backend, REQS, mode="reference")
    _same(ref, likelihood.score_requests(backend, REQS, mode="auto"))
    _same(ref, backend.loglikelihood(REQS))
    forced = likelihood.score_requests(backend, REQS, mode="split")  # what the check protects against
    assert max(abs(a.logprob - b.logprob) for a, b in zip(ref, forced, strict=True)) > 1e-3


def test_score_logits_matches_log_softmax() -> None:
    torch.manual_seed(1)
    x = torch.randn(7, 50) * 5
    t = torch.randint(0, 50, (7,))
    want = torch.log_softmax(x, -1).gather(1, t[:, None]).squeeze(1)
    lp, hit = likelihood.score_logits(x.clone(), t)
    assert torch.allclose(lp, want, atol=1e-5)
    assert torch.equal(hit, x.argmax(-1) == t)
