"""Random-weight GPT-2 and GPT-Neo at their published architectures, with GPT-2's real tokenizer.

No GPT-2 or GPT-Neo weights ship in any package registry, so these exercise the audit path for the
seed models at their true size: the real 50,257-token BPE tokenizer (no pad token, BOS = EOS =
50256), 1,024 positions for GPT-2 and 2,048 for GPT-Neo with its alternating global/local attention,
and the real parameter counts (so speed and memory are those of the real checkpoints). The weights
are seeded random: completions are noise, and every report marks them as random weights.

Architecture figures (public, from the GPT-2 and GPT-Neo papers and model cards):

| name | layers | d_model | heads | positions | parameters |
|---|---|---|---|---|---|
| gpt2-random | 12 | 768 | 12 | 1024 | 124M |
| gpt2-medium-random | 24 | 1024 | 16 | 1024 | 355M |
| gpt-neo-125m-random | 12 | 768 | 12 | 2048 (global/local, window 256) | 125M |
"""

from __future__ import annotations

from typing import Any

from audit.models.base import ModelBackend

SEED = 1234
VOCAB = 50257
EOS_ID = 50256

ARCHITECTURES: dict[str, dict[str, Any]] = {
    "gpt2-random": {"kind": "gpt2", "layers": 12, "d_model": 768, "heads": 12, "positions": 1024},
    "gpt2-medium-random": {"kind": "gpt2", "layers": 24, "d_model": 1024, "heads": 16, "positions": 1024},
    "gpt-neo-125m-random": {"kind": "gpt-neo", "layers": 12, "d_model": 768, "heads": 12, "positions": 2048},
}

DESCRIPTIONS = {
    "gpt2-random": "random-weight GPT-2 small (124M, real GPT-2 tokenizer, 1024 positions), for tests",
    "gpt2-medium-random": "random-weight GPT-2 medium (355M, real GPT-2 tokenizer), for tests",
    "gpt-neo-125m-random": "random-weight GPT-Neo 125M (real GPT-2 tokenizer, 2048 positions), for tests",
}


def config_for(name: str) -> Any:
    """The transformers config of a published architecture (``gpt2-random``, ...)."""
    from transformers import GPT2Config, GPTNeoConfig

    a = ARCHITECTURES[name]
    if a["kind"] == "gpt2":
        return GPT2Config(
            vocab_size=VOCAB,
            n_positions=a["positions"],
            n_embd=a["d_model"],
            n_layer=a["layers"],
            n_head=a["heads"],
            bos_token_id=EOS_ID,
            eos_token_id=EOS_ID,
        )
    return GPTNeoConfig(
        vocab_size=VOCAB,
        max_position_embeddings=a["positions"],
        hidden_size=a["d_model"],
        num_layers=a["layers"],
        num_heads=a["heads"],
        attention_types=[[["global", "local"], a["layers"] // 2]],
        window_size=256,
        bos_token_id=EOS_ID,
        eos_token_id=EOS_ID,
    )


def random_model(name: str, seed: int = SEED) -> Any:
    """The seeded random-weight model (the same weights on every machine with the same torch)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config_for(name))
    return model.eval()


def load_true_size(name: str, **options: Any) -> ModelBackend:
    from audit.models.gpt2_tokenizer import gpt2_tokenizer
    from audit.models.hf import HFBackend

    positions = ARCHITECTURES[name]["positions"]
    return HFBackend(
        random_model(name),
        gpt2_tokenizer(model_max_length=positions),
        name=name,
        fingerprint=f"{name}-seed{SEED}-v1",
        random_weights=True,
        details={
            "note": "random weights at the published architecture: completions are noise; for tests only",
            "architecture": dict(ARCHITECTURES[name]),
            "tokenizer": "GPT-2 BPE (vendored, MIT)",
        },
        **options,
    )
