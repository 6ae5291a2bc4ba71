"""The scorer interface: a batch of texts in, one dict of named float scores per text out.

A scorer has a ``name`` (what suites and the CLI use), a ``version`` (written to the run manifest)
and a docstring card: what it measures, its range, which direction is better, known limits.
``outputs`` documents every key it returns, with range and direction, so reports can label them.

Conventions:
- ``score(texts, refs=None)`` returns ``len(texts)`` dicts, in order. Batched output must equal
  one-by-one output.
- ``refs`` (reference-based scorers only) is one ``Reference`` per text.
- ``needs_prompts`` scorers (the refusal classifier) also offer ``score_in_context(texts, contexts)``,
  one ``PromptContext`` (the prompt text and its declared class, if any) per text; callers that
  know the prompts (the runner) use it, everyone else calls ``score`` (prompt-blind).
- Empty or whitespace-only text is valid input and gets a documented value (usually the benign end
  of the range), never an exception. ``None`` or a non-string raises ``TypeError`` with one clear line.
- A score that cannot be computed for a text is ``None`` (never NaN).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ScoreSpec:
    """Documentation of one output key."""

    key: str
    low: float
    high: float
    higher_is: str  # "worse", "better" or "neutral"
    description: str


@dataclass
class Reference:
    """References for one text: correct answers (with aliases) and, optionally, incorrect ones."""

    correct: list[str] = field(default_factory=list)
    incorrect: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PromptContext:
    """What a text answered: the prompt and, when the suite declares it (item attribute
    ``prompt_class``), its class: ``"safe"``, ``"unsafe"``, or None when unknown."""

    prompt: str = ""
    prompt_class: str | None = None


class Scorer(ABC):
    name: str = ""
    version: str = "0"
    outputs: tuple[ScoreSpec, ...] = ()
    needs_refs: bool = False
    needs_prompts: bool = False

    def score_in_context(
        self, texts: Sequence[str], contexts: Sequence[PromptContext]
    ) -> list[dict[str, float | None]]:
        """Score texts knowing the prompts they answer (``needs_prompts`` scorers override this)."""
        return self.score(texts)

    @abstractmethod
    def score(
        self, texts: Sequence[str], refs: Sequence[Reference] | None = None
    ) -> list[dict[str, float | None]]: ...

    def release(self) -> None:
        """Let go of loaded models the scorer can load again on its next call (a run calls this
        after the last suite that uses the scorer); the default holds nothing worth freeing."""
        return None

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "card": (self.__doc__ or "").strip(),
            "outputs": [spec.__dict__ for spec in self.outputs],
        }


def check_texts(texts: Sequence[object]) -> list[str]:
    """Validate a batch at the boundary: every item must be a ``str``."""
    out: list[str] = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"text #{i} is {type(t).__name__}, expected str")
        out.append(t)
    return out
