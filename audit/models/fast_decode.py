"""A lean decoding forward pass for Llama-architecture models (SmolLM2, Llama, and the like).

transformers' eager forward spends more time on per-op overhead than on arithmetic when a small
model decodes a batch on a CPU: each step grows the KV cache with ``torch.cat``, rebuilds the
attention mask, repeats the key/value heads for grouped-query attention and runs three separate
projections where one would do. ``LlamaDecoder`` runs the same weights with:

- the module's own weight tensors, stored input-major once (``weight_layout.store_input_major``:
  about 15 % faster matmuls at decoding batch sizes, bit-identical, no extra memory), unfused: fusing query/key/value and gate/up into
  one matmul each was measured, but the fused copies added about 280 MiB of resident memory (the
  originals stay mapped from the safetensors file), which the 1.5 GiB budget of the default audit
  cannot afford;
- a static KV cache allocated once per batch (prompt width + new tokens), written in place;
- grouped-query attention through ``scaled_dot_product_attention(enable_gqa=True)`` with an additive
  mask built once per batch (left padding and causality);
- ``torch.rms_norm`` and a rotary table computed once per batch;
- on CPU, the decode steps' matrix products through oneDNN (``torch.ops.mkldnn._linear_pointwise``,
  the fp32 kernel torch.compile's CPU backend calls) rather than the MKL sgemm ``F.linear``
  reaches: on this project's 2-core AMD EPYC it ran them 20-40 % faster (the vocabulary projection
  1.6x), in full fp32 (no reduced-precision mode), and a row's result does not depend on how many
  rows share the batch, where MKL's does below 12 rows (bench/README.md). The prefill keeps
  ``F.linear`` (``ROW_MULTIPLE`` says why); ``LM_AUDIT_DECODE_MATMUL=torch`` keeps it everywhere.

It is used only where ``supports`` says the architecture matches exactly, and only after
``verified`` finds that it reproduces the HF forward's logits on a probe input; anything else takes
the HF path. The two agree to float32 rounding (about 1e-5 in the logits), so a sampled token can
differ only when a row's draw falls within that of a CDF step.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from audit.core.errors import UsageError
from audit.models.weight_layout import store_input_major

log = logging.getLogger(__name__)

PREFILL_TOKENS = 2048  # tokens per prefill chunk (rows x prompt width)
VERIFY_TOL = 1e-3  # max |logit difference| on the probe input (float32 rounding is about 1e-5)


Linear = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# oneDNN keeps state per product shape it has seen (measured: about 2 MiB per row count and weight
# shape, 900 MiB after 158 row counts of three weights), so its products see few row counts: rows are
# padded to a multiple of 8 (zero rows; a row's result does not depend on the others from 2 rows on),
# and only decode steps (rows = the batch) use it; the prefill, whose row count changes with every
# batch's prompt widths, uses F.linear.
ROW_MULTIPLE = 8


def onednn_linear() -> Linear | None:
    """``x @ w.T`` through oneDNN's fp32 matmul, or None where this torch build has no oneDNN."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        op = torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        return None

    def linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        width = x.shape[-1]
        rows = x.numel() // width
        pad = -rows % ROW_MULTIPLE
        if not pad:
            return op(x, w, None, "none", [], "")
        flat = torch.cat([x.reshape(rows, width), x.new_zeros(pad, width)])
        return op(flat, w, None, "none", [], "")[:rows].view(*x.shape[:-1], w.shape[0])

    return linear


def matmul_kernels(device: torch.device) -> list[tuple[str, Linear]]:
    """The products the decoder may use, preferred first: oneDNN on CPU unless
    ``LM_AUDIT_DECODE_MATMUL=torch``, then ``F.linear``."""
    choice = os.environ.get("LM_AUDIT_DECODE_MATMUL", "onednn").strip().lower()
    if choice not in ("onednn", "torch"):
        raise UsageError(f"LM_AUDIT_DECODE_MATMUL must be 'onednn' or 'torch', not {choice!r}")
    kernels: list[tuple[str, Linear]] = []
    dnn = onednn_linear() if device.type == "cpu" else None
    if dnn is not None and choice == "onednn":
        kernels.append(("onednn", dnn))
    kernels.append(("torch", F.linear))
    return kernels


def supports(model: Any) -> bool:
    cfg = model.config
    rope = getattr(cfg, "rope_scaling", None) or {}
    rope_type = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
    return (
        getattr(cfg, "model_type", None) == "llama"
        and not getattr(cfg, "attention_bias", False)
        and not getattr(cfg, "mlp_bias", False)
        and getattr(cfg, "hidden_act", None) == "silu"
        and getattr(cfg, "pretraining_tp", 1) == 1
        and rope_type == "default"
        and next(model.parameters()).dtype == torch.float32
        and hasattr(model, "model")
        and hasattr(model.model, "rotary_emb")
    )


