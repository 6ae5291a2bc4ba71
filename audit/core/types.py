"""Plain data passed between layers: generation parameters, requests and run records.

Everything here is a frozen dataclass or a JSON-friendly dict, so it can be written to disk,
hashed for caching and sent to another process (Ray workers) unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

COUPLINGS = ("inverse-cdf", "gumbel")  # how sampled tokens are drawn (GenParams.coupling)
DEFAULT_COUPLING = "inverse-cdf"


@dataclass(frozen=True)
class GenParams:
    """How to generate. ``temperature == 0`` or ``do_sample=False`` means greedy decoding.

    ``coupling``: how a row's random numbers pick a token (audit/models/sampling.py):
    ``inverse-cdf`` (one uniform per step) or ``gumbel`` (Gumbel-max with noise per token id, so
    records sharing a seed pick the same token wherever their distributions barely differ). It is
    left out of ``to_dict`` at its default, so earlier cache keys and manifests stay the same."""

    max_new_tokens: int = 20
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    do_sample: bool = True
    stop: tuple[str, ...] = ()
    chat: bool = False
    coupling: str = DEFAULT_COUPLING

    @property
    def greedy(self) -> bool:
        return (not self.do_sample) or self.temperature <= 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        if d["coupling"] == DEFAULT_COUPLING:
            del d["coupling"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenParams:
        d = dict(d)
        d["stop"] = tuple(d.get("stop", ()))
        return cls(**d)

    def digest(self) -> str:
        return stable_hash(self.to_dict())


@dataclass(frozen=True)
class GenRequest:
    """One completion to produce.

    ``key`` identifies the prompt item (stable across runs); ``sample`` is the sample index.
    Together with the run seed they determine a sampled completion's random numbers, independent
    of batch size or batch composition (the logits may differ in the last float bits with the
    batch's row count: docs/architecture.md).
    """

    key: str
    prompt: str
    sample: int = 0


@dataclass
class Completion:
    text: str
    n_tokens: int = 0
    cached: bool = False
    prompt_truncated: int = 0  # prompt tokens dropped (from the left) to fit the model's positions


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """log P(continuation | context). An empty context means the continuation is scored from the
    start of text (the backend prepends its BOS/EOS token)."""

    context: str
    continuation: str


@dataclass
class Record:
    """One row of ``records.jsonl``: one prompt x sample, with everything needed to re-score it."""

    key: str  # unique within a run: f"{suite}/{item_id}/{sample}"
    suite: str
    item_id: str
    template_id: str | None
    sample: int
    prompt: str
    completion: str
    attributes: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, float | None] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        return cls(**d)


def stable_hash(obj: Any, n: int = 16) -> str:
    """A short, stable hex digest of any JSON-serialisable object."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:n]


def record_seed(run_seed: int, key: str, sample: int) -> int:
    """The seed of one completion: a function of the run seed and the record's own identity only."""
    h = hashlib.sha256(f"{run_seed}\x1f{key}\x1f{sample}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)
