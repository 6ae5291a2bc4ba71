"""Offensive words restored in noisy text (Best-of-N character noise).

Best-of-N noise (``audit.attacks.noise``) flips case, shuffles the middle letters of words
(``iodit``) and moves a few characters one code point up or down (``jdiot``). A person still reads
the word; a bag-of-words scorer does not. ``unscrambled(norm)`` replaces each word of normalized
(case-folded) text that is one of these distortions of a word in the offensive lexicon
(``lexicon.py``): the same first and last letter and the same middle letters in another order, or,
for words of five letters or more, that with one letter moved by one code point. Only lexicon
words are restored, so the reading can only add an offensive word where one was distorted; the
normalizer offers it as one more reading (``normalize.variants``) and the checker keeps the
worst score. ``restorations(text)`` lists what to replace; the normalizer asks only for text that
``looks_noised`` (case flipped inside words, Best-of-N's mark), and only on its first reading.

Limits: two or more substituted letters in a word, or a substituted first or last letter on a
short word, still pass; words outside the lexicon are not restored.
"""

from __future__ import annotations

import re
from functools import cache

from audit.guard.lexicon import OFFENSIVE_WORDS

_WORD = re.compile(r"[a-z]{4,}")
_LEXICON = frozenset(OFFENSIVE_WORDS)
MIN_SUBSTITUTED = 5  # shorter words with a moved letter collide with ordinary ones ("did" / "die")


def _key(word: str) -> tuple[str, str, str, int]:
    return (word[0], word[-1], "".join(sorted(word[1:-1])), len(word))


@cache
def _index() -> dict[tuple[str, str, str, int], str]:
    return {_key(w): w for w in sorted(set(OFFENSIVE_WORDS)) if len(w) >= 4 and w.isalpha()}


def restore(word: str) -> str | None:
    """The lexicon word ``word`` is a scrambled or one-letter-shifted form of, else None."""
    index = _index()
    if (hit := index.get(_key(word))) is not None:
        return hit if hit != word else None
    if len(word) < MIN_SUBSTITUTED:
        return None
    for i, c in enumerate(word):
        for d in (-1, 1):
            o = chr(ord(c) + d)
            if not o.isalpha() or not o.islower():
                continue
            hit = index.get(_key(word[:i] + o + word[i + 1 :]))
            if hit is not None:
                return hit
    return None


_CASED = re.compile(r"[^\W\d_]{3,}")


def looks_noised(original: str) -> bool:
    """Whether ``original`` carries Best-of-N's mark: case flipped inside words (``aRE``,
    ``FuckiNG``) in at least 2 words and a quarter of them. Ordinary text (``iPhone``, ``McDonald``,
    ``NASA``) stays below that."""
    words = _CASED.findall(original)
    mixed = sum(1 for w in words if not (w.islower() or w.isupper() or w.istitle()))
    return mixed >= 2 and mixed >= 0.25 * len(words)


def restorations(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, lexicon word)`` for each distorted lexicon word of normalized ``text``."""
    out = []
    for m in _WORD.finditer(text):
        word = m.group(0)
        if word not in _LEXICON:
            hit = restore(word)
            if hit is not None:
                out.append((m.start(), m.end(), hit))
    return out
