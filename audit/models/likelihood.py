"""Log-likelihood scoring for the ``hf`` backend: the likelihood suites' engine.

``score_requests`` takes a backend (its ``model``, ``tokenizer``, ``pad_id``, ``start_id``,
``device``, ``batch_size``, ``max_positions`` and ``shared_prefix`` switch) and returns, per
request, the continuation's summed log-probability, its token count and whether greedy decoding
would have produced it. Requests sharing a long token prefix run it once
(``audit/models/shared_prefix.py``); the rest take one of three paths:

- ``split`` (the default): the transformer body runs on length-sorted, right-padded batches of up
  to ``TOKEN_BUDGET`` token positions (shared prefixes packed as token tries,
  ``audit/models/packing.py``); only the scored positions' hidden states go through the output
  projection (a position several requests share, once), in chunks of ``LOGIT_BUDGET`` floats,
  scored in one vectorized pass (``score_hidden``). It is taken only when, on a short input, it reproduces the model's own
  ``logits`` (``split_ok``): models that transform their logits after the projection (Gemma 2's
  soft-capping, Cohere's ``logit_scale``) fail that check and take
- ``logits``: the model's full forward pass on batches whose logits stay within ``LOGIT_BUDGET``,
  scored by the same vectorized pass;
- ``reference``: the per-row ``log_softmax`` path the others are tested against.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, Literal

import torch

from audit.core.types import LoglikelihoodRequest
from audit.models import packing
from audit.models.base import LoglikelihoodResult
from audit.models.batch_budget import ATTN_BUDGET, attention_heads
from audit.models.shared_prefix import score_shared, vocab_size

LOGIT_BUDGET = 12 * 2**20  # floats of logits per batch or chunk (48 MiB in float32)
TOKEN_BUDGET = 2048  # token positions per forward pass of the body on the split path
PAD_SLACK = 0.1  # largest share of padding in a split-path batch
HEAD_ROWS = 256  # rows per chunk of the output projection on the split path (x vocab floats, twice)
Mode = Literal["auto", "split", "logits", "reference"]
Seq = tuple[list[int], int]  # token ids, how many trailing tokens are scored
Score = tuple[float, int, bool]  # summed log-probability, tokens scored, all greedy

_SPLIT_OK: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def split_ids(backend: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Context and continuation token ids; an empty context is conditioned on BOS."""
    return split_all(backend, [LoglikelihoodRequest(context=context, continuation=continuation)])[0]


def split_all(backend: Any, requests: Sequence[LoglikelihoodRequest]) -> list[tuple[list[int], list[int]]]:
    """``split_ids`` for every request, with one tokenizer call per kind of text (fast tokenizers
    encode a list in one go)."""
    tok = backend.tokenizer
    wholes = _encode(tok, [r.context + r.continuation for r in requests])
    with_ctx = [i for i, r in enumerate(requests) if r.context]
    ctxs = dict(zip(with_ctx, _encode(tok, [requests[i].context for i in with_ctx]), strict=True))
    out: list[tuple[list[int], list[int]] | None] = [None] * len(requests)
    retry: list[int] = []
    for i, whole in enumerate(wholes):
        if i not in ctxs:
            out[i] = ([backend.start_id], whole)
            continue
        ctx = ctxs[i]
        if whole[: len(ctx)] == ctx and len(whole) > len(ctx):
            out[i] = (ctx, whole[len(ctx) :])
        else:
            retry.append(i)
    conts = _encode(tok, [requests[i].continuation for i in retry], add_special_tokens=False)
    for i, cont in zip(retry, conts, strict=True):
        out[i] = (ctxs[i], cont)
    return [o for o in out if o is not None]


def _encode(tok: Any, texts: list[str], **kw: Any) -> list[list[int]]:
    return [list(ids) for ids in tok(texts, **kw)["input_ids"]] if texts else []


def likelihood_batches(backend: Any, order: list[int], lengths: list[int]) -> list[list[int]]:
    """Length-sorted batches of at most ``batch_size`` rows whose logits (rows x width x vocab
    floats) stay within ``LOGIT_BUDGET``, so a 262k vocabulary does not need gigabytes."""
    vocab = vocab_size(backend.model)
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


def token_batches(model: Any, order: list[int], lengths: list[int], budget: int | None = None) -> list[list[int]]:
    """Length-sorted batches of up to ``budget`` (default ``TOKEN_BUDGET``) token positions (rows x
    width, padding included), at most ``PAD_SLACK`` of them padding, whose attention scores stay
    within ``ATTN_BUDGET``."""
    budget = budget or TOKEN_BUDGET
    heads = attention_heads(model.config, default=16)
    batches: list[list[int]] = []
    cur: list[int] = []
    real = 0
    for i in order:  # ascending length, so the row added sets the width
        n, w = len(cur) + 1, lengths[i]
        if cur and (n * w > budget or n * heads * w * w > ATTN_BUDGET or n * w - real - w > PAD_SLACK * n * w):
            batches.append(cur)
            cur, real = [], 0
        cur.append(i)
        real += w
    if cur:
        batches.append(cur)
    return batches


