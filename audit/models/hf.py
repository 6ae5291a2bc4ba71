"""``hf`` backend: any transformers causal LM (GPT-2, GPT-Neo, Llama-style, ...).

Generation is our own batched decoding loop over the model's KV cache rather than
``model.generate``, for one reason: reproducibility per record. Each row draws its random numbers
from its own ``torch.Generator`` seeded by ``record_seed(run_seed, key, sample)``, and picks its
token by inverse-CDF sampling over the (temperature, top-k, top-p)-filtered distribution. A
completion therefore does not depend on batch size, on which batch the prompt lands in, or on the
engine. Batches are left-padded and length-sorted; a prompt that several rows hold (the samples
of one item) is prefilled once and its KV cache copied to those rows
(``audit/models/prompt_sharing.py``); ``torch.inference_mode`` throughout; CUDA when present.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from audit.core.errors import ModelUnavailableError
from audit.core.types import Completion, GenParams, GenRequest, LoglikelihoodRequest, record_seed
from audit.models.base import LoglikelihoodResult, ModelBackend, ModelInfo
from audit.models.batch_budget import attention_heads, kv_bytes_per_position, rows_within_budget
from audit.models.fast_decode import LlamaDecoder, verified
from audit.models.likelihood import score_requests, split_ids
from audit.models.prompt_sharing import batch_end, grouped_order, prefill
from audit.models.sampling import pick

log = logging.getLogger(__name__)

def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def fingerprint_files(paths: Sequence[Path], extra: Any = None) -> str:
    """A fast weights fingerprint: name, size and the first and last MiB of each file."""
    h = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode())
    for p in sorted(paths):
        size = p.stat().st_size
        h.update(f"{p.name}:{size}".encode())
        with p.open("rb") as fh:
            h.update(fh.read(1 << 20))
            if size > (2 << 20):
                fh.seek(-(1 << 20), os.SEEK_END)
                h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


class HFBackend(ModelBackend):
    """A transformers causal LM plus its tokenizer."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        fingerprint: str,
        random_weights: bool = False,
        batch_size: int = 16,
        device: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.device = device or default_device()
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.name = name
        self.fingerprint = fingerprint
        self.random_weights = random_weights
        self.batch_size = max(1, int(batch_size))
        self.details = details or {}
        self.shared_prefix = True  # False: every request is its own row (the reference path)
        self.lean = True  # False: decode through the HF forward (audit/models/fast_decode.py)
        self.share_prompts = True  # False: a prompt held by several rows is prefilled once per row
        self._lean_decoder: LlamaDecoder | bool | None = False  # False: not yet checked
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        self.pad_id = int(tokenizer.pad_token_id)
        eos: set[int] = set()
        for src in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
            if isinstance(src, int):
                eos.add(src)
            elif isinstance(src, list | tuple):
                eos.update(int(x) for x in src)
        self.eos_ids = sorted(eos)
        bos = tokenizer.bos_token_id
        self.start_id = int(bos if bos is not None else (self.eos_ids[0] if self.eos_ids else self.pad_id))
        self.n_params = sum(p.numel() for p in self.model.parameters())  # info() is called per work unit
        cfg = model.config
        self.max_positions = int(
            getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None) or 2048
        )

    # ------------------------------------------------------------------ info
    def info(self) -> ModelInfo:
        cfg = self.model.config
        details = {
            "model_type": getattr(cfg, "model_type", None),
            "n_params": self.n_params,
            "device": self.device,
            "dtype": str(next(self.model.parameters()).dtype),
            "chat_template": self.has_chat_template,  # suites with chat: true fall back to plain text without one
            **self.details,
        }
        return ModelInfo(
            name=self.name,
            backend="hf",
            fingerprint=self.fingerprint,
            random_weights=self.random_weights,
            details=details,
        )

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def answer_context(self, question: str, prefix: str, chat: bool) -> tuple[str, bool]:
        """With ``chat`` and a chat template: the question as the user turn and ``prefix`` as the
        start of the assistant turn, left open (``continue_final_message``, as
        lm-evaluation-harness renders a ``gen_prefix``); else question + prefix."""
        if not (chat and self.has_chat_template):
            return question + prefix, False
        turns = [{"role": "user", "content": question}]
        if prefix:
            turns.append({"role": "assistant", "content": prefix})
        text = self.tokenizer.apply_chat_template(
            turns, tokenize=False, add_generation_prompt=not prefix, continue_final_message=bool(prefix)
        )
        return str(text), True

    # ------------------------------------------------------------------ tokenization
    def _prompt_ids(self, prompt: str, chat: bool, max_new_tokens: int) -> list[int]:
        return self._encode_prompt(prompt, chat, max_new_tokens)[0]

    def _encode_prompt(self, prompt: str, chat: bool, max_new_tokens: int) -> tuple[list[int], int]:
        """Prompt token ids, cut from the left to leave room for ``max_new_tokens`` within the
        model's positions (1,024 for GPT-2, 2,048 for GPT-Neo), and how many tokens were cut."""
        if chat and self.has_chat_template:
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
            )
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            ids = self.tokenizer(prompt)["input_ids"]
        if not ids:
            ids = [self.start_id]
        budget = max(1, self.max_positions - max_new_tokens)
        return ids[-budget:], max(0, len(ids) - budget)

    # ------------------------------------------------------------------ generation
    def generate(self, requests: Sequence[GenRequest], params: GenParams, seed: int) -> list[Completion]:
        if not requests:
            return []
        pairs = [self._encode_prompt(r.prompt, params.chat, params.max_new_tokens) for r in requests]
        encoded = [ids for ids, _ in pairs]
        cut = [n for _, n in pairs]
        if any(cut):
            log.warning(
                "%d prompt(s) longer than %d positions minus %d new tokens were cut from the left",
                sum(1 for n in cut if n), self.max_positions, params.max_new_tokens,
            )
        order = grouped_order(encoded)
        in_order = [encoded[i] for i in order]
        kv, heads = kv_bytes_per_position(self.model.config), attention_heads(self.model.config)
        results: list[Completion | None] = [None] * len(requests)
        pos = 0
        while pos < len(order):
            size = self.batch_size if self.device != "cpu" else rows_within_budget(
                in_order, pos, self.batch_size, params.max_new_tokens, kv_per_position=kv, heads=heads)
            idx = order[pos : batch_end(in_order, pos, size)]
            try:
                outs = self._generate_batch(
                    [encoded[i] for i in idx],
                    [record_seed(seed, requests[i].key, requests[i].sample) for i in idx],
                    params,
                )
            except torch.OutOfMemoryError:
                if self.batch_size == 1:
                    raise
                self.batch_size //= 2
                log.warning("out of memory; batch size lowered to %d", self.batch_size)
                if self.device == "cuda":
                    torch.cuda.empty_cache()
                continue
            for i, out in zip(idx, outs, strict=True):
                out.prompt_truncated = cut[i]
                results[i] = out
            pos += len(idx)
        return [r for r in results if r is not None]

    def _left_pad(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, s in enumerate(seqs):
            ids[row, width - len(s) :] = torch.tensor(s, dtype=torch.long)
            mask[row, width - len(s) :] = 1
        return ids.to(self.device), mask.to(self.device)

    @torch.inference_mode()
    def _generate_batch(self, seqs: list[list[int]], seeds: list[int], params: GenParams) -> list[Completion]:
        n, steps = len(seqs), params.max_new_tokens
        input_ids, mask = self._left_pad(seqs)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        if params.greedy:
            uniforms = None
        else:
            uniforms = torch.stack(
                [
                    torch.rand(steps, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
                    for s in seeds
                ]
            ).to(self.device)
        eos = torch.tensor(self.eos_ids or [-1], device=self.device)
        finished = torch.zeros(n, dtype=torch.bool, device=self.device)
        tokens: list[torch.Tensor] = []
        stops = [x for x in params.stop if x]
        stopped_at: dict[int, int] = {}  # row -> tokens kept, for rows ended by a stop string
        rows: list[list[int]] = [[] for _ in range(n)]
        past = None
        cur_ids, cur_pos = input_ids, positions  # the prefill's: prompt_sharing.prefill runs them
        lean = self.decoder()
        if lean is not None:
            lean.start(mask, positions, steps)
        at = input_ids.shape[1]
        try:
            for step in range(steps):
                if step == 0:
                    logits, past = prefill(self.model, lean, seqs, cur_ids, mask, cur_pos, self.share_prompts)
                elif lean is not None:
                    logits = lean.step(cur_ids, at)
                    at += 1
                else:
                    out = self.model(
                        input_ids=cur_ids,
                        attention_mask=mask,
                        position_ids=cur_pos,
                        past_key_values=past,
                        use_cache=True,
                        logits_to_keep=1,  # the prompt's other positions need no vocabulary projection
                    )
                    past = out.past_key_values
                    logits = out.logits[:, -1, :].float()
                nxt = self._pick(logits, None if uniforms is None else uniforms[:, step], params)
                nxt = torch.where(finished, torch.full_like(nxt, self.pad_id), nxt)
                tokens.append(nxt)
                finished |= torch.isin(nxt, eos)
                if stops:
                    self._stop_rows(rows, nxt, finished, stopped_at, stops)
                if bool(finished.all()):
                    break
                cur_ids = nxt[:, None]
                if lean is None:
                    cur_pos = cur_pos[:, -1:] + 1
                    mask = torch.cat([mask, torch.ones((n, 1), dtype=mask.dtype, device=self.device)], dim=1)
        finally:
            if lean is not None:
                lean.finish()
        gen = torch.stack(tokens, dim=1).tolist() if tokens else [[] for _ in range(n)]
        eos_set = set(self.eos_ids)
        results = []
        for r, row in enumerate(gen):
            cut = next((j for j, t in enumerate(row) if t in eos_set), len(row))
            cut = min(cut, stopped_at.get(r, cut))
            row = row[:cut]
            text = self.tokenizer.decode(row, skip_special_tokens=True)
            for stop in params.stop:
                if stop and stop in text:
                    text = text[: text.index(stop)]
            results.append(Completion(text=text, n_tokens=len(row)))
        return results

    def decoder(self) -> LlamaDecoder | None:
        """The lean decoder when this model's architecture is supported and verified, else None."""
        if not self.lean:
            return None
        if self._lean_decoder is False:
            self._lean_decoder = verified(self.model, self.pad_id)
        return None if isinstance(self._lean_decoder, bool) else self._lean_decoder

    def _stop_rows(
        self, rows: list[list[int]], nxt: torch.Tensor, finished: torch.Tensor, stopped_at: dict[int, int],
        stops: list[str],
    ) -> None:
        """End rows whose text so far contains a stop string, during decoding rather than after it.
        The completion is cut at the stop either way, so its text is unchanged; fewer steps run."""
        for r, t in enumerate(nxt.tolist()):
            rows[r].append(t)
        for r in (~finished).nonzero().flatten().tolist():
            text = self.tokenizer.decode(rows[r], skip_special_tokens=True)
            if any(x in text for x in stops):
                finished[r] = True
                stopped_at[r] = len(rows[r])

    @staticmethod
    def _pick(logits: torch.Tensor, u: torch.Tensor | None, params: GenParams) -> torch.Tensor:
        return pick(logits, u, params)

    # ------------------------------------------------------------------ log-likelihood
    def _split_ids(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        return split_ids(self, context, continuation)

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        return score_requests(self, requests)


# ---------------------------------------------------------------------- loading


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def load_hf(
    name_or_path: str,
    *,
    gguf_file: str | None = None,
    batch_size: int = 16,
    device: str | None = None,
    trust_remote_code: bool = False,
) -> HFBackend:
    """Load a causal LM from a local directory, a ``.gguf`` file, or a hub id (cached or online)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelUnavailableError(f"GGUF file not found: {name_or_path}")
        gguf_file, path = path.name, path.parent
    is_local = path.exists()
    if not is_local and (
        name_or_path.startswith((".", "/", "~")) or os.sep in name_or_path.strip("/").replace("/", "", 1)
    ):
        raise ModelUnavailableError(f"model path not found: {name_or_path}")
    source = str(path) if is_local else name_or_path
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    if not is_local:
        kwargs["local_files_only"] = _offline() or _hub_unreachable()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except Exception as exc:  # a broken model folder or config (any error type) is the user's to fix
        if is_local:
            raise ModelUnavailableError(
                f"cannot load model from {source}: {str(exc).splitlines()[0]}"
            ) from None
        raise ModelUnavailableError(
            f"model '{name_or_path}' is not in the local Hugging Face cache and the hub is not reachable "
            f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '0')}); download it where you have network "
            f"(hf download {name_or_path}) or pass a local directory or .gguf file"
        ) from None
    if is_local:
        files = (
            [p for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".gguf", ".json")]
            if path.is_dir()
            else [path]
        )
        if gguf_file:
            files = [path / gguf_file]
        fp = fingerprint_files(files)
    else:
        fp = hashlib.sha256(
            f"{name_or_path}:{getattr(model.config, '_commit_hash', '')}".encode()
        ).hexdigest()[:16]
    return HFBackend(
        model,
        tokenizer,
        name=name_or_path,
        fingerprint=fp,
        batch_size=batch_size,
        device=device,
        details={"source": source, "gguf_file": gguf_file},
    )


def _hub_unreachable() -> bool:
    """Probe the hub once with a short timeout, so an offline machine fails in seconds."""
    import socket

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0]
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return False
    except OSError:
        return True
