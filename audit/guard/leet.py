"""Leetspeak folded back to letters (normalization step 7), without reading identifiers as leet.

``sh1t``, ``$hit``, ``@ss`` and ``1d10t`` are words with letters swapped for look-alike digits and
symbols; ``v1.2.3``, ``python3.11``, ``x86_64``, ``h264``, ``ipv4``, ``mp3`` and ``covid-19`` are
not. A token (letters, digits and the symbols ``@$!|+``) is folded when:

- it holds a look-alike symbol, or a look-alike digit with letters on both sides or digits on
  both sides of letters (``sh1t``, ``1d10t``, ``4r3``, ``$hit``): *leet-shaped*;
- it is one run of letters and one run of digits (``mp3``, ``h264``, ``3d``, ``d13``, ``4nd``),
  the shape of identifiers, versions and units, only when folding gives a word of three letters or
  more that is a common English word or an offensive one (``4nd`` -> and, ``d13`` -> die);
- in a text written in leetspeak (two or more tokens of the two kinds above: ``y0u 4r3 4 455``),
  every token that holds letters and look-alike digits, and numbers made only of look-alike digits
  (``455`` -> ass; ``4`` -> a);
- never: numbers with a decimal point, version strings and times (``1.2.3``, ``v1.2.3``,
  ``python3.11``, ``3.14``, ``9:30``, ``1,000``), and plain numbers outside leet text (``2024``);
  amounts (``US$100``) fold only in leet text.

Trailing ``!``, ``|`` and ``+`` stay punctuation (``shit!``). Limits: numeronyms such as ``k8s``
and ``i18n`` are leet-shaped and fold; ``a55`` alone (a number-like shape) stays.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from audit.guard.lexicon import OFFENSIVE_WORDS
from audit.text.deobfuscate import COMMON_WORDS

LEET: dict[str, str] = {
    "0": "o",
    "1": "i",
    "3": "e",
    "4": "a",
    "5": "s",
    "6": "g",
    "7": "t",
    "8": "b",
    "9": "g",
    "@": "a",
    "$": "s",
    "!": "i",
    "|": "l",
    "+": "t",
}
_SYMBOLS_NOT_AT_END = frozenset("!|+")
# a number or version string with its dots first (never folded), else a token of letters, digits
# and look-alike symbols
TOKEN = re.compile(r"[^\W_]*\d(?:[.:,]\d+)+(?![^\W_])|(?:[^\W_]|[@$!|+])+")
_IDENTIFIER = re.compile(r"[^\W\d_]+\d+|\d+[^\W\d_]+")  # one run of letters, one of digits
_CURRENCY = re.compile(r"\$\d")
_WORDS = COMMON_WORDS | frozenset(OFFENSIVE_WORDS) | {"ass", "arse"}
Pieces = list[tuple[str, int, int]]


def _mixed(token: str) -> bool:
    return any(c.isalpha() for c in token) and any(c in LEET for c in token)


def _number(token: str) -> bool:
    return any(c in ".:," for c in token)


def _as_letters(token: str) -> str:
    return "".join(LEET.get(c, c) for c in token)


def kind(token: str) -> str | None:
    """``"leet"`` for a leet-shaped token or an identifier-shaped one that folds to a word,
    ``"identifier"`` for other identifier-shaped tokens with look-alike digits, else None."""
    token = token.rstrip("!|+")  # trailing ones are punctuation ("wow!")
    if token.isalpha() or _number(token) or not _mixed(token):
        return None
    if "$" in token and _CURRENCY.search(token):  # "us$100" is money
        return "identifier"
    if _IDENTIFIER.fullmatch(token) and not any(c in "@$!|+" for c in token):
        folded = _as_letters(token)
        return "leet" if len(folded) >= 3 and folded in _WORDS else "identifier"
    return "leet"


def written_in_leet(text: str) -> bool:
    """Whether ``text`` is written in leetspeak: two or more leet tokens (see ``kind``)."""
    return sum(1 for m in TOKEN.finditer(text) if kind(m.group(0)) == "leet") >= 2


def fold(token: str, pieces: Pieces, leet_text: bool) -> Pieces:
    """``pieces`` (the token's characters with their original spans) with leet folded back, or
    ``pieces`` itself when the token stays as written."""
    k = kind(token)
    if k is None and not (leet_text and token.isdigit() and all(c in LEET for c in token)):
        return pieces
    if k == "identifier" and not leet_text:
        return pieces
    keep_from = len(pieces)  # trailing "!", "|", "+" are punctuation, not letters
    while keep_from > 0 and pieces[keep_from - 1][0] in _SYMBOLS_NOT_AT_END:
        keep_from -= 1
    return [(LEET[ch], s, e) if ch in LEET and i < keep_from else (ch, s, e) for i, (ch, s, e) in enumerate(pieces)]


def folder(text: str) -> Callable[[str, Pieces], Pieces]:
    """The fold for each ``TOKEN`` match of ``text`` (which knows whether the text is leet)."""
    leet_text = written_in_leet(text)

    def fold_token(token: str, pieces: Pieces) -> Pieces:
        return fold(token, pieces, leet_text)

    return fold_token
