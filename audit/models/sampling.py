"""Token choice for the ``hf`` backend: inverse-CDF sampling that is cheap and exactly reproducible.

The reference rule (``pick_reference``) is the contract every record was generated under: scale by
temperature, mask below the top-k, softmax in float64, sort the vocabulary by probability
(descending, ties by token id), keep the nucleus (the smallest prefix whose mass reaches top_p; the
most likely token always stays), and return the token where the kept mass's CDF crosses
``u * kept_mass`` for the row's uniform draw ``u``.

A float64 softmax and a sort of a 49k-262k vocabulary for every row at every step cost more than
the forward pass of a small model. ``pick`` gives the same token for the same draw in three tiers:

1. **Candidates, float32 normalizer.** The ``K + 1`` largest logits (``torch.topk``, K in
   ``CANDIDATES``, or top-k itself), ordered as the full stable sort orders them (logit descending,
   then token id); when the K-th and (K+1)-th differ, no tie straddles the cut and the candidates
   are exactly the first K entries of the full sort. Their probabilities are computed in float64
   from their own logits, divided by the row's float32-summed normalizer. Each decision (where the
   nucleus ends, where the draw falls) must clear ``MASS_TOL``, a bound on that normalizer's error;
   a row that passes gets the reference's token.
2. **The reference's own probabilities, same candidates**, for rows whose decision lies inside the
   candidates but within ``MASS_TOL`` of a cumulative sum: the float64 softmax of those rows only,
   then the same prefix logic with no tolerance (for ``top_p = 1`` the draw's target must clear
   every CDF step by ``TARGET_MARGIN``). Rows whose nucleus is not inside the candidates try the
   next K.
3. **The full sort**, for the rows left.

The error bound of tier 1: with ``m`` the row's largest logit, the float32 exponent of ``x - m`` is
within 1 ulp (1.2e-7 relative); the float32 rounding of ``x - m`` adds at most 6e-8 times the
distribution's entropy in nats (at most log V < 12.5) to the sum's relative error; the sum is
taken as float32 partial sums of 64 terms, each within gamma_63 = 3.8e-6 relative of its exact
value whatever order the kernel adds in (all terms are positive), and those partial sums are added
in float64. The total is under 4.7e-6; ``MASS_TOL`` = 1e-5 is twice that. (A float64 sum of the
whole vocabulary would cost a float64 copy of it, more than the rest of tier 1.) The equivalence
is tested token for token against ``pick_reference`` on random and real logits.

For ``T = 1`` the logits are used as they are (``x / 1.0 == x``), and the candidates are put in
the full sort's order with one sort of an integer key (value bits, then token id).

**Gumbel coupling** (``GenParams.coupling == "gumbel"``; Oberst & Sontag 2019, "Counterfactual
off-policy evaluation with Gumbel-max structural causal models"): the token is the argmax of
``x_i / T + G_i`` over the same truncated candidates (top-k, then the nucleus as above), with
``G_i = -log(-log v_i)`` and ``v_i`` a uniform that is a hash (splitmix64) of the row's draw ``u``'s
bits and token id ``i``. ``u`` is a function of (record seed, step) only, so the noise of every
token is a function of (record seed, step, token id): never of the row or the batch. Gumbel-max is
exact: each record's token has the truncated softmax distribution, as under inverse-CDF. Two
records that share their seed (a counterfactual set's members) get the same noise on every token,
so they pick the same token wherever their distributions barely differ, and part only where the
group term really changes the model's choice. With inverse-CDF the one shared uniform lands on
different tokens as soon as a probability before it in the sort moves. The nucleus is found as in
``pick`` (tiers 1-3, no draw to clear); with ``top_p = 1`` every token gets its noise.
"""

from __future__ import annotations

import torch

from audit.core.types import GenParams

CANDIDATES = (512, 4096)
MASS_TOL = 1e-5  # bound on the error of tier 1's cumulative sums (module doc)
_ID_SPAN = 1 << 20  # token ids below this fit under the value in _sort_key's int64 key
_BLOCK = 64  # terms per float32 partial sum of the normalizer (module doc)
TARGET_MARGIN = 1e-9  # far above the 1e-11 bound on two float64 sums' difference (tier 2, top_p = 1)


