"""How many rows a CPU generation batch may hold, so that long prompts do not multiply memory.

A batch of ``rows`` prompts padded to ``width`` tokens, decoding ``new`` tokens, holds a KV cache of
``rows x (width + new)`` positions (``kv_bytes_per_position`` each: layers x 2 x KV heads x head
width x the element size) and, in its prefill, attention scores of ``rows x heads x width^2``
floats per layer. At 20-token prompts neither matters; at the hundreds of tokens of an attacked or
chat-templated prompt, a 64-row batch of SmolLM2-135M held about 2 GiB of cache
(``lm-audit run --suite misuse-refusal --attacks all`` peaked at 3.1 GiB). Batches are cut, never
reordered, so which rows share a batch changes only where the budget binds (completions may then
differ by float rounding, as at any other batch size: docs/architecture.md, reproducibility
contract). The budgets apply on CPU; on CUDA an out-of-memory error halves the batch instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

KV_BUDGET = 128 * 2**20  # bytes of KV cache per batch
# rows x heads x width^2 attention scores (floats) per batch, on the generation and likelihood paths
ATTN_BUDGET = 16 * 2**20


def _size(config: Any, *names: str, default: int) -> int:
    """The first of ``names`` the config sets (GPT-2's own names come second)."""
    for name in names:
        value = getattr(config, name, None)
        if value:
            return int(value)
    return default


def kv_bytes_per_position(config: Any, element_size: int = 4) -> int:
    """Bytes one position of one row takes in the KV cache (GPT-2 sizes where the config is silent)."""
    layers = _size(config, "num_hidden_layers", "n_layer", default=12)
    heads = attention_heads(config)
    width = _size(config, "hidden_size", "n_embd", default=768)
    head_dim = _size(config, "head_dim", default=width // heads)
    kv_heads = _size(config, "num_key_value_heads", default=heads)
    return layers * 2 * kv_heads * head_dim * element_size


def attention_heads(config: Any, default: int = 12) -> int:
    return _size(config, "num_attention_heads", "n_head", default=default)


def rows_within_budget(
    prompts: Sequence[Sequence[int]], start: int, size: int, new_tokens: int, *, kv_per_position: int, heads: int,
    kv_budget: int | None = None, attn_budget: int | None = None,
) -> int:
    """The most rows from ``start`` (at most ``size``, at least one) whose batch keeps its KV cache
    within ``kv_budget`` bytes and its prefill attention within ``attn_budget`` floats (default: the
    module's budgets, read at call time). ``prompts`` are in batch order, ascending in length, so a
    batch's last row is its widest."""
    kv_budget = KV_BUDGET if kv_budget is None else kv_budget
    attn_budget = ATTN_BUDGET if attn_budget is None else attn_budget
    n = min(size, len(prompts) - start)
    while n > 1:
        width = len(prompts[start + n - 1])
        if n * (width + new_tokens) * kv_per_position <= kv_budget and n * heads * width * width <= attn_budget:
            break
        n -= 1
    return max(n, 1)
