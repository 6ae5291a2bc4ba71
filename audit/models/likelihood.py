"""Log-likelihood scoring for the ``hf`` backend: the likelihood suites' engine.

``score_requests`` takes a backend (its ``model``, ``tokenizer``, ``pad_id``, ``start_id``,
``device``, ``batch_size``, ``max_positions`` and ``shared_prefix`` switch) and returns, per
request, the continuation's summed log-probability, its token count and whether greedy decoding
would have produced it. Requests sharing a long token prefix run it once
(``audit/models/shared_prefix.py``); the rest go through length-sorted, right-padded batches whose
logits stay within ``LOGIT_BUDGET``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from audit.models.base import LoglikelihoodResult
from audit.models.shared_prefix import score_shared
from audit.types import LoglikelihoodRequest

LOGIT_BUDGET = 24 * 2**20  # floats of logits per likelihood batch (96 MiB in float32)


def split_ids(backend: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Context and continuation token ids; an empty context is conditioned on BOS."""
    tok = backend.tokenizer
    whole = tok(context + continuation)["input_ids"]
    if not context:
        return [backend.start_id], whole
    ctx = tok(context)["input_ids"]
    if whole[: len(ctx)] == ctx and len(whole) > len(ctx):
        return ctx, whole[len(ctx) :]
    return ctx, tok(continuation, add_special_tokens=False)["input_ids"]


def likelihood_batches(backend: Any, order: list[int], lengths: list[int]) -> list[list[int]]:
    """Length-sorted batches of at most ``batch_size`` rows whose logits (rows x width x vocab
    floats) stay within ``LOGIT_BUDGET``, so a 262k vocabulary does not need gigabytes."""
    vocab = int(getattr(backend.model.config, "vocab_size", 50257) or 50257)
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:  # ascending length, so the last row added sets the width
        if cur and (len(cur) >= backend.batch_size or (len(cur) + 1) * lengths[i] * vocab > LOGIT_BUDGET):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


@torch.inference_mode()
def score_requests(backend: Any, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
    pairs = [split_ids(backend, r.context, r.continuation) for r in requests]
    limit = backend.max_positions
    results: list[LoglikelihoodResult | None] = [None] * len(pairs)
    if backend.shared_prefix:  # run shared token prefixes once (audit/models/shared_prefix.py)
        full = [(ctx + cont)[-limit:] for ctx, cont in pairs]
        done = score_shared(
            backend.model, [(s, min(len(c), len(s) - 1)) for s, (_, c) in zip(full, pairs, strict=True)],
            pad_id=backend.pad_id, device=backend.device, rows=backend.batch_size, budget=LOGIT_BUDGET,
        )
        for i, (lp, n, greedy) in done.items():
            results[i] = LoglikelihoodResult(lp, n, greedy)
    left = [i for i in range(len(pairs)) if results[i] is None]
    order = sorted(left, key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    for idx in likelihood_batches(backend, order, [min(len(c) + len(x), limit) for c, x in pairs]):
        seqs = []
        for i in idx:
            ctx, cont = pairs[i]
            seq = (ctx + cont)[-limit:]
            seqs.append((seq, min(len(cont), len(seq) - 1)))
        width = max(len(s) for s, _ in seqs)
        ids = torch.full((len(seqs), width), backend.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, (s, _) in enumerate(seqs):
            ids[row, : len(s)] = torch.tensor(s)
            mask[row, : len(s)] = 1
        device = backend.device
        logits = backend.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        for row, (i, (s, n_cont)) in enumerate(zip(idx, seqs, strict=True)):
            start = len(s) - n_cont
            lp = torch.log_softmax(logits[row, start - 1 : len(s) - 1].float(), dim=-1)
            target = torch.tensor(s[start:], device=lp.device)
            tok_lp = lp.gather(-1, target[:, None]).squeeze(-1)
            greedy = bool((lp.argmax(-1) == target).all())
            results[i] = LoglikelihoodResult(float(tok_lp.sum()), n_cont, greedy)
    return [r for r in results if r is not None]