def _padded(seqs: list[Seq], pad_id: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s, _ in seqs)
    ids = torch.tensor([s + [pad_id] * (width - len(s)) for s, _ in seqs], dtype=torch.long)
    lengths = torch.tensor([len(s) for s, _ in seqs])
    mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
    return ids.to(device), mask.to(device)


def _scored(seqs: list[Seq], width: int) -> tuple[list[int], list[int], list[int]]:
    """Flat positions (row * width + column) whose outputs predict the scored tokens, those
    tokens, and each position's row."""
    flat: list[int] = []
    targets: list[int] = []
    rows: list[int] = []
    for r, (s, n) in enumerate(seqs):
        start = len(s) - n
        flat.extend(range(r * width + start - 1, r * width + len(s) - 1))
        targets.extend(s[start:])
        rows.extend([r] * n)
    return flat, targets, rows


def score_logits(
    logits: torch.Tensor, targets: torch.Tensor, at: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each target and whether it is the argmax, for a (positions x vocab)
    chunk; ``at`` gives each target's row (default: row k for target k, one per row), so a
    position shared by several requests is normalized once. Overwrites ``logits`` when it is
    already float32 (no second vocabulary-sized buffer)."""
    x = logits if logits.dtype == torch.float32 else logits.float()
    if at is None:
        at = torch.arange(targets.shape[0], device=x.device)
    tgt = x[at, targets]  # before the in-place normalization below
    top, arg = x.max(dim=1, keepdim=True)
    lse = x.sub_(top).exp_().sum(dim=1).log_() + top.squeeze(1)
    return tgt - lse[at], arg.squeeze(1)[at] == targets


def _totals(seqs: list[Seq], rows: list[int], lp: torch.Tensor, hit: torch.Tensor) -> list[tuple[float, int, bool]]:
    index = torch.tensor(rows, dtype=torch.long, device=lp.device)
    sums = torch.zeros(len(seqs), dtype=torch.float64, device=lp.device).index_add_(0, index, lp.double())
    misses = torch.zeros(len(seqs), dtype=torch.long, device=lp.device).index_add_(0, index, (~hit).long())
    return [(float(a), n, int(m) == 0) for a, m, (_, n) in zip(sums.tolist(), misses.tolist(), seqs, strict=True)]


def score_hidden(
    head: Any, hidden: torch.Tensor, targets: torch.Tensor, vocab: int, at: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``score_logits`` of ``head(hidden)`` (``at``: each target's row of ``hidden``), chunked so no
    chunk exceeds ``LOGIT_BUDGET`` floats or ``HEAD_ROWS`` rows."""
    device = hidden.device
    step = max(1, min(HEAD_ROWS, LOGIT_BUDGET // max(1, vocab)))
    if at is None:
        at = torch.arange(targets.shape[0], device=device)
    order = torch.argsort(at, stable=True)
    at_s, tg_s = at[order], targets[order]
    bounds = torch.searchsorted(at_s, torch.arange(0, hidden.shape[0] + step, step, device=device)).tolist()
    lp = torch.empty(targets.shape[0], device=device)
    hit = torch.empty(targets.shape[0], dtype=torch.bool, device=device)
    for k, a in enumerate(range(0, hidden.shape[0], step)):
        lo, hi = bounds[k], bounds[k + 1]
        if hi > lo:
            lp[order[lo:hi]], hit[order[lo:hi]] = score_logits(head(hidden[a : a + step]), tg_s[lo:hi], at_s[lo:hi] - a)
    return lp, hit


def _body_head(model: Any) -> tuple[Any, Any] | None:
    body = getattr(model, "base_model", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if body is None or body is model or head is None:
        return None
    return body, head


def _hidden(body: Any, **inputs: torch.Tensor) -> torch.Tensor:
    out = body(**inputs, use_cache=False)
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]


def split_ok(model: Any, device: str, pad_id: int) -> bool:
    """Whether ``head(body(x))`` reproduces ``model(x).logits`` on a short padded input (checked
    once per model). False for models that transform logits after the projection."""
    if model in _SPLIT_OK:
        return _SPLIT_OK[model]
    ok = False
    parts = _body_head(model)
    if parts is not None:
        vocab = vocab_size(model)
        seqs: list[Seq] = [([(7 * k + 3) % vocab for k in range(6)], 5), ([(11 * k + 5) % vocab for k in range(3)], 2)]
        ids, mask = _padded(seqs, pad_id, device)
        try:
            with torch.inference_mode():
                want = model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()
                got = parts[1](_hidden(parts[0], input_ids=ids, attention_mask=mask)).float()
            real = mask.bool()
            ok = got.shape == want.shape and torch.allclose(got[real], want[real], rtol=1e-4, atol=1e-4)
        except Exception:
            ok = False
    _SPLIT_OK[model] = ok
    return ok


def _score_split(backend: Any, seqs: list[Seq], order: list[int], pack: bool | None = None) -> dict[int, Score]:
    """The split path over packed rows (``audit/models/packing.py``): trees for shared prefixes
    when ``pack`` (default: ``backend.shared_prefix`` and ``packing_ok``)."""
    model = backend.model
    if pack is None:
        pack = bool(backend.shared_prefix) and packing.packing_ok(
            model, lambda ss, pk: [v for _, v in sorted(_score_split(backend, ss, list(range(len(ss))), pk).items())]
        )
    body, head = _body_head(model)  # type: ignore[misc]
    vocab = vocab_size(model)
    out: dict[int, Score] = {}
    rows = packing.make_rows(seqs, order, pack)
    by_length = sorted(range(len(rows)), key=lambda j: len(rows[j].tokens))
    for idx in token_batches(model, by_length, [len(r.tokens) for r in rows]):
        batch = [rows[j] for j in idx]
        kw = packing.inputs(batch, backend.pad_id, model, backend.device)
        hidden = _hidden(body, **kw)
        width = kw["input_ids"].shape[1]
        unique: dict[int, int] = {}  # flat position -> row of the gathered hidden states
        at: list[int] = []
        targets: list[int] = []
        members: list[int] = []
        scored: list[tuple[int, int]] = []
        for r, row in enumerate(batch):
            for i, cols, tg in zip(row.members, row.cols, row.targets, strict=True):
                at.extend(unique.setdefault(r * width + c, len(unique)) for c in cols)
                targets.extend(tg)
                members.extend([len(scored)] * len(tg))
                scored.append((i, len(tg)))
        flat = torch.tensor(list(unique), dtype=torch.long, device=hidden.device)
        h = hidden.reshape(-1, hidden.shape[-1]).index_select(0, flat)
        del hidden
        lp, hit = score_hidden(head, h, torch.tensor(targets, dtype=torch.long, device=h.device), vocab,
                               torch.tensor(at, dtype=torch.long, device=h.device))
        totals = _totals([([], n) for _, n in scored], members, lp, hit)
        out.update(zip((i for i, _ in scored), totals, strict=True))
    return out


def _score_logits(backend: Any, seqs: list[Seq], order: list[int]) -> dict[int, tuple[float, int, bool]]:
    out: dict[int, tuple[float, int, bool]] = {}
    for idx in likelihood_batches(backend, order, [len(s) for s, _ in seqs]):
        batch = [seqs[i] for i in idx]
        ids, mask = _padded(batch, backend.pad_id, backend.device)
        logits = backend.model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        flat, targets, rows = _scored(batch, ids.shape[1])
        sel = logits.reshape(-1, logits.shape[-1]).index_select(0, torch.tensor(flat, device=logits.device))
        del logits
        lp, hit = score_logits(sel, torch.tensor(targets, device=sel.device))
        out.update(zip(idx, _totals(batch, rows, lp, hit), strict=True))
    return out


def _score_reference(backend: Any, seqs: list[Seq], order: list[int]) -> dict[int, tuple[float, int, bool]]:
    out = {}
    for idx in likelihood_batches(backend, order, [len(s) for s, _ in seqs]):
        batch = [seqs[i] for i in idx]
        ids, mask = _padded(batch, backend.pad_id, backend.device)
        logits = backend.model(input_ids=ids, attention_mask=mask).logits
        for row, (i, (s, n_cont)) in enumerate(zip(idx, batch, strict=True)):
            start = len(s) - n_cont
            lp = torch.log_softmax(logits[row, start - 1 : len(s) - 1].float(), dim=-1)
            target = torch.tensor(s[start:], device=lp.device)
            tok_lp = lp.gather(-1, target[:, None]).squeeze(-1)
            out[i] = (float(tok_lp.sum()), n_cont, bool((lp.argmax(-1) == target).all()))
    return out


@torch.inference_mode()
def score_requests(
    backend: Any, requests: Sequence[LoglikelihoodRequest], mode: Mode = "auto"
) -> list[LoglikelihoodResult]:
    """Per request: summed log-probability of the continuation, its token count, all greedy.
    ``mode`` picks the path for requests not taken by the shared-prefix path (module docstring);
    ``auto`` is ``split`` when ``split_ok`` and ``logits`` otherwise."""
    limit = backend.max_positions
    seqs: list[Seq] = []
    for ctx, cont in split_all(backend, requests):
        seq = (ctx + cont)[-limit:]
        seqs.append((seq, min(len(cont), len(seq) - 1)))
    done: dict[int, tuple[float, int, bool]] = {}
    if mode == "auto":
        mode = "split" if split_ok(backend.model, backend.device, backend.pad_id) else "logits"
    if backend.shared_prefix and mode == "logits":  # shared prefixes through a KV cache
        done = score_shared(
            backend.model, seqs, pad_id=backend.pad_id, device=backend.device, rows=backend.batch_size,
            budget=LOGIT_BUDGET,
        )
    order = sorted((i for i in range(len(seqs)) if i not in done), key=lambda i: len(seqs[i][0]))
    scorer = {"split": _score_split, "logits": _score_logits, "reference": _score_reference}[mode]
    if order:
        done.update(scorer(backend, seqs, order))
    return [LoglikelihoodResult(*done[i]) for i in range(len(seqs))]
