"""Shared-prefix log-likelihood scoring for the ``hf`` backend.

Likelihood suites send requests whose token sequences share long prefixes (BBQ's answer options
after one context, CrowS-Pairs' minimal pairs, StereoSet's fillers). Here sequences are sorted so
neighbours share prefixes, grouped by their longest common token prefix, the prefix is run once
with ``use_cache=True`` and each member's remaining tokens are run on the prefix's KV cache
(selected per member), with attention masks that hide the prefix padding and explicit position ids.
Results equal the plain right-padded path within float32 rounding. Models with sliding-window or
local attention, and sequences that share fewer than ``MIN_PREFIX`` tokens, are left to the plain path.
"""

from __future__ import annotations

from typing import Any

import torch

MIN_PREFIX = 4  # shorter shared prefixes are not worth a second forward pass
MAX_GROUP = 8
# A group pays a second forward pass; take it only when the prefix saves this share of its tokens
# (BBQ: 3 options after one long context ~0.6; a CrowS-Pairs pair ~0.25, measured slower cached).
MIN_SAVED = 0.35


def supported(model: Any) -> bool:
    """False for models whose attention is windowed/local (the cached path is not checked there)."""
    cfg = model.config
    if getattr(cfg, "sliding_window", None):
        return False
    layers = getattr(cfg, "attention_layers", None) or getattr(cfg, "attention_types", None)
    return not (layers and "local" in str(layers))


def vocab_size(model: Any) -> int:
    """The model's vocabulary size (GPT-2's when its config does not say)."""
    return int(getattr(model.config, "vocab_size", 50257) or 50257)


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def group(
    seqs: list[list[int]], *, min_prefix: int = MIN_PREFIX, max_group: int = MAX_GROUP, min_saved: float = MIN_SAVED
) -> list[tuple[int, list[int]]]:
    """(prefix length, member indices) for groups of 2+ sequences sharing >= ``min_prefix``
    tokens, at most ``max_group`` each, that save ``min_saved`` of their tokens; every member
    keeps at least one token after the prefix."""
    order = sorted(range(len(seqs)), key=lambda i: seqs[i])
    groups: list[tuple[int, list[int]]] = []
    cur: list[int] = []
    p = 0
    for i in order:
        if cur:
            q = min(p, common_prefix(seqs[cur[0]], seqs[i]), len(seqs[i]) - 1)
            if q >= min_prefix and len(cur) < max_group:
                cur.append(i)
                p = q
                continue
            if _worth(cur, p, seqs, min_saved):
                groups.append((p, cur))
        cur, p = [i], len(seqs[i]) - 1
    if _worth(cur, p, seqs, min_saved):
        groups.append((p, cur))
    return groups


def _worth(members: list[int], p: int, seqs: list[list[int]], min_saved: float) -> bool:
    return len(members) > 1 and (len(members) - 1) * p >= min_saved * sum(len(seqs[i]) for i in members)


def _chunks(groups: list[tuple[int, list[int]]], seqs: list[list[int]], rows: int, budget: int,
            vocab: int) -> list[list[tuple[int, list[int]]]]:
    out: list[list[tuple[int, list[int]]]] = []
    cur: list[tuple[int, list[int]]] = []
    for g in groups:
        trial = [*cur, g]
        members = sum(len(m) for _, m in trial)
        width = max(len(seqs[i]) for _, m in trial for i in m)
        if cur and (members > rows or members * width * vocab > budget):
            out.append(cur)
            trial = [g]
        cur = trial
    if cur:
        out.append(cur)
    return out


def score_shared(
    model: Any, seqs: list[tuple[list[int], int]], *, pad_id: int, device: str, rows: int, budget: int
) -> dict[int, tuple[float, int, bool]]:
    """Scores of the grouped sequences, by index: (sum log-prob of the last ``n_cont`` tokens,
    n_cont, all greedy). Indices absent from the result are for the plain path."""
    if not supported(model):
        return {}
    toks = [s for s, _ in seqs]
    vocab = vocab_size(model)
    out: dict[int, tuple[float, int, bool]] = {}
    groups = sorted(group(toks), key=lambda g: max(len(toks[i]) for i in g[1]))  # little padding
    for chunk in _chunks(groups, toks, rows, budget, vocab):
        pmax = max(p for p, _ in chunk)
        pre = torch.full((len(chunk), pmax), pad_id, dtype=torch.long)
        pre_mask = torch.zeros((len(chunk), pmax), dtype=torch.long)
        for g, (p, members) in enumerate(chunk):
            pre[g, :p] = torch.tensor(toks[members[0]][:p])
            pre_mask[g, :p] = 1
        res = model(input_ids=pre.to(device), attention_mask=pre_mask.to(device), use_cache=True)
        cache = res.past_key_values
        if not hasattr(cache, "batch_select_indices"):
            return {}
        rows_of = [(g, i) for g, (_, members) in enumerate(chunk) for i in members]
        sel = torch.tensor([g for g, _ in rows_of], device=device)
        cache.batch_select_indices(sel)
        smax = max(len(toks[i]) - chunk[g][0] for g, i in rows_of)
        suf = torch.full((len(rows_of), smax), pad_id, dtype=torch.long)
        suf_mask = torch.zeros((len(rows_of), smax), dtype=torch.long)
        pos = torch.zeros((len(rows_of), smax), dtype=torch.long)
        for r, (g, i) in enumerate(rows_of):
            p = chunk[g][0]
            rest = toks[i][p:]
            suf[r, : len(rest)] = torch.tensor(rest)
            suf_mask[r, : len(rest)] = 1
            pos[r] = p + torch.arange(smax)
        mask = torch.cat([pre_mask.to(device)[sel], suf_mask.to(device)], dim=1)
        logits = model(
            input_ids=suf.to(device), attention_mask=mask, position_ids=pos.to(device), past_key_values=cache
        ).logits
        for r, (g, i) in enumerate(rows_of):
            p = chunk[g][0]
            s, n_cont = seqs[i]
            row = torch.cat([res.logits[g, :p], logits[r, : len(s) - p]], dim=0)
            start = len(s) - n_cont
            lp = torch.log_softmax(row[start - 1 : len(s) - 1].float(), dim=-1)
            target = torch.tensor(s[start:], device=lp.device)
            tok_lp = lp.gather(-1, target[:, None]).squeeze(-1)
            out[i] = (float(tok_lp.sum()), n_cont, bool((lp.argmax(-1) == target).all()))
    return out
