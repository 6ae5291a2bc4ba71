"""A spaced-out run read back as the English words a person reads in it.

Spacing letters apart (``k i l l a P y t h o n p r o c e s s``) loses the word boundaries:
normalization joins the run (``killapythonprocess``). ``english_split(run)`` cuts it into
English words (``audit.text.words``, the common words and the offensive lexicon; look-alike digits
read as letters, so ``sh1t`` is a word): the fewest words, where a common word counts less than
one (``come back``, not ``comeback``), a rare two-letter word more, and a lexicon word less than
other words (``what a moron``, not ``what am or on``; ``therapist`` stays one word): ``kill a python process``, ``you are a fucking idiot``. The checker
then scores a lexicon word in its context, as a reader sees it, instead of ``kill`` beside
``apythonprocess``. ``None`` when the run cannot be covered by words; the normalizer then falls
back to splitting out lexicon words alone.
"""

from __future__ import annotations

from functools import cache

from audit.guard.leet import LEET
from audit.guard.lexicon import OFFENSIVE_WORDS
from audit.text.deobfuscate import COMMON_WORDS
from audit.text.words import english_words

MAX_WORD = 24
MAX_RUN = 400  # longer runs are left to the lexicon split (the search is quadratic in MAX_WORD)
_LEXICON = frozenset(OFFENSIVE_WORDS)
_LEET_TABLE = str.maketrans(LEET)


@cache
def _vocabulary() -> frozenset[str]:
    return english_words() | COMMON_WORDS | _LEXICON


def _cost(word: str) -> float | None:
    """What a word adds to a split (fewer, lexicon and common words first), None if no word."""
    folded = word.translate(_LEET_TABLE)
    if folded in COMMON_WORDS or folded in ("a", "i"):
        return 0.45  # "come back here", not "comeback here"
    if folded in _LEXICON:
        return 0.8  # "what a moron", not "what am or on"; but "therapist" stays one word
    if len(folded) < 2 or folded not in _vocabulary():
        return None
    return 1.5 if len(folded) == 2 else 1.0


def english_split(run: str) -> list[str] | None:
    """``run`` (lower case, no spaces) as the cheapest sequence of words, or None."""
    n = len(run)
    if n == 0 or n > MAX_RUN or not english_words():
        return None
    best: list[tuple[float, int] | None] = [None] * (n + 1)
    best[0] = (0.0, 0)
    for end in range(1, n + 1):
        for start in range(max(0, end - MAX_WORD), end):
            prev = best[start]
            if prev is None:
                continue
            cost = _cost(run[start:end])
            if cost is not None and (best[end] is None or prev[0] + cost < best[end][0]):  # type: ignore[index]
                best[end] = (prev[0] + cost, start)
    if best[n] is None:
        return None
    words: list[str] = []
    end = n
    while end > 0:
        start = best[end][1]  # type: ignore[index]
        words.append(run[start:end])
        end = start
    return words[::-1]