class LlamaDecoder:
    """Prefill and decode steps over a static KV cache (see the module doc)."""

    def __init__(self, model: Any, linear: Linear = F.linear, kernel: str = "torch") -> None:
        cfg = model.config
        self.model = model
        self.linear, self.kernel = linear, kernel
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv = int(cfg.num_key_value_heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads)
        self.eps = float(cfg.rms_norm_eps)
        self.layers = []
        for layer in model.model.layers:
            att, mlp = layer.self_attn, layer.mlp
            self.layers.append(
                (
                    layer.input_layernorm.weight,
                    (att.q_proj.weight, att.k_proj.weight, att.v_proj.weight),
                    att.o_proj.weight,
                    layer.post_attention_layernorm.weight,
                    (mlp.gate_proj.weight, mlp.up_proj.weight),
                    mlp.down_proj.weight,
                )
            )
        rot = model.model.rotary_emb
        self.inv_freq = rot.inv_freq.float()
        self.rope_scale = float(getattr(rot, "attention_scaling", 1.0))
        self.embed = model.model.embed_tokens.weight
        self.norm = model.model.norm.weight
        self.head = model.get_output_embeddings().weight
        self.cache: list[tuple[torch.Tensor, torch.Tensor]] = []

    # ------------------------------------------------------------------ per batch
    def start(self, mask: torch.Tensor, positions: torch.Tensor, steps: int) -> None:
        """Allocate the cache for a left-padded batch (``mask``: 1 for prompt tokens) and build the
        rotary table and the additive key mask."""
        rows, width = mask.shape
        self.length = width + steps
        self.lengths = mask.sum(dim=-1).tolist()
        dev = mask.device
        self.cache = [
            (
                torch.empty(rows, self.n_kv, self.length, self.head_dim, device=dev),
                torch.empty(rows, self.n_kv, self.length, self.head_dim, device=dev),
            )
            for _ in self.layers
        ]
        last = positions[:, -1:]
        pos = torch.cat([positions, last + torch.arange(1, steps + 1, device=dev)], dim=1)
        freqs = pos[..., None].float() * self.inv_freq.to(dev)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.cos = (emb.cos() * self.rope_scale)[:, None]  # rows x 1 x length x head_dim
        self.sin = (emb.sin() * self.rope_scale)[:, None]
        keys = torch.cat([mask.bool(), torch.ones(rows, steps, dtype=torch.bool, device=dev)], dim=1)
        low = torch.finfo(torch.float32).min
        self.key_bias = torch.zeros(rows, 1, 1, self.length, device=dev).masked_fill(~keys[:, None, None], low)

    def _bias(self, at: int, end: int) -> torch.Tensor:
        bias = self.key_bias[..., :end]
        if end - at == 1:
            return bias
        dev = bias.device
        later = torch.arange(end, device=dev)[None, :] > torch.arange(at, end, device=dev)[:, None]
        return bias.masked_fill(later, torch.finfo(torch.float32).min)

    def step(self, ids: torch.Tensor, at: int) -> torch.Tensor:
        """Run tokens ``ids`` (rows x n) at cache slots ``at .. at + n``; the last position's logits.
        A prefill (n > 1) runs in groups of consecutive rows, each only as wide as its longest
        prompt (``prefill_groups``): the left padding of short prompts is never computed, and a
        group holds about ``PREFILL_TOKENS`` tokens at most, so activations (and the attention
        scores of long prompts) stay bounded whatever the batch size. The cache slots a group skips
        are zeroed; the key mask hides them."""
        n = ids.shape[1]
        if n == 1:
            return self._run(ids, at, slice(0, ids.shape[0]), self.linear)
        widths = [min(n, int(x)) for x in self.lengths]
        outs = []
        for r0, r1, w in prefill_groups(widths, PREFILL_TOKENS):
            start = at + n - w
            if start > at:
                for k_all, v_all in self.cache:
                    k_all[r0:r1, :, at:start] = 0.0
                    v_all[r0:r1, :, at:start] = 0.0
            outs.append(self._run(ids[r0:r1, n - w :], start, slice(r0, r1), F.linear))
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def prefill_shared(self, ids: torch.Tensor, first: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """The prefill of a batch whose rows repeat prompts (``audit/models/prompt_sharing.py``):
        ``step(ids, 0)``'s logits, computed once per distinct prompt. Only rows ``first`` (one per
        prompt, ascending) run, into cache rows ``0 .. len(first)``; then each row ``r`` gets the
        prompt slots of cache row ``source[r]``, in place (one layer's prompt slots of temporary
        memory, never a second cache). The prefill's products stay on ``F.linear``, as in ``step``."""
        full = self.cos, self.sin, self.key_bias, self.lengths
        self.cos, self.sin, self.key_bias = (t.index_select(0, first) for t in full[:3])
        self.lengths = [full[3][r] for r in first.tolist()]
        try:
            logits = self.step(ids.index_select(0, first), 0)
        finally:
            self.cos, self.sin, self.key_bias, self.lengths = full
        width = ids.shape[1]
        for k_all, v_all in self.cache:
            k_all[:, :, :width] = k_all[:, :, :width].index_select(0, source)
            v_all[:, :, :width] = v_all[:, :, :width].index_select(0, source)
        return logits.index_select(0, source)

    def _run(self, ids: torch.Tensor, at: int, sel: slice, linear: Linear) -> torch.Tensor:
        rows, n = ids.shape
        end = at + n
        cos, sin = self.cos[sel, :, at:end], self.sin[sel, :, at:end]
        bias = self._bias(at, end)[sel]
        h = F.embedding(ids, self.embed)
        q_dim = self.n_heads * self.head_dim
        for (ln1, (wq, wk, wv), wo, ln2, (wg, wu), down), (k_all, v_all) in zip(self.layers, self.cache, strict=True):
            kc, vc = k_all[sel], v_all[sel]
            x = torch.rms_norm(h, (h.shape[-1],), ln1, self.eps)
            q, k, v = linear(x, wq), linear(x, wk), linear(x, wv)
            q = q.view(rows, n, self.n_heads, self.head_dim).transpose(1, 2)
            k = k.view(rows, n, self.n_kv, self.head_dim).transpose(1, 2)
            q = _rotary(q, cos, sin)
            kc[:, :, at:end] = _rotary(k, cos, sin)
            vc[:, :, at:end] = v.view(rows, n, self.n_kv, self.head_dim).transpose(1, 2)
            a = F.scaled_dot_product_attention(q, kc[:, :, :end], vc[:, :, :end], attn_mask=bias, enable_gqa=True)
            h += linear(a.transpose(1, 2).reshape(rows, n, q_dim), wo)
            x = torch.rms_norm(h, (h.shape[-1],), ln2, self.eps)
            h += linear(F.silu(linear(x, wg), inplace=True).mul_(linear(x, wu)), down)
        h = torch.rms_norm(h[:, -1], (h.shape[-1],), self.norm, self.eps)
        return linear(h, self.head)

    def finish(self) -> None:
        self.cache = []


GROUP_COST = 64  # a prefill group's fixed cost in token positions (one more pass over the weights)


def prefill_groups(widths: list[int], budget: int) -> list[tuple[int, int, int]]:
    """Consecutive row groups ``(start, stop, width)`` covering ``widths`` (each row's prompt
    length) with the fewest computed positions, counting ``GROUP_COST`` per group: a group is as
    wide as its longest row and holds at most ``budget`` positions (a single longer row stands
    alone). Rows come sorted by length from ``HFBackend.generate``, which makes contiguous groups
    tight; any order is handled correctly."""
    n = len(widths)
    best = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for i in range(1, n + 1):
        widest = 0
        for j in range(i - 1, -1, -1):
            widest = max(widest, widths[j])
            if (i - j) * widest > budget and i - j > 1:
                break
            cost = best[j] + (i - j) * widest + GROUP_COST
            if cost < best[i]:
                best[i], cut[i] = cost, j
    groups = []
    i = n
    while i > 0:
        j = cut[i]
        groups.append((j, i, max(widths[j:i])))
        i = j
    return groups[::-1]


def _rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x * cos + rotate_half(x) * sin`` (rotate_half: the halves swapped, the first negated) with
    no concatenated copy: the same products and sums, so the same bits."""
    half = x.shape[-1] // 2
    out = x * cos
    out[..., :half] -= x[..., half:] * sin[..., :half]
    out[..., half:] += x[..., :half] * sin[..., half:]
    return out


@torch.inference_mode()
def verified(model: Any, pad_id: int) -> LlamaDecoder | None:
    """A decoder for ``model`` if its architecture is supported and it reproduces the HF forward's
    next-token logits (prefill and two decode steps, with left padding) on a probe batch; with the
    first of ``matmul_kernels`` that does."""
    if not supports(model):
        return None
    try:
        store_input_major(model)
        vocab = int(model.config.vocab_size)
        g = torch.Generator().manual_seed(0)
        dev = next(model.parameters()).device
        ids = torch.randint(0, vocab, (2, 6), generator=g).to(dev)
        mask = torch.ones_like(ids)
        ids[1, :2], mask[1, :2] = pad_id, 0
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        nxt = torch.randint(0, vocab, (2, 2), generator=g).to(dev)
        full_ids = torch.cat([ids, nxt], dim=1)
        full_mask = torch.cat([mask, torch.ones_like(nxt)], dim=1)
        ref = model(
            input_ids=full_ids, attention_mask=full_mask, position_ids=(full_mask.cumsum(-1) - 1).clamp(min=0)
        ).logits
    except Exception as exc:  # an unexpected layout means the HF path, never a failed run
        log.info("lean decoder not used: %s", exc)
        return None
    for kernel, linear in matmul_kernels(dev):
        dec = LlamaDecoder(model, linear, kernel)
        try:
            dec.start(mask, pos, 2)
            ours = [dec.step(ids, 0), dec.step(nxt[:, :1], 6), dec.step(nxt[:, 1:], 7)]
            diff = max(float((o - ref[:, j]).abs().max()) for o, j in zip(ours, (5, 6, 7), strict=True))
        except Exception as exc:  # this kernel cannot run here; try the next
            log.info("lean decoder with %s products not used: %s", kernel, exc)
            continue
        finally:
            dec.finish()
        if diff <= VERIFY_TOL:
            return dec
        log.info("lean decoder with %s products not used: logits differ from the HF forward by %.2g", kernel, diff)
    return None
