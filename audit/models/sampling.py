"""Token choice for the ``hf`` backend: inverse-CDF sampling that is cheap and exactly reproducible.

The reference rule (``pick_reference``) is the contract every record was generated under: scale by
temperature, mask below the top-k, softmax in float64, sort the vocabulary by probability
(descending, ties by token id), keep the nucleus (the smallest prefix whose mass reaches top_p; the
most likely token always stays), and return the token where the kept mass's CDF crosses
``u * kept_mass`` for the row's uniform draw ``u``.

Sorting a 49k-262k vocabulary for every row at every step costs more than the forward pass of a
small model. ``pick`` gives the same token for the same draw with a partial sort: it takes the
``K + 1`` most likely tokens (``torch.topk``), orders them as the full stable sort would (by
probability, then token id), and uses them when two checks hold for the row:

- the nucleus ends strictly inside the first K candidates, so every kept token is a candidate and
  the kept prefix, its cumulative sums and hence the chosen index are those of the full sort;
- the K-th and (K+1)-th probabilities differ, so the candidate set is exactly the first K entries
  of the full stable sort (no tie straddles the cut).

Rows that fail either check are retried with more candidates, and finally with the full sort. With
``top_p = 1`` (no nucleus) every token is kept; then a row uses its candidates when the draw's
target falls inside their mass and not within ``TARGET_MARGIN`` of a CDF step (see
``_partial_untruncated``). The equivalence is tested token for token against ``pick_reference`` on
random and real logits.
"""

from __future__ import annotations

import torch

from audit.types import GenParams

CANDIDATES = (512, 4096, 16384)
TARGET_MARGIN = 1e-9  # far above the 1e-11 bound on the two sums' difference


def _scaled(logits: torch.Tensor, params: GenParams) -> torch.Tensor:
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
    probs = torch.softmax(_scaled(logits, params).double(), dim=-1)
    return _full(probs, u, params.top_p)


def _candidates(
    scaled: torch.Tensor, probs: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The top ``k`` tokens in the full stable sort's order (probability descending, then token id),
    their probabilities, and whether the k-th and (k+1)-th differ (no tie straddles the cut)."""
    top, idx = torch.topk(scaled, k + 1, dim=-1, sorted=True)
    distinct_cut = top[:, k - 1] > top[:, k]
    idx = idx[:, :k]
    vals = probs.gather(-1, idx)
    by_id = torch.argsort(idx, dim=-1)
    idx, vals = idx.gather(-1, by_id), vals.gather(-1, by_id)
    order = torch.sort(vals, dim=-1, descending=True, stable=True).indices
    return idx.gather(-1, order), vals.gather(-1, order), distinct_cut


def _partial(
    scaled: torch.Tensor, probs: torch.Tensor, u: torch.Tensor, top_p: float, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens from the top ``k`` candidates, and which rows may use them (see the module doc).

    Candidates are found on the float32 scaled logits, which order (and tie) exactly as their
    float64 softmax does (exp is monotone, and distinct float32 values stay distinct in float64);
    their probabilities are then read from the same float64 softmax the reference uses.
    """
    idx, vals, distinct_cut = _candidates(scaled, probs, k)
    choice, inside = _choose(vals, u, top_p)
    return idx.gather(-1, choice[:, None]).squeeze(-1), inside & distinct_cut


def _partial_untruncated(
    scaled: torch.Tensor, probs: torch.Tensor, u: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``top_p = 1``: every token is kept, so the reference's target is ``u`` times the full sorted
    sum. That sum is read here as ``probs.sum()``, which differs from the sorted cumulative sum by
    at most ``vocab * eps`` (about 1e-11 for 262k tokens); a row is accepted only when no candidate
    CDF value lies within ``TARGET_MARGIN`` of the target, so the chosen index is the same."""
    idx, vals, distinct_cut = _candidates(scaled, probs, k)
    cum = vals.cumsum(dim=-1)
    target = u * probs.sum(dim=-1)
    choice = torch.searchsorted(cum, target[:, None]).squeeze(-1)
    inside = choice < k
    at = cum.gather(-1, choice.clamp(max=k - 1)[:, None]).squeeze(-1)
    before = torch.where(
        choice > 0, cum.gather(-1, (choice - 1).clamp(min=0)[:, None]).squeeze(-1), torch.zeros_like(target)
    )
    clear = ((at - target).abs() > TARGET_MARGIN) & ((target - before).abs() > TARGET_MARGIN)
    return idx.gather(-1, choice.clamp(max=k - 1)[:, None]).squeeze(-1), inside & clear & distinct_cut


def pick(logits: torch.Tensor, u: torch.Tensor | None, params: GenParams) -> torch.Tensor:
    """The same token as ``pick_reference`` for the same draw, without sorting the vocabulary."""
    if u is None:
        return logits.argmax(dim=-1)
    scaled = _scaled(logits, params)
    probs = torch.softmax(scaled.double(), dim=-1)
    vocab = probs.shape[-1]
    out = torch.empty(probs.shape[0], dtype=torch.long, device=probs.device)
    todo = torch.arange(probs.shape[0], device=probs.device)
    for k in CANDIDATES:
        if k + 1 > vocab or todo.numel() == 0:
            break
        if params.top_p < 1.0:
            tokens, ok = _partial(scaled[todo], probs[todo], u[todo], params.top_p, k)
        else:
            tokens, ok = _partial_untruncated(scaled[todo], probs[todo], u[todo], k)
        out[todo[ok]] = tokens[ok]
        todo = todo[~ok]
    if todo.numel():
        out[todo] = _full(probs[todo], u[todo], params.top_p)
    return out
