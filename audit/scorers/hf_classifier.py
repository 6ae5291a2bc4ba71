"""``hf-classifier``: any transformers sequence-classification model as a scorer, offline.

``get_scorer("hf-classifier", model=FOLDER)`` returns one probability per label (keys
``hf_<label>``); with a label mapping, ``labels={"positive": 1, "negative": -1}`` (or the strings
``"positive:1,negative:-1"`` / ``"toxic,hate"``), it returns one weighted sum under ``key``
(default ``hf_score``). The ``toxicity``, ``regard``, ``refusal`` and ``factuality`` (NLI) scorers
use it as their classifier backend.

Models load with ``local_files_only=True``: a local folder, or a hub id already in the Hugging Face
cache; nothing is downloaded. Texts are tokenized and run in length-sorted batches (``batch_size``,
default 32) on the GPU when one is present (``device=`` overrides), truncated to the model's maximum
length. Loaded models are shared between scorers in the process.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from audit.core.errors import ScorerUnavailableError, UsageError
from audit.core.types import stable_hash
from audit.scorers.base import Reference, Scorer, ScoreSpec, check_texts
from audit.scorers.options import as_bool, as_int, parse_label_weights

TOXIC_LABEL_NAMES = ("toxicity", "toxic", "hate", "offensive", "abusive")


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _slug(label: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", label.lower()).strip("_") or "label"


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers' weight-loading progress bars and load reports, then restore them."""
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bar:
            hf_logging.enable_progress_bar()


