"""Packed rows for the split likelihood path (``audit/models/likelihood.py``).

Each sequence is scored from the outputs at its positions ``start - 1 .. len - 2``, so its last
token is only ever a target: a row drops it. Sequences sharing a token prefix (CrowS-Pairs' minimal
pairs, BBQ's options after one context, StereoSet's fillers) go into one row as a tree: the prefix
once, then each member's remaining tokens, with position ids restarting after the prefix and a 4D
attention mask under which a member's tokens see the prefix and their own earlier tokens only. One
forward pass, no KV cache to copy, and the prefix's positions are computed once.

``packing_ok`` checks on a short input, once per model, that a packed row reproduces the unpacked
scores; models it fails (or with windowed/local attention, or an attention implementation other
than ``sdpa``/``eager``) get one sequence per row.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import torch

from audit.models.shared_prefix import group, supported

MIN_PREFIX = 2  # BOS alone is not worth a tree
MAX_GROUP = 8
MIN_SAVED = 0.05  # a tree costs next to nothing, so take it when it saves this share of tokens

_PACK_OK: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


@dataclass
class Row:
    """One row of a batch: its tokens, segment per token (0: prefix, j + 1: member j's suffix),
    position ids, and per member the request index, scored columns and their targets."""

    tokens: list[int] = field(default_factory=list)
    seg: list[int] = field(default_factory=list)
    pos: list[int] = field(default_factory=list)
    members: list[int] = field(default_factory=list)
    cols: list[list[int]] = field(default_factory=list)
    targets: list[list[int]] = field(default_factory=list)


def _member(row: Row, i: int, s: list[int], n: int, p: int, offset: int) -> None:
    start = len(s) - n
    row.members.append(i)
    row.cols.append([t if t < p else offset + t - p for t in range(start - 1, len(s) - 1)])
    row.targets.append(s[start:])


def make_rows(seqs: list[tuple[list[int], int]], order: list[int], pack: bool) -> list[Row]:
    """Rows for the requests in ``order``: trees for groups sharing a prefix when ``pack``, one
    sequence (without its last token) per row otherwise."""
    rows: list[Row] = []
    taken: set[int] = set()
    if pack:
        sub = [seqs[i][0] for i in order]
        for p, members in group(sub, min_prefix=MIN_PREFIX, max_group=MAX_GROUP, min_saved=MIN_SAVED):
            ids = [order[m] for m in members]
            prefix = seqs[ids[0]][0][:p]
            row = Row(tokens=list(prefix), seg=[0] * p, pos=list(range(p)))
            for j, i in enumerate(ids):
                s, n = seqs[i]
                rest = s[p : len(s) - 1]
                _member(row, i, s, n, p, len(row.tokens))
                row.tokens += rest
                row.seg += [j + 1] * len(rest)
                row.pos += range(p, p + len(rest))
            rows.append(row)
            taken.update(ids)
    for i in order:
        if i in taken:
            continue
        s, n = seqs[i]
        keep = max(1, len(s) - 1) if n else len(s)
        row = Row(tokens=s[:keep], seg=[0] * keep, pos=list(range(keep)))
        _member(row, i, s, n, keep, keep)
        rows.append(row)
    return rows


def inputs(rows: list[Row], pad_id: int, model: Any, device: str) -> dict[str, torch.Tensor]:
    """``input_ids``, ``attention_mask`` (2D when no row is a tree, else 4D in the form the
    model's attention implementation takes) and, for trees, ``position_ids``."""
    width = max(len(r.tokens) for r in rows)
    ids = torch.tensor([r.tokens + [pad_id] * (width - len(r.tokens)) for r in rows], dtype=torch.long)
    lengths = torch.tensor([len(r.tokens) for r in rows])
    real = torch.arange(width)[None, :] < lengths[:, None]
    if all(len(r.members) == 1 for r in rows):
        return {"input_ids": ids.to(device), "attention_mask": real.long().to(device)}
    seg = torch.tensor([r.seg + [-1] * (width - len(r.seg)) for r in rows])
    pos = torch.tensor([r.pos + [0] * (width - len(r.pos)) for r in rows], dtype=torch.long)
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    sq, sk = seg[:, :, None], seg[:, None, :]
    mask = causal & (sk >= 0) & ((sk == 0) | (sk == sq))
    mask |= torch.eye(width, dtype=torch.bool)  # padding rows attend to themselves (no NaN)
    mask = mask[:, None]
    if model.config._attn_implementation == "eager":
        dtype = next(model.parameters()).dtype
        mask = torch.zeros(mask.shape, dtype=dtype).masked_fill(~mask, torch.finfo(dtype).min)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "position_ids": pos.to(device)}


def can_pack(model: Any) -> bool:
    impl = getattr(model.config, "_attn_implementation", None)
    return impl in ("sdpa", "eager") and supported(model)


def packing_ok(model: Any, score: Any) -> bool:
    """Whether packed rows give the unpacked scores on a short input (checked once per model);
    ``score(seqs, pack)`` scores ``[(tokens, n_scored)]`` either way."""
    if model in _PACK_OK:
        return _PACK_OK[model]
    ok = False
    if can_pack(model):
        vocab = int(getattr(model.config, "vocab_size", 50257) or 50257)
        base = [(5 * k + 3) % vocab for k in range(5)]
        seqs = [(base + [(7 * k + 1) % vocab for k in range(4)], 6), (base + [(3 * k + 2) % vocab for k in range(3)], 5),
                ([(11 * k + 4) % vocab for k in range(4)], 3)]
        try:
            a, b = score(seqs, False), score(seqs, True)
            ok = all(abs(x[0] - y[0]) <= 1e-4 * max(1.0, abs(x[0])) and x[1:] == y[1:] for x, y in zip(a, b, strict=True))
        except Exception:
            ok = False
    _PACK_OK[model] = ok
    return ok
