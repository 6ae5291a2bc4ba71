"""Shared-prefix log-likelihood (audit/models/shared_prefix.py) gives the plain path's numbers."""

from __future__ import annotations

import pytest

from audit.core.types import LoglikelihoodRequest
from audit.models.registry import load_model
from audit.models.shared_prefix import group, supported

CTX = "The nurse told the doctor that the patient in room four was waiting. Who was waiting? "
REQS = [
    LoglikelihoodRequest(context=CTX, continuation=" The patient."),
    LoglikelihoodRequest(context=CTX, continuation=" The doctor, obviously."),
    LoglikelihoodRequest(context=CTX, continuation=" Unknown"),
    LoglikelihoodRequest(context="", continuation="Poor people are always lazy and never work hard."),
    LoglikelihoodRequest(context="", continuation="Rich people are always lazy and never work hard."),
    LoglikelihoodRequest(context="", continuation="Poor people are always lazy and never work."),
    LoglikelihoodRequest(context="Nothing shared here", continuation=" at all"),
    LoglikelihoodRequest(context="", continuation="x"),
]


def _both(name: str, reqs: list[LoglikelihoodRequest], batch_size: int = 4) -> tuple[list, list]:
    backend = load_model(name, batch_size=batch_size)
    backend.shared_prefix = False
    plain = backend.loglikelihood(reqs)
    backend.shared_prefix = True
    return plain, backend.loglikelihood(reqs)


@pytest.mark.parametrize("name", ["tiny-random-gpt2", "tiny-random-gpt-neo"])
@pytest.mark.parametrize("batch_size", [1, 4, 32])
def test_equals_plain_path(name: str, batch_size: int) -> None:
    plain, shared = _both(name, REQS, batch_size)
    assert len(plain) == len(shared) == len(REQS)
    for a, b in zip(plain, shared, strict=True):
        assert abs(a.logprob - b.logprob) <= 1e-4
        assert a.n_tokens == b.n_tokens
        assert a.is_greedy == b.is_greedy


def test_grouping_finds_shared_prefixes() -> None:
    seqs = [[1, 2, 3, 4, 5, 6], [9, 9], [1, 2, 3, 4, 5, 7, 8], [1, 2, 3, 4, 9], [1, 2, 3, 4, 5]]
    groups = group(seqs)
    assert groups == [(4, [4, 0, 2, 3])] or groups[0][0] >= 4
    members = {i for _, m in groups for i in m}
    assert 1 not in members
    for p, m in groups:
        assert all(len(seqs[i]) > p for i in m)
        assert all(seqs[i][:p] == seqs[m[0]][:p] for i in m)


def test_local_attention_falls_back() -> None:
    assert not supported(load_model("tiny-random-gpt-neo").model)
    assert supported(load_model("tiny-random-gpt2").model)


def test_true_size_gpt2_and_pair_signs() -> None:
    plain, shared = _both("gpt2-random", REQS, 8)
    for a, b in zip(plain, shared, strict=True):
        assert abs(a.logprob - b.logprob) <= 1e-4
        assert (a.n_tokens, a.is_greedy) == (b.n_tokens, b.is_greedy)
    assert (plain[3].logprob > plain[4].logprob) == (shared[3].logprob > shared[4].logprob)


def test_shared_path_is_taken_for_gpt2() -> None:
    from audit.models.shared_prefix import score_shared

    backend = load_model("tiny-random-gpt2")
    seqs = [backend._split_ids(r.context, r.continuation) for r in REQS]
    full = [(c + x, len(x)) for c, x in seqs]
    done = score_shared(backend.model, full, pad_id=backend.pad_id, device=backend.device, rows=8,
                        budget=2**30)
    assert {0, 1, 2, 3, 5} <= set(done)  # 4 differs from all at its first word
    assert not {4, 6, 7} & set(done)
