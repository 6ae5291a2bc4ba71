"""Packed rows for the split likelihood path (``audit/models/likelihood.py``).

Each sequence is scored from the outputs at its positions ``start - 1 .. len - 2``, so its last
token is only ever a target: a row drops it. Sequences sharing token prefixes (CrowS-Pairs' minimal
pairs, BBQ's options after one context, StereoSet's fillers) go into one row as a token trie: the
members sorted, each member adding only the tokens after its longest common prefix with the one
before it, laid out depth first. A token's position id is its depth, and a 4D attention mask lets it
see exactly its ancestors and itself: in depth-first order the subtree of column ``j`` is the
columns ``j .. end[j]``, so column ``i`` may attend to ``j`` when ``j <= i <= end[j]``. One forward
pass, no KV cache to copy; every prefix is computed once, not only the one all members share
(CrowS-Pairs: 22,828 body positions instead of 27,462 with one shared prefix per row, 31,664 unpacked).

``packing_ok`` checks on a short input, once per model, that a packed row reproduces the unpacked
scores; models it fails (or with windowed/local attention, or an attention implementation other
than ``sdpa``/``eager``) get one sequence per row.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import torch

from audit.models.shared_prefix import common_prefix, supported, vocab_size

MIN_PREFIX = 2  # neighbours sharing fewer tokens (BOS alone) start a new row
MAX_GROUP = 8  # members per row (wider rows cost attention, width^2)
MIN_SAVED = 0.05  # a tree costs next to nothing, so take it when it saves this share of tokens

_PACK_OK: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


@dataclass
class Row:
    """One row of a batch: its tokens, position ids, per token the last column of its subtree
    (``end``), and per member the request index, scored columns and their targets."""

    tokens: list[int] = field(default_factory=list)
    pos: list[int] = field(default_factory=list)
    end: list[int] = field(default_factory=list)
    members: list[int] = field(default_factory=list)
    cols: list[list[int]] = field(default_factory=list)
    targets: list[list[int]] = field(default_factory=list)


def tree_row(seqs: list[tuple[list[int], int]], ids: list[int]) -> Row:
    """The trie row of ``ids`` (sorted by their tokens, each with at least one scored token)."""
    row = Row()
    parent: list[int] = []
    prev: list[int] = []
    prev_cols: list[int] = []
    for i in ids:
        s, n = seqs[i]
        feed = s[: len(s) - 1]
        p = common_prefix(prev, feed)
        cols = prev_cols[:p]
        for t in range(p, len(feed)):
            parent.append(cols[t - 1] if t else -1)
            cols.append(len(row.tokens))
            row.tokens.append(feed[t])
            row.pos.append(t)
        start = len(s) - n
        row.members.append(i)
        row.cols.append(cols[start - 1 :])
        row.targets.append(s[start:])
        prev, prev_cols = feed, cols
    row.end = list(range(len(row.tokens)))
    for j in range(len(row.tokens) - 1, -1, -1):  # children come after their parent
        if parent[j] >= 0 and row.end[j] > row.end[parent[j]]:
            row.end[parent[j]] = row.end[j]
    return row


def _trees(seqs: list[tuple[list[int], int]], order: list[int]) -> list[Row]:
    """Trie rows of runs of at most ``MAX_GROUP`` sorted neighbours sharing ``MIN_PREFIX`` tokens
    whose trie saves ``MIN_SAVED`` of their tokens."""
    cand = sorted((i for i in order if seqs[i][1] >= 1 and len(seqs[i][0]) >= 2), key=lambda i: seqs[i][0][:-1])
    runs: list[list[int]] = []
    cur: list[int] = []
    for i in cand:
        if cur and (len(cur) >= MAX_GROUP or common_prefix(seqs[cur[-1]][0][:-1], seqs[i][0][:-1]) < MIN_PREFIX):
            runs.append(cur)
            cur = []
        cur.append(i)
    runs.append(cur)
    out = []
    for run in runs:
        if len(run) > 1:
            flat = sum(len(seqs[i][0]) - 1 for i in run)
            row = tree_row(seqs, run)
            if flat - len(row.tokens) >= MIN_SAVED * flat:
                out.append(row)
    return out


def make_rows(seqs: list[tuple[list[int], int]], order: list[int], pack: bool) -> list[Row]:
    """Rows for the requests in ``order``: tries for runs sharing prefixes when ``pack``, one
    sequence (without its last token) per row otherwise."""
    rows: list[Row] = []
    taken: set[int] = set()
    if pack:
        for row in _trees(seqs, order):
            rows.append(row)
            taken.update(row.members)
    for i in order:
        if i in taken:
            continue
        s, n = seqs[i]
        keep = max(1, len(s) - 1) if n else len(s)
        start = len(s) - n
        rows.append(Row(tokens=s[:keep], pos=list(range(keep)), end=[keep - 1] * keep, members=[i],
                        cols=[list(range(start - 1, len(s) - 1))], targets=[s[start:]]))
    return rows


def inputs(rows: list[Row], pad_id: int, model: Any, device: str) -> dict[str, torch.Tensor]:
    """``input_ids``, ``attention_mask`` (2D when no row is a tree, else 4D in the form the
    model's attention implementation takes) and, for trees, ``position_ids``."""
    width = max(len(r.tokens) for r in rows)
    ids = torch.tensor([r.tokens + [pad_id] * (width - len(r.tokens)) for r in rows], dtype=torch.long)
    if all(len(r.members) == 1 for r in rows):
        lengths = torch.tensor([len(r.tokens) for r in rows])
        real = torch.arange(width)[None, :] < lengths[:, None]
        return {"input_ids": ids.to(device), "attention_mask": real.long().to(device)}
    end = torch.tensor([r.end + [-1] * (width - len(r.end)) for r in rows])
    pos = torch.tensor([r.pos + [0] * (width - len(r.pos)) for r in rows], dtype=torch.long)
    col = torch.arange(width)
    mask = (col[None, :] <= col[:, None])[None] & (col[None, :, None] <= end[:, None, :])
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
        vocab = vocab_size(model)
        base = [(5 * k + 3) % vocab for k in range(5)]
        seqs = [(base + [(7 * k + 1) % vocab for k in range(4)], 6), (base + [(3 * k + 2) % vocab for k in range(3)], 5),
                (base[:3] + [(13 * k + 6) % vocab for k in range(4)], 5), ([(11 * k + 4) % vocab for k in range(4)], 3)]
        try:
            a, b = score(seqs, False), score(seqs, True)
            ok = all(abs(x[0] - y[0]) <= 1e-4 * max(1.0, abs(x[0])) and x[1:] == y[1:] for x, y in zip(a, b, strict=True))
        except Exception:
            ok = False
    _PACK_OK[model] = ok
    return ok
