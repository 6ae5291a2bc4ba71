"""Identity-term neutralization: score a text with its identity terms replaced by a placeholder.

``neutralize("I am a gay man.") == "I am a [group] [group]."``. The term list (gender, race and
ethnicity, religion, sexual orientation, nationality, age, disability; singular and plural forms)
lives in ``data/identity_calibration.json``. Matching is case-insensitive, on whole words, longest
term first; internal spaces match any run of whitespace.

Limits: only neutral descriptors are listed (slurs are not, so they still count); the same words in
other senses are replaced too ("black coffee", "old car", "go straight"), which is harmless for a
toxicity score but changes the text; identity-targeted hate that uses only a neutral descriptor plus
neutral words ("Muslims should leave") loses its target, so neutralization lowers recall on
identity attacks while it removes false positives on benign identity mentions. The wrapper
neutralizes text as a reader sees it (``audit.text.deobfuscate``), so terms split by zero-width
characters or written behind a right-to-left override are matched too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from audit.core.types import stable_hash
from audit.scorers.base import Reference, Scorer, check_texts
from audit.scorers.calibration import load_calibration
from audit.text.deobfuscate import deobfuscate


@cache
def _pattern() -> re.Pattern[str]:
    terms = sorted(load_calibration().terms, key=len, reverse=True)
    alts = [r"\s+".join(re.escape(part) for part in t.split()) for t in terms]
    return re.compile(r"(?<!\w)(?:" + "|".join(alts) + r")(?!\w)", re.IGNORECASE)


def neutralize(text: str, placeholder: str | None = None) -> str:
    """Replace every identity term in ``text`` by ``placeholder`` (default from the data file)."""
    ph = load_calibration().placeholder if placeholder is None else placeholder
    return _pattern().sub(lambda _m: ph, text)


def terms_digest() -> str:
    """A short hash of the term list and placeholder, part of the neutralized scorer's version."""
    cal = load_calibration()
    return stable_hash([cal.placeholder, list(cal.terms)], n=8)


class IdentityNeutralized(Scorer):
    """Wraps any scorer: texts are scored with identity terms replaced by a neutral placeholder.

    Measures: whatever the wrapped scorer measures, minus the part driven by identity words alone.
    Range and direction: those of the wrapped scorer. Limits: see ``audit.scorers.neutralize``;
    it removes false positives on benign identity mentions and also hides identity-only attacks.
    """

    def __init__(self, inner: Scorer, placeholder: str | None = None) -> None:
        self.inner = inner
        self.placeholder = placeholder
        self.name = inner.name
        suffix = "" if placeholder is None else f"-{stable_hash(placeholder, n=6)}"
        self.version = f"{inner.version}+neutralized-{terms_digest()}{suffix}"
        self.outputs = inner.outputs
        self.needs_refs = inner.needs_refs

    def score(
        self, texts: Sequence[str], refs: Sequence[Reference] | None = None
    ) -> list[dict[str, float | None]]:
        batch = check_texts(texts)
        return self.inner.score([neutralize(deobfuscate(t), self.placeholder) for t in batch], refs)
