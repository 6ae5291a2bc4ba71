"""The user cache folder and loading an embedded GGUF model through a cached safetensors copy:
one module that the model registry and the optional Gemma model both use."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from audit.models.base import ModelBackend


def cache_dir() -> Path:
    """Where lm-audit keeps converted models and the generation cache (``LM_AUDIT_CACHE_DIR``)."""
    env = os.environ.get("LM_AUDIT_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("lm-audit"))


def load_gguf_converted(gguf: Path, name: str, fingerprint: str, licence: str, **options: Any) -> ModelBackend:
    """An embedded GGUF model through its cached safetensors copy (``<cache>/models/<name>-<fp>``),
    converting the GGUF on first use."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from audit.core.memory import phase
    from audit.models.hf import HFBackend

    target = cache_dir() / "models" / f"{name}-{fingerprint}"
    if not (target / "model.safetensors").is_file():
        convert_gguf(gguf, target)
        phase("gguf converted")
    tokenizer = AutoTokenizer.from_pretrained(target, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(target, local_files_only=True, dtype="float32")
    phase("converted model loaded")
    return HFBackend(
        model,
        tokenizer,
        name=name,
        fingerprint=fingerprint,
        details={"source": str(gguf), "converted_copy": str(target), "licence": licence},
        **options,
    )


def convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantize the GGUF once and save a plain safetensors checkpoint (atomic via rename): tensor
    by tensor (``audit/models/gguf_convert.py``), or through a loaded model for architectures that
    path does not handle. The freed buffers are handed back to the system afterwards."""
    from transformers import AutoTokenizer

    from audit.core.memory import release
    from audit.models.gguf_convert import StreamUnsupported, stream_convert

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        tokenizer.save_pretrained(tmp)
        del tokenizer
        try:
            stream_convert(gguf, tmp)
        except StreamUnsupported:
            convert_in_memory(gguf, tmp)
        (tmp / "lm_audit_source.json").write_text(json.dumps({"gguf": str(gguf)}))
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        release()


def convert_in_memory(gguf: Path, tmp: Path) -> None:
    """The whole model through ``from_pretrained(gguf_file=...)``, then ``save_pretrained``."""
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    cfg = loaded.config
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    import torch

    with torch.device("meta"):  # no second copy of the weights: the plain model takes the loaded tensors
        plain = AutoModelForCausalLM.from_config(cfg)
    plain.load_state_dict(loaded.state_dict(), assign=True)
    plain.tie_weights()
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(tmp)