@lru_cache(maxsize=8)
def load_classifier(model: str, device: str) -> tuple[Any, Any]:
    """(tokenizer, model) from a local folder or the local HF cache; never downloads."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        with quiet_loading():
            tok = AutoTokenizer.from_pretrained(model, local_files_only=True)
            clf = AutoModelForSequenceClassification.from_pretrained(model, local_files_only=True)
    except (OSError, ValueError) as exc:
        where = "folder" if Path(model).exists() else "hub id"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ScorerUnavailableError(
            f"hf-classifier: cannot load {where} '{model}' offline ({first}); pass model=FOLDER holding "
            "config.json, the weights (model.safetensors or pytorch_model.bin) and the tokenizer files, "
            "or a hub id already in the Hugging Face cache"
        ) from None
    clf.to(device)
    clf.eval()
    return tok, clf


def max_input_length(tokenizer: Any, config: Any) -> int:
    """The longest input the model accepts (RoBERTa-style models reserve 2 positions)."""
    limit = int(getattr(config, "max_position_embeddings", 512) or 512)
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert", "longformer"):
        limit -= 2
    tok_max = int(getattr(tokenizer, "model_max_length", limit) or limit)
    return max(8, min(limit, tok_max, 4096))


def batched_logits(
    tokenizer: Any,
    model: Any,
    texts: list[str],
    pairs: list[str] | None = None,
    batch_size: int = 32,
    max_length: int | None = None,
) -> np.ndarray:
    """Logits for ``texts`` (and optional second segments ``pairs``), in input order.

    Inputs are sorted by length so each padded batch holds similar lengths; padding is masked, so
    a text's logits do not depend on its batch (up to float rounding, ~1e-6).
    """
    import torch

    n = len(texts)
    n_labels = int(model.config.num_labels)
    if n == 0:
        return np.zeros((0, n_labels), dtype=np.float32)
    limit = max_length or max_input_length(tokenizer, model.config)
    order = sorted(range(n), key=lambda i: len(texts[i]) + (len(pairs[i]) if pairs else 0))
    out = np.zeros((n, n_labels), dtype=np.float32)
    device = next(model.parameters()).device
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            first = [texts[i] for i in idx]
            second = [pairs[i] for i in idx] if pairs is not None else None
            enc = tokenizer(
                first,
                second,
                padding=True,
                truncation="longest_first" if second is not None else True,
                max_length=limit,
                return_tensors="pt",
            )
            enc = {k: v.to(device) for k, v in enc.items()}
            logits = model(**enc).logits.float().cpu().numpy()
            out[idx] = logits
    return out


def resolve_labels(
    id2label: dict[int, str], wanted: dict[str, float], what: str = "hf-classifier"
) -> np.ndarray:
    """A weight vector over the model's label indices from a mapping label name -> weight.

    Label names match case-insensitively, ignoring ``-``/``_``/space; ``LABEL_1`` or ``1`` select by index.
    """
    names = {_slug(v): int(k) for k, v in id2label.items()}
    weights = np.zeros(len(id2label), dtype=np.float64)
    for label, w in wanted.items():
        s = _slug(label)
        idx = names.get(s)
        if idx is None:
            m = re.fullmatch(r"(?:label_)?(\d+)", s)
            idx = int(m.group(1)) if m and int(m.group(1)) < len(id2label) else None
        if idx is None:
            raise UsageError(
                f"{what}: label '{label}' is not one of the model's labels "
                f"({', '.join(id2label[i] for i in sorted(id2label))})"
            )
        weights[idx] += w
    return weights


class HFClassifier(Scorer):
    """Any local transformers sequence-classification model (``hf-classifier``).

    Measures: whatever the model was trained for. Without ``labels``: one probability per label,
    keys ``hf_<label>``, range 0..1. With ``labels`` (label -> weight): one key (``key``, default
    ``hf_score``) = sum of weight x probability, range from the sum of negative weights to the sum
    of positive weights; direction depends on the mapping. Probabilities are a softmax over labels,
    or per-label sigmoids for multi-label models (``multi_label=`` overrides the model config).
    Empty or whitespace-only text gets the model's own prediction. Batched output equals one-by-one
    output up to float rounding (~1e-6). Limits: those of the model (check its card, and run the
    scorer self-audit before comparing groups); inputs longer than the model's maximum are truncated.
    """

    name = "hf-classifier"

    def __init__(
        self,
        model: str | None = None,
        labels: Any = None,
        key: str | None = None,
        multi_label: Any = None,
        device: str | None = None,
        batch_size: Any = 32,
        max_length: Any = None,
        default_labels: Sequence[str] = (),
        higher_is: str = "neutral",
        scorer_name: str | None = None,
    ) -> None:
        what = scorer_name or "hf-classifier"
        if not model:
            raise UsageError(
                f"{what} needs model=PATH (a local folder with a sequence-classification model, "
                "or a hub id already in the Hugging Face cache)"
            )
        self.model_ref = str(model)
        self.device = device or default_device()
        self.batch_size = as_int(batch_size, "batch_size")
        self.max_length = None if max_length is None else as_int(max_length, "max_length", minimum=8)
        self.tokenizer, self.model = load_classifier(self.model_ref, self.device)
        config = self.model.config
        self.id2label = {int(k): str(v) for k, v in config.id2label.items()}
        self.label_names = [self.id2label[i] for i in sorted(self.id2label)]
        if multi_label is None:
            self.multi_label = getattr(config, "problem_type", None) == "multi_label_classification"
        else:
            self.multi_label = as_bool(multi_label, "multi_label")
        mapping: dict[str, float] | None = None
        if labels is not None:
            mapping = parse_label_weights(labels)
        elif default_labels:
            slugs = {_slug(v) for v in self.label_names}
            found = next((d for d in default_labels if _slug(d) in slugs), None)
            if found is None:
                raise UsageError(
                    f"{what}: cannot tell which label of '{self.model_ref}' to use "
                    f"(labels: {', '.join(self.label_names)}); pass labels=NAME or labels='a:1,b:1'"
                )
            mapping = {found: 1.0}
        self.weights = None if mapping is None else resolve_labels(self.id2label, mapping, what)
        self.key = key or "hf_score"
        if self.weights is None:
            self.outputs = tuple(
                ScoreSpec(f"hf_{_slug(lbl)}", 0.0, 1.0, "neutral", f"probability of label '{lbl}'")
                for lbl in self.label_names
            )
        else:
            low = float(self.weights[self.weights < 0].sum())
            high = float(self.weights[self.weights > 0].sum())
            self.outputs = (ScoreSpec(self.key, low, high, higher_is, f"weighted label probabilities {mapping}"),)
        fingerprint = stable_hash(
            [config.to_dict(), None if mapping is None else sorted(mapping.items()), self.multi_label], n=10
        )
        self.version = f"hf-classifier:{Path(self.model_ref).name or self.model_ref}:{fingerprint}"

    def probabilities(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """Label probabilities, shape (len(texts), n_labels)."""
        batch = check_texts(texts)
        second = None if pairs is None else check_texts(pairs)
        logits = batched_logits(
            self.tokenizer, self.model, batch, second, self.batch_size, self.max_length
        ).astype(np.float64)
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-logits))
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def weighted(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[float]:
        if self.weights is None:
            raise UsageError("hf-classifier: weighted() needs a label mapping (labels=...)")
        return [float(v) for v in self.probabilities(texts, pairs) @ self.weights]

    def score(
        self, texts: Sequence[str], refs: Sequence[Reference] | None = None
    ) -> list[dict[str, float | None]]:
        probs = self.probabilities(texts)
        if self.weights is not None:
            return [{self.key: float(v)} for v in probs @ self.weights]
        keys = [s.key for s in self.outputs]
        return [{k: float(p) for k, p in zip(keys, row, strict=True)} for row in probs]
