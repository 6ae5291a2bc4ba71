"""Samples of one prompt share its prefill.

The k samples of a suite item are k generation requests with the same prompt and their own random
streams (``record_seed(run_seed, key, sample)``), so a batch often holds one prompt's token ids in
several rows. ``HFBackend`` runs such a prompt's forward pass once and gives every row that holds
it a copy of its KV cache before the decode steps (``LlamaDecoder.prefill_shared`` for the lean
decoder, ``expand_cache`` for a transformers cache). Each row keeps its own sampler, so a
completion does not depend on whether its prompt was shared, up to float rounding: the prefill's
products then see fewer rows, as they would in a smaller batch (docs/architecture.md,
reproducibility contract). ``HFBackend.share_prompts = False`` prefills every row.

``grouped_order`` and ``batch_end`` keep a prompt's rows together in one batch where the batch size
allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from audit.models.fast_decode import LlamaDecoder


def shared_rows(seqs: Sequence[Sequence[int]]) -> tuple[list[int], list[int]]:
    """``(first, source)``: the rows where each distinct prompt first appears (ascending), and for
    every row the position in ``first`` of its prompt."""
    seen: dict[tuple[int, ...], int] = {}
    first: list[int] = []
    source: list[int] = []
    for row, ids in enumerate(seqs):
        j = seen.setdefault(tuple(ids), len(first))
        if j == len(first):
            first.append(row)
        source.append(j)
    return first, source


def prefill(
    model: Any,
    lean: LlamaDecoder | None,
    seqs: Sequence[Sequence[int]],
    ids: torch.Tensor,
    mask: torch.Tensor,
    positions: torch.Tensor,
    share: bool = True,
) -> tuple[torch.Tensor, Any]:
    """The prompts' forward pass over a left-padded batch (``ids``, ``mask``, ``positions``; ``seqs``
    its rows' token ids): every row's last-position logits, and the transformers KV cache (None
    with the lean decoder ``lean``, whose own cache it fills). With ``share``, a prompt that several
    rows hold runs once and each of them gets a copy of its cache. The vocabulary projection
    runs for the last position only."""
    first, source = shared_rows(seqs) if share else ([], [])
    index = torch.tensor(source, device=ids.device) if 0 < len(first) < len(seqs) else None
    if lean is not None:
        if index is None:
            return lean.step(ids, 0), None
        return lean.prefill_shared(ids, torch.tensor(first, device=ids.device), index), None
    if index is not None:
        rows = torch.tensor(first, device=ids.device)
        ids, mask, positions = ids[rows], mask[rows], positions[rows]
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    logits = out.logits[:, -1, :].float()
    if index is None:
        return logits, out.past_key_values
    return logits.index_select(0, index), expand_cache(out.past_key_values, index)


def expand_cache(past: Any, index: torch.Tensor) -> Any:
    """A transformers KV cache over the distinct prompts -> one over every row (row r gets the
    cache of prompt ``index[r]``): ``Cache.reorder_cache``, the per-layer ``index_select`` that
    beam search uses, or the same on a legacy tuple of (key, value) tensors."""
    if hasattr(past, "reorder_cache"):
        past.reorder_cache(index)
        return past
    return tuple(tuple(t.index_select(0, index) for t in layer) for layer in past)


def grouped_order(encoded: Sequence[Sequence[int]]) -> list[int]:
    """Request indices sorted by prompt length, identical prompts kept together at the place of
    their first occurrence. Where identical prompts already come together (the samples of one item
    in a work unit), this is the plain ``(length, index)`` order."""
    first: dict[tuple[int, ...], int] = {}
    for i, ids in enumerate(encoded):
        first.setdefault(tuple(ids), i)
    return sorted(range(len(encoded)), key=lambda i: (len(encoded[i]), first[tuple(encoded[i])], i))


def batch_end(prompts: Sequence[Sequence[int]], start: int, size: int) -> int:
    """Where a batch of at most ``size`` rows from ``start`` ends (``prompts`` in batch order): before
    a run of identical prompts it would cut, unless that run began at ``start`` (a run longer than
    the batch is cut wherever it must be)."""
    end = min(start + size, len(prompts))
    if end == len(prompts) or prompts[end] != prompts[end - 1]:
        return end
    cut = end - 1
    while cut > start and prompts[cut - 1] == prompts[end]:
        cut -= 1
    return cut if cut > start else end
