"""Detoxify toxicity backend, offline (``toxicity:detoxify`` / ``backend="detoxify"``).

Detoxify downloads its checkpoints from GitHub releases and the config/tokenizer of the checkpoint's
``model_type`` (a hub id such as ``bert-base-uncased``) from the Hugging Face hub at run time. Here
nothing is downloaded:

- the checkpoint is ``checkpoint=PATH``, or the release file in the torch hub cache
  (``$TORCH_HOME/hub/checkpoints/<release file name>``, where ``torch.hub`` would have put it);
- the config and tokenizer come from ``config_dir=FOLDER`` (``config.json`` + tokenizer files of the
  checkpoint's ``model_type``), or from the Hugging Face cache if that hub id is already there.

A checkpoint is Detoxify's own format: ``{"config": {"arch": {"args": {"model_type", "model_name",
"tokenizer_name", "num_classes"}}, "dataset": {"args": {"classes": [...]}}}, "state_dict": {...}}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from audit.core.errors import ScorerUnavailableError, UsageError
from audit.core.types import stable_hash
from audit.scorers.base import Reference, Scorer
from audit.scorers.hf_classifier import batched_logits, default_device, quiet_loading
from audit.scorers.options import as_bool, as_int
from audit.scorers.toxicity.common import (
    DEOBFUSCATED,
    TOXICITY,
    package_version,
    readable_batch,
    score_nonblank,
)

RELEASE_URL = "https://github.com/unitaryai/detoxify/releases/download/"
# variant -> (release path, hub id of the config/tokenizer the checkpoint names)
RELEASES: dict[str, tuple[str, str]] = {
    "original": ("v0.1-alpha/toxic_original-c1212f89.ckpt", "bert-base-uncased"),
    "unbiased": ("v0.3-alpha/toxic_debiased-c7548aa0.ckpt", "roberta-base"),
    "multilingual": ("v0.4-alpha/multilingual_debiased-0b549669.ckpt", "xlm-roberta-base"),
    "original-small": ("v0.1.2/original-albert-0e1d6498.ckpt", "albert-base-v2"),
    "unbiased-small": ("v0.1.2/unbiased-albert-c8519128.ckpt", "albert-base-v2"),
}
# Detoxify's own renaming of class names between its models.
_RENAME = {"toxic": "toxicity", "identity_hate": "identity_attack", "severe_toxic": "severe_toxicity"}


def release_file(variant: str) -> str:
    return RELEASES[variant][0].rsplit("/", 1)[1]


def hub_cache_path(variant: str) -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` keeps the release checkpoint of ``variant``."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / release_file(variant)


def _read_checkpoint(path: Path, trust: bool) -> dict[str, Any]:
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if not trust:
            raise ScorerUnavailableError(
                f"detoxify: {path} holds Python objects beyond tensors and plain data; "
                "load it only if you trust it (trust_checkpoint=true)"
            ) from None
    except (OSError, RuntimeError, EOFError) as exc:
        raise ScorerUnavailableError(f"detoxify: cannot read checkpoint {path}: {exc}") from None
    # Detoxify's release checkpoints may need full unpickling, as Detoxify itself does.
    return torch.load(path, map_location="cpu", weights_only=False)


@lru_cache(maxsize=4)
def load_detoxify(
    checkpoint: str, config_dir: str | None, device: str, trust: bool
) -> tuple[Any, Any, list[str]]:
    """(tokenizer, model, class names) from a Detoxify checkpoint and a local config folder."""
    import transformers

    loaded = _read_checkpoint(Path(checkpoint), trust)
    try:
        arch = loaded["config"]["arch"]["args"]
        classes = [_RENAME.get(c, c) for c in loaded["config"]["dataset"]["args"]["classes"]]
        state = loaded["state_dict"]
        model_type, model_name = str(arch["model_type"]), str(arch["model_name"])
        tokenizer_name, num_classes = str(arch["tokenizer_name"]), int(arch["num_classes"])
    except (KeyError, TypeError, ValueError):
        raise ScorerUnavailableError(
            f"detoxify: {checkpoint} is not a Detoxify checkpoint (needs config.arch.args with model_type, "
            "model_name, tokenizer_name, num_classes, config.dataset.args.classes and state_dict)"
        ) from None
    model_cls = getattr(transformers, model_name, None)
    tok_cls = getattr(transformers, tokenizer_name, None)
    if model_cls is None or not model_name.endswith("ForSequenceClassification") or tok_cls is None:
        raise ScorerUnavailableError(
            f"detoxify: {checkpoint} names {model_name}/{tokenizer_name}, which this transformers "
            f"({transformers.__version__}) does not provide"
        )
    source = config_dir or model_type
    try:
        with quiet_loading():
            config = model_cls.config_class.from_pretrained(source, local_files_only=True)
            tokenizer = tok_cls.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError):
        if config_dir:
            raise ScorerUnavailableError(
                f"detoxify: config_dir {config_dir} must hold config.json and the tokenizer files of "
                f"{model_type} ({tokenizer_name}: e.g. vocab.txt or tokenizer.json + tokenizer_config.json)"
            ) from None
        raise ScorerUnavailableError(
            f"detoxify: the checkpoint's model_type '{model_type}' is a hub id that is not cached here; "
            f"pass config_dir=FOLDER holding its config.json and tokenizer files ({tokenizer_name})"
        ) from None
    if len(classes) != num_classes:
        raise ScorerUnavailableError(f"detoxify: {checkpoint} lists {len(classes)} classes for {num_classes} outputs")
    config.id2label = dict(enumerate(classes))
    config.label2id = {c: i for i, c in enumerate(classes)}
    config.problem_type = "multi_label_classification"
    model = model_cls(config)
    state = {k.removeprefix("model."): v for k, v in state.items()}
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("position_ids")]
    if missing:
        raise ScorerUnavailableError(
            f"detoxify: checkpoint {checkpoint} does not fit the config in {source} "
            f"(missing {len(missing)} weights, e.g. {missing[0]})"
        )
    model.to(device)
    model.eval()
    return tokenizer, model, classes


class DetoxifyToxicity(Scorer):
    """Toxicity from a Detoxify model (Unitary; BERT "original" trained on Jigsaw 2018, RoBERTa
    "unbiased" on Jigsaw Unintended Bias 2019, XLM-R "multilingual" on Jigsaw 2020), run offline.

    Measures: the sigmoid probability of Detoxify's ``toxicity`` class. Range 0..1, higher is worse.
    Empty or whitespace-only text: 0.0. Options: ``variant`` (original | unbiased | multilingual |
    original-small | unbiased-small), ``checkpoint`` (path; default: the release file in the torch hub
    cache), ``config_dir`` (folder with the HF config + tokenizer of the checkpoint's model_type),
    ``device``, ``batch_size``, ``trust_checkpoint``. Limits: "original" is known to over-flag identity
    terms (the "unbiased" variant was trained to reduce that); inputs beyond the model's maximum
    length (512 tokens) are truncated; batched and one-by-one results agree up to float rounding.
    """

    name = "toxicity"
    outputs = (TOXICITY,)

    def __init__(
        self,
        variant: str = "original",
        checkpoint: str | None = None,
        config_dir: str | None = None,
        device: str | None = None,
        batch_size: Any = 32,
        trust_checkpoint: Any = True,
    ) -> None:
        if variant not in RELEASES:
            raise UsageError(f"detoxify: unknown variant '{variant}' (known: {', '.join(RELEASES)})")
        if checkpoint:
            path = Path(checkpoint).expanduser()
            if not path.is_file():
                raise ScorerUnavailableError(f"detoxify: checkpoint {path} does not exist")
        else:
            path = hub_cache_path(variant)
            if not path.is_file():
                rel, hub_id = RELEASES[variant]
                raise ScorerUnavailableError(
                    f"detoxify '{variant}' needs its checkpoint {release_file(variant)} ({RELEASE_URL}{rel}) "
                    f"at {path} or passed as checkpoint=PATH, plus config_dir=FOLDER with the config.json "
                    f"and tokenizer files of {hub_id}"
                )
        if config_dir is not None and not Path(config_dir).expanduser().is_dir():
            raise ScorerUnavailableError(f"detoxify: config_dir {config_dir} is not a folder")
        self.device = device or default_device()
        self.batch_size = as_int(batch_size, "batch_size")
        self.tokenizer, self.model, self.classes = load_detoxify(
            str(path.resolve()),
            None if config_dir is None else str(Path(config_dir).expanduser().resolve()),
            self.device,
            as_bool(trust_checkpoint, "trust_checkpoint"),
        )
        if "toxicity" not in self.classes:
            raise ScorerUnavailableError(f"detoxify: checkpoint {path} has no toxicity class ({self.classes})")
        self.index = self.classes.index("toxicity")
        st = path.stat()
        self.version = (
            f"detoxify-{package_version('detoxify')}:{variant}:{path.name}:"
            f"{stable_hash([st.st_size, self.classes, self.model.config.to_dict()], n=8)}{DEOBFUSCATED}"
        )

    def _predict(self, texts: list[str]) -> list[float]:
        import numpy as np

        logits = batched_logits(self.tokenizer, self.model, texts, None, self.batch_size)
        return list(1.0 / (1.0 + np.exp(-logits[:, self.index].astype(np.float64))))

    def score(
        self, texts: Sequence[str], refs: Sequence[Reference] | None = None
    ) -> list[dict[str, float | None]]:
        batch = readable_batch(texts)
        return [{"toxicity": p} for p in score_nonblank(batch, self._predict)]
