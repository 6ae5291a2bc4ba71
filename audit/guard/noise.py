"""Offensive words restored in noisy text (Best-of-N character noise).

Best-of-N noise (``audit.attacks.noise``) flips case, shuffles the middle letters of words
(``iodit``) and moves a few characters one code point up or down (``jdiot``, ``r`t``). A person
still reads the word; a bag-of-words scorer does not. ``unscrambled(norm)`` replaces each word of
normalized (case-folded) text that is one of these distortions of a word in the offensive lexicon
(``lexicon.py``):

- the same first and last letter and the same middle letters in another order (4+ letters);
- that with one letter moved by one code point (``rbt`` -> rat, ``dje`` -> die, ``ijiotic``), or
  with two letters moved in words of seven letters or more (``ijiotcc`` -> idiotic), but only when
  the noisy word is no English word itself and no other English word explains it as well: one
  lexicon word and nothing else lies within the same moves. "English word" means a word GPT-2's
  vocabulary holds as a whole token after a space (``audit.text.words``, about 24,600 words): ``sat`` stays (not rat), ``lane`` stays (not lame), ``thit``
  stays (it may be "this" as well as "shit"), while ``rbt`` and ``dje`` are no words and nothing
  but rat and die explains them.

Only lexicon words are restored, so the reading can only add an offensive word where one was
distorted; the normalizer offers it as one more reading (``normalize.variants``) and the checker
keeps the worst score. ``restorations(text)`` lists what to replace; the normalizer asks only for
text that ``looks_noised`` (case flipped inside words, Best-of-N's mark), and only on its first
reading.

Limits: three or more moved letters, or two in a word under seven letters, still pass; words
outside the lexicon are not restored; a distortion that happens to be an English word or one
move from one (``lane`` from lame, ``thit`` from shit) is left as written; a rare benign word
missing from GPT-2's vocabulary can still be read as a lexicon word one move away.
"""

from __future__ import annotations

import re
from functools import cache
from itertools import combinations

from audit.guard.lexicon import OFFENSIVE_WORDS
from audit.text.words import english_words

_WORD = re.compile(r"[a-z][a-z`{]+[a-z]")  # "`" and "{" are a and z moved by one code point
_MOVED_OFF_THE_ALPHABET = str.maketrans({"`": "a", "{": "z"})
_LEXICON = frozenset(OFFENSIVE_WORDS)
MIN_ANAGRAM = 4  # a 3-letter word has one middle letter: nothing to shuffle
MIN_TWO_MOVED = 7  # two moved letters in a shorter word reach too many other words


def _key(word: str) -> tuple[str, str, str, int]:
    return (word[0], word[-1], "".join(sorted(word[1:-1])), len(word))


@cache
def _index() -> dict[tuple[str, str, str, int], str]:
    return {_key(w): w for w in sorted(_LEXICON) if len(w) >= 3 and w.isalpha()}


def _moved(word: str, positions: tuple[int, ...]) -> list[str]:
    """``word`` with the letters at ``positions`` each moved one code point up or down."""
    out = [word]
    for i in positions:
        nxt = []
        for w in out:
            for d in (-1, 1):
                o = chr(ord(w[i]) + d)
                if "a" <= o <= "z":
                    nxt.append(w[:i] + o + w[i + 1 :])
        out = nxt
    return out


@cache
def _english_keys() -> frozenset[tuple[str, str, str, int]]:
    """The keys of English words that are not in the lexicon: what else a noisy word could be."""
    return frozenset(_key(w) for w in english_words() - _LEXICON if len(w) >= 3)


@cache
def _english_index() -> dict[tuple[str, str, str, int], str | None]:
    """English words (4+ letters) by key; None where two words share a key (``form``, ``from``)."""
    index: dict[tuple[str, str, str, int], str | None] = {}
    for w in english_words():
        if len(w) >= MIN_ANAGRAM:
            k = _key(w)
            index[k] = None if k in index else w
    return index


def unscrambled(word: str) -> str | None:
    """The one English word ``word`` (not one itself) is a reordering of, keeping its first and
    last letter (``mqiostuo`` -> mosquito), else None: context for the restored lexicon words."""
    if len(word) < MIN_ANAGRAM or word in english_words():
        return None
    return _english_index().get(_key(word))


def restore(word: str) -> str | None:
    """The lexicon word ``word`` (lower case) is a scrambled or letter-moved form of, else None.

    A moved letter is undone only when that explains ``word`` by exactly one lexicon word and no
    other English word: ``thit`` could be "this" as well as "shit", and stays as written."""
    index = _index()
    if len(word) >= MIN_ANAGRAM and (hit := index.get(_key(word))) is not None:
        return hit if hit != word else None
    if not english_words() or word in english_words():
        return None
    most = 2 if len(word) >= MIN_TWO_MOVED else 1
    keys = {
        _key(moved)
        for k in range(1, most + 1)
        for positions in combinations(range(len(word)), k)
        for moved in _moved(word, positions)
    }
    hits = {index[k] for k in keys if k in index}
    if len(hits) != 1 or not keys.isdisjoint(_english_keys()):
        return None
    return hits.pop()


_CASED = re.compile(r"[^\W\d_]{3,}")


def looks_noised(original: str) -> bool:
    """Whether ``original`` carries Best-of-N's mark: case flipped inside words (``aRE``,
    ``FuckiNG``) in at least 2 words and a quarter of them. Ordinary text (``iPhone``, ``McDonald``,
    ``NASA``) stays below that."""
    words = _CASED.findall(original)
    mixed = sum(1 for w in words if not (w.islower() or w.isupper() or w.istitle()))
    return mixed >= 2 and mixed >= 0.25 * len(words)


def restorations(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, word)`` for each distorted lexicon word of normalized ``text``, and, when
    there is one, for each other word that is a reordered English word (the lexicon word's context,
    as a person reads it: "how do i kill a mosquito", not "kill a mqiostuo")."""
    found, context = [], []
    for m in _WORD.finditer(text):
        word = m.group(0).translate(_MOVED_OFF_THE_ALPHABET)
        if word in _LEXICON:
            if word != m.group(0):
                found.append((m.start(), m.end(), word))
            continue
        if (hit := restore(word)) is not None:
            found.append((m.start(), m.end(), hit))
        elif (plain := unscrambled(word)) is not None:
            context.append((m.start(), m.end(), plain))
    return sorted(found + context) if found else []
