"""The model backend interface: the only thing the rest of lm-audit knows about a model.

Two request types, in the spirit of lm-evaluation-harness:

- ``generate(requests, params, seed)`` returns one completion per request. A sampled completion
  depends only on ``seed``, the request's ``key`` and ``sample`` (see ``audit.core.types.record_seed``),
  never on batch size or on which batch the request lands in.
- ``loglikelihood(requests)`` returns ``sum log P(continuation | context)`` per request, plus the
  number of continuation tokens, for likelihood probes (CrowS-Pairs, StereoSet).

A backend also exposes ``info()``: a JSON-friendly description for the run manifest, including a
weights ``fingerprint`` used as the generation-cache key.
"""

from __future__ import annotations

import dataclasses
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from audit.core.types import Completion, GenParams, GenRequest, LoglikelihoodRequest


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

    def answer_context(self, question: str, prefix: str, chat: bool) -> tuple[str, bool]:
        """The text an answer continues (answer-frame suites, ``audit/suites/answers.py``): the
        question, then ``prefix`` opening the answer, and whether a chat template framed them.
        Backends with chat templates put the question in the user turn and ``prefix`` at the start
        of the assistant turn when ``chat``; this default joins the two as they are."""
        return question + prefix, False

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (sessions, GPU memory)."""


# --------------------------------------------------------------------------- untrusted text
_BAD_CHARS = re.compile("[\ud800-\udfff\x00]")


def clean_text(text: Any) -> tuple[str, list[str]]:
    """Model text made valid Unicode, and what was repaired (empty when nothing was).

    Completions are untrusted: an endpoint can send lone surrogates (``"\\ud800"`` in its JSON),
    NUL bytes or invalid UTF-8 (decoded with ``surrogateescape``, so those bytes arrive as lone
    surrogates too). Surrogate pairs are joined, what is left and NUL become U+FFFD, bytes are
    decoded as UTF-8 with replacement, anything else becomes ``""``. Valid text is returned as is.
    """
    notes: list[str] = []
    if isinstance(text, bytes | bytearray):
        raw = bytes(text)
        text = raw.decode("utf-8", "replace")
        if text.encode("utf-8") != raw:
            notes.append("invalid UTF-8 replaced")
    elif not isinstance(text, str):
        return "", [f"not text ({type(text).__name__}) dropped"]
    if not _BAD_CHARS.search(text):
        return text, notes
    if "\x00" in text:
        notes.append("NUL characters replaced")
        text = text.replace("\x00", "\ufffd")
    if _BAD_CHARS.search(text):
        escaped = any("\udc80" <= c <= "\udcff" for c in text)
        joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        if not _BAD_CHARS.search(joined) and joined.count("\ufffd") == text.count("\ufffd"):
            notes.append("surrogate pairs joined")
        else:
            notes.append("lone surrogates or invalid UTF-8 replaced" if escaped else "lone surrogates replaced")
        text = _BAD_CHARS.sub("\ufffd", joined)
    return text, notes


def clean_value(value: Any) -> tuple[Any, list[str]]:
    """``clean_text`` applied to every string (and key) of a JSON-like value."""
    notes: list[str] = []

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            out, n = clean_text(v)
            notes.extend(n)
            return out
        if isinstance(v, dict):
            return {walk(k) if isinstance(k, str) else k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(value), notes


def clean_completion(completion: Completion) -> tuple[Completion, list[str]]:
    """A completion whose text is valid Unicode, and what was repaired."""
    text, notes = clean_text(completion.text)
    if not notes:
        return completion, notes
    return dataclasses.replace(completion, text=text), notes
