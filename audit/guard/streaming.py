"""Token-by-token generation for the ``hf`` backend, so the gate can stop a completion early.

``stream_text(backend, request, params, seed)`` yields the decoded completion so far after every
token. It drives ``backend.model`` over its KV cache one row at a time, with the backend's own
tokenization (``_prompt_ids``) and sampling helper (``HFBackend._pick``) and the same per-record
random stream (``record_seed``), so a streamed completion equals the batched one of
``backend.generate`` for the same seed, key and sample. Closing the generator stops decoding:
no further forward passes run.

Backends without token access (HTTP endpoints) fall back to ``generate`` and yield the text word
by word: the gate still checks as text arrives, but the model has already done the work.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from typing import Any

from audit.core.types import GenParams, GenRequest, record_seed

_PIECES = re.compile(r"\s*\S+")


def supports_token_streaming(backend: Any) -> bool:
    return all(hasattr(backend, a) for a in ("model", "tokenizer", "_prompt_ids", "_pick", "eos_ids"))


def stream_text(backend: Any, request: GenRequest, params: GenParams, seed: int) -> Generator[tuple[str, int], None, None]:
    """Yield ``(completion_so_far, n_tokens)`` after each generated token."""
    if not supports_token_streaming(backend):
        text = backend.generate([request], params, seed)[0].text
        so_far = ""
        for i, m in enumerate(_PIECES.finditer(text), start=1):
            so_far += m.group(0)
            yield so_far, i
        return
    yield from _stream_hf(backend, request, params, seed)


def _stream_hf(backend: Any, request: GenRequest, params: GenParams, seed: int) -> Iterator[tuple[str, int]]:
    import torch

    ids = backend._prompt_ids(request.prompt, params.chat, params.max_new_tokens)
    device = backend.device
    steps = params.max_new_tokens
    uniforms = None
    if not params.greedy:
        gen = torch.Generator().manual_seed(record_seed(seed, request.key, request.sample))
        uniforms = torch.rand(steps, generator=gen, dtype=torch.float64).to(device)
    eos = set(backend.eos_ids)
    cur = torch.tensor([ids], dtype=torch.long, device=device)
    mask = torch.ones_like(cur)
    positions = torch.arange(len(ids), device=device)[None, :]
    past = None
    tokens: list[int] = []
    last_text = ""
    for step in range(steps):
        with torch.inference_mode():
            out = backend.model(
                input_ids=cur, attention_mask=mask, position_ids=positions, past_key_values=past, use_cache=True
            )
            past = out.past_key_values
            logits = out.logits[:, -1, :].float()
            u = None if uniforms is None else uniforms[step : step + 1]
            nxt = int(backend._pick(logits, u, params)[0])
        if nxt in eos:
            break
        tokens.append(nxt)
        text = backend.tokenizer.decode(tokens, skip_special_tokens=True)
        stop_at = min((text.index(s) for s in params.stop if s and s in text), default=None)
        if stop_at is not None:
            yield text[:stop_at], len(tokens)
            return
        if text != last_text and not text.endswith("\ufffd"):  # hold back half a UTF-8 character
            last_text = text
            yield text, len(tokens)
        cur = torch.tensor([[nxt]], dtype=torch.long, device=device)
        positions = positions[:, -1:] + 1
        mask = torch.cat([mask, torch.ones((1, 1), dtype=mask.dtype, device=device)], dim=1)
    final = backend.tokenizer.decode(tokens, skip_special_tokens=True)
    if final != last_text:
        yield final, len(tokens)
