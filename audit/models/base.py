"""The model backend interface: the only thing the rest of lm-audit knows about a model.

Two request types, in the spirit of lm-evaluation-harness:

- ``generate(requests, params, seed)`` returns one completion per request. A sampled completion
  depends only on ``seed``, the request's ``key`` and ``sample`` (see ``audit.types.record_seed``),
  never on batch size or on which batch the request lands in.
- ``loglikelihood(requests)`` returns ``sum log P(continuation | context)`` per request, plus the
  number of continuation tokens, for likelihood probes (CrowS-Pairs, StereoSet).

A backend also exposes ``info()``: a JSON-friendly description for the run manifest, including a
weights ``fingerprint`` used as the generation-cache key.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from audit.types import Completion, GenParams, GenRequest, LoglikelihoodRequest


@dataclass
class ModelInfo:
    name: str  # what the user asked for, e.g. "smollm2-135m" or "/models/gpt2"
    backend: str  # "hf", "openai", ...
    fingerprint: str  # changes whenever the weights change
    random_weights: bool = False  # true for tiny-random-* test models
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backend": self.backend,
            "fingerprint": self.fingerprint,
            "random_weights": self.random_weights,
            "details": self.details,
        }


@dataclass
class LoglikelihoodResult:
    logprob: float  # sum of log-probabilities of the continuation tokens (natural log)
    n_tokens: int  # number of continuation tokens
    is_greedy: bool = False  # every continuation token was the argmax


class ModelBackend(ABC):
    """Implement ``info``, ``generate`` and ``loglikelihood`` to plug a new kind of model in."""

    supports_loglikelihood: bool = True

    @abstractmethod
    def info(self) -> ModelInfo: ...

    @abstractmethod
    def generate(
        self, requests: Sequence[GenRequest], params: GenParams, seed: int
    ) -> list[Completion]: ...

    @abstractmethod
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (sessions, GPU memory)."""