def _scaled(logits: torch.Tensor, params: GenParams) -> torch.Tensor:
    if params.temperature != 1.0:  # x / 1.0 == x exactly, so T = 1 needs no pass over the vocabulary
        logits = logits / max(params.temperature, 1e-6)
    if params.top_k and params.top_k < logits.shape[-1]:
        kth = torch.topk(logits, params.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return logits


def _choose(sorted_p: torch.Tensor, u: torch.Tensor, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Index into ``sorted_p`` chosen by ``u``, and whether the nucleus ended before the last column."""
    cum = sorted_p.cumsum(dim=-1)
    if top_p < 1.0:
        keep = (cum - sorted_p) < top_p  # always keeps the most likely token
        inside = ~keep[:, -1]
        sorted_p = sorted_p * keep
        cum = sorted_p.cumsum(dim=-1)
    else:
        inside = torch.zeros(sorted_p.shape[0], dtype=torch.bool, device=sorted_p.device)
    target = (u * cum[:, -1]).unsqueeze(-1)
    choice = torch.searchsorted(cum, target).clamp(max=cum.shape[-1] - 1).squeeze(-1)
    return choice, inside


def _full(probs: torch.Tensor, u: torch.Tensor, top_p: float) -> torch.Tensor:
    sorted_p, sorted_idx = torch.sort(probs, dim=-1, descending=True, stable=True)
    choice, _ = _choose(sorted_p, u, top_p)
    return sorted_idx.gather(-1, choice[:, None]).squeeze(-1)


def pick_reference(logits: torch.Tensor, u: torch.Tensor | None, params: GenParams) -> torch.Tensor:
    """The reference rule: a full stable sort of the vocabulary for every row."""
    if u is None:
        return logits.argmax(dim=-1)
    if params.coupling == "gumbel":
        return gumbel_reference(logits, u, params)
    probs = torch.softmax(_scaled(logits, params).double(), dim=-1)
    return _full(probs, u, params.top_p)


def _sort_key(vals: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """An int64 key whose descending order is the full stable sort's: float32 value descending,
    then token id ascending (the float's bits mapped to an order-preserving integer, the id below
    it; -0.0 and 0.0 map alike, as their probabilities are equal)."""
    bits = vals.contiguous().view(torch.int32).long()
    ordered = torch.where(bits >= 0, bits, -(1 << 31) - bits)
    return ordered * _ID_SPAN + (_ID_SPAN - 1 - idx)


def _topk(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest values of each row and their ids, unordered: ``torch.topk`` found among
    fewer elements. The vocabulary is cut into strided blocks (token ``i`` in block ``i % n``); the
    ``k`` blocks with the largest maxima hold every element larger than the k-th largest block
    maximum, and at least ``k`` elements no smaller than it, so their top ``k`` values are the
    row's. Ids can differ only among elements equal to the k-th value, which ``_candidates`` sends
    to the next tier unless a strictly larger value precedes the cut."""
    rows, vocab = x.shape
    block = min(64, 1 << max(0, int(vocab // (4 * k)).bit_length() - 1))
    if block < 4:
        return torch.topk(x, k, dim=-1, sorted=False)
    n = vocab // block
    head = n * block
    peaks = x[:, :head].reshape(rows, block, n).amax(dim=1)  # block i: tokens i, i + n, i + 2n, ...
    chosen = torch.topk(peaks, k, dim=-1, sorted=False).indices
    ids = (chosen[:, None, :] + n * torch.arange(block, device=x.device)[None, :, None]).reshape(rows, -1)
    if head < vocab:
        ids = torch.cat([ids, torch.arange(head, vocab, device=x.device).expand(rows, -1)], dim=1)
    vals, at = torch.topk(x.gather(-1, ids), k, dim=-1, sorted=False)
    return vals, ids.gather(-1, at)


def _candidates(scaled: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The top ``k`` tokens in the full stable sort's order (logit descending, then token id), their
    float64 logits, and whether the k-th and (k+1)-th differ (no tie straddles the cut). Float32
    logits order and tie exactly as their float64 softmax does (exp is monotone, and distinct
    float32 values stay distinct in float64)."""
    vals, idx = _topk(scaled, k + 1)
    if scaled.shape[-1] <= _ID_SPAN:  # one sort of a combined key
        order = torch.sort(_sort_key(vals, idx), dim=-1, descending=True).indices
    else:  # by id, then stably by value
        by_id = torch.argsort(idx, dim=-1)
        idx, vals = idx.gather(-1, by_id), vals.gather(-1, by_id)
        order = torch.sort(vals, dim=-1, descending=True, stable=True).indices
    idx, vals = idx.gather(-1, order), vals.gather(-1, order)
    distinct_cut = vals[:, k - 1] > vals[:, k]
    return idx[:, :k], vals[:, :k].double(), distinct_cut


def _decide(
    p: torch.Tensor, u: torch.Tensor, top_p: float, tol: float, total: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Index into the sorted candidate probabilities ``p`` chosen by ``u``; whether the decision
    lies inside the candidates; and whether every comparison cleared ``tol`` (with ``tol = 0`` the
    probabilities are the reference's own, and only the top_p = 1 target needs a margin).
    ``total``: the whole vocabulary's mass (``top_p = 1`` scales the draw by it)."""
    cum = p.cumsum(dim=-1)
    clear = torch.ones_like(u, dtype=torch.bool)
    if top_p < 1.0:
        before = cum - p
        keep = before < top_p
        inside = ~keep[:, -1]
        if tol:
            clear &= ~((before - top_p).abs() <= tol).any(dim=-1)
        cum = (p * keep).cumsum(dim=-1)
        target = u * cum[:, -1]
        margin = tol
    else:
        target = u * total
        margin = max(tol, TARGET_MARGIN)
        inside = cum[:, -1] > target + margin
    choice = torch.searchsorted(cum, target[:, None]).clamp(max=cum.shape[-1] - 1)
    if margin:
        at = cum.gather(-1, choice).squeeze(-1)
        below = torch.where(
            choice.squeeze(-1) > 0, cum.gather(-1, (choice - 1).clamp(min=0)).squeeze(-1), torch.zeros_like(target)
        )
        clear &= ((at - target).abs() > margin) & ((target - below).abs() > margin)
    return choice.squeeze(-1), inside, clear


def _normalizer(e: torch.Tensor) -> torch.Tensor:
    """Row sums of ``e`` (non-negative, float32) in float64: float32 partial sums of ``_BLOCK``
    terms, added in float64 (module doc: each partial sum is within 63 ulp of exact)."""
    rows, vocab = e.shape
    head = vocab - vocab % _BLOCK
    total = e[:, :head].reshape(rows, -1, _BLOCK).sum(dim=-1).sum(dim=-1, dtype=torch.float64)
    if head < vocab:
        total = total + e[:, head:].sum(dim=-1, dtype=torch.float64)
    return total


def pick(logits: torch.Tensor, u: torch.Tensor | None, params: GenParams) -> torch.Tensor:
    """The same token as ``pick_reference`` for the same draw, without a float64 softmax or a full
    sort of the vocabulary for most rows (module doc)."""
    if u is None:
        return logits.argmax(dim=-1)
    if params.coupling == "gumbel":
        return pick_gumbel(logits, u, params)
    scaled = _scaled(logits, params)
    top_p, vocab = params.top_p, scaled.shape[-1]
    m = scaled.amax(dim=-1, keepdim=True)
    total = _normalizer((scaled - m).exp_())  # tier 1's normalizer
    m = m.double()
    out = torch.empty(scaled.shape[0], dtype=torch.long, device=scaled.device)
    todo = torch.arange(scaled.shape[0], device=scaled.device)
    sizes = (params.top_k,) if params.top_k and params.top_k < vocab - 1 else CANDIDATES
    for k in sizes:
        if k + 1 > vocab or todo.numel() == 0:
            break
        ids, x, distinct = _candidates(scaled if todo.numel() == len(scaled) else scaled[todo], k)
        p = torch.exp(x - m[todo]) / total[todo, None]
        choice, inside, clear = _decide(p, u[todo], top_p, MASS_TOL, torch.ones_like(total[todo]))
        done = inside & clear & distinct
        out[todo[done]] = ids.gather(-1, choice[:, None]).squeeze(-1)[done]
        unsure = ~done & distinct & (inside | ~clear)
        if unsure.any():  # tier 2: the reference's own probabilities for these rows, same candidates
            rows = todo[unsure]
            probs = torch.softmax(scaled[rows].double(), dim=-1)
            c2, in2, clear2 = _decide(probs.gather(-1, ids[unsure]), u[rows], top_p, 0.0, probs.sum(dim=-1))
            ok2 = in2 & clear2
            out[rows[ok2]] = ids[unsure].gather(-1, c2[:, None]).squeeze(-1)[ok2]
            done[unsure.nonzero().flatten()[ok2]] = True
        todo = todo[~done]
    if todo.numel():  # tier 3: the full sort
        out[todo] = _full(torch.softmax(scaled[todo].double(), dim=-1), u[todo], top_p)
    return out


# ---------------------------------------------------------------------- Gumbel coupling (module doc)

_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)  # splitmix64's constants as signed int64
_MIX1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_MIX2 = 0x94D049BB133111EB - (1 << 64)


def _shr(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's ``>>`` is arithmetic)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def splitmix64(x: torch.Tensor) -> torch.Tensor:
    """splitmix64's output function on int64 tensors (arithmetic modulo 2**64)."""
    x = (x ^ _shr(x, 30)) * _MIX1
    x = (x ^ _shr(x, 27)) * _MIX2
    return x ^ _shr(x, 31)


def gumbel_noise(u: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Gumbel(0, 1) noise (float64) for token ids ``ids`` (rows x n) of rows whose draws are ``u``:
    the ``id + 1``-th output of the splitmix64 stream seeded by the hash of ``u``'s bits, made a
    uniform in (0, 1) from its top 53 bits. A function of (u, token id) only."""
    key = splitmix64(u.double().contiguous().view(torch.int64))
    h = splitmix64(key[:, None] + (ids.long() + 1) * _GOLDEN)
    v = (_shr(h, 11).double() + 0.5) * 2.0**-53
    return -torch.log(-torch.log(v))


def _gumbel_argmax(x: torch.Tensor, ids: torch.Tensor, keep: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The token among ``ids`` (where ``keep``) with the largest ``x + G``."""
    score = torch.where(keep, x.double() + gumbel_noise(u, ids), float("-inf"))
    return ids.gather(-1, score.argmax(dim=-1, keepdim=True)).squeeze(-1)


def _nucleus(p: torch.Tensor, top_p: float, tol: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Over probabilities ``p`` in the full sort's order: which are in the nucleus (as
    ``_choose`` keeps them), whether it ended before the last column, and whether every
    comparison with ``top_p`` cleared ``tol``."""
    before = p.cumsum(dim=-1) - p
    keep = before < top_p
    clear = ~((before - top_p).abs() <= tol).any(dim=-1) if tol else torch.ones_like(keep[:, 0])
    return keep, ~keep[:, -1], clear


def gumbel_reference(logits: torch.Tensor, u: torch.Tensor, params: GenParams) -> torch.Tensor:
    """The Gumbel rule on a full stable sort of the vocabulary for every row."""
    scaled = _scaled(logits, params)
    ids = torch.arange(scaled.shape[-1], device=scaled.device).expand_as(scaled)
    keep = torch.isfinite(scaled)
    if params.top_p < 1.0:
        sorted_p, sorted_idx = torch.sort(torch.softmax(scaled.double(), dim=-1), dim=-1, descending=True, stable=True)
        keep = torch.zeros_like(keep).scatter(-1, sorted_idx, _nucleus(sorted_p, params.top_p, 0.0)[0])
    return _gumbel_argmax(scaled, ids, keep, u)


def pick_gumbel(logits: torch.Tensor, u: torch.Tensor, params: GenParams) -> torch.Tensor:
    """The same token as ``gumbel_reference``: the nucleus found among the top candidates as in
    ``pick`` (float32 normalizer with ``MASS_TOL``, then exact probabilities, then the full sort)."""
    scaled = _scaled(logits, params)
    top_p, vocab = params.top_p, scaled.shape[-1]
    if top_p >= 1.0:
        return gumbel_reference(scaled, u, GenParams(temperature=1.0, top_p=1.0))  # already scaled
    m = scaled.amax(dim=-1, keepdim=True)
    total = _normalizer((scaled - m).exp_())
    m = m.double()
    out = torch.empty(scaled.shape[0], dtype=torch.long, device=scaled.device)
    todo = torch.arange(scaled.shape[0], device=scaled.device)
    sizes = (params.top_k,) if params.top_k and params.top_k < vocab - 1 else CANDIDATES
    for k in sizes:
        if k + 1 > vocab or todo.numel() == 0:
            break
        ids, x, distinct = _candidates(scaled if todo.numel() == len(scaled) else scaled[todo], k)
        keep, inside, clear = _nucleus(torch.exp(x - m[todo]) / total[todo, None], top_p, MASS_TOL)
        done = inside & clear & distinct
        unsure = ~done & distinct & (inside | ~clear)
        if unsure.any():  # the reference's own probabilities for these rows, same candidates
            rows = todo[unsure]
            keep2, in2, _ = _nucleus(torch.softmax(scaled[rows].double(), dim=-1).gather(-1, ids[unsure]), top_p, 0.0)
            keep[unsure] = keep2
            done[unsure.nonzero().flatten()[in2]] = True
        if done.any():
            out[todo[done]] = _gumbel_argmax(x[done], ids[done], keep[done], u[todo[done]])
        todo = todo[~done]
    if todo.numel():  # the full sort
        out[todo] = gumbel_reference(logits[todo], u[todo], params)
    return out
