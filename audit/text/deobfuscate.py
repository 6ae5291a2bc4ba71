"""Undoing display tricks in untrusted text before it is scored.

Three obfuscations change what a scorer reads but not what a person sees or understands:

- **Right-to-left overrides.** ``"\\u202etoidi na era uoy\\u202c"`` displays as "you are an idiot":
  U+202E (RLO) makes the characters after it display right to left. ``visual_order`` gives the
  order a reader sees (explicit overrides and embeddings, nested; a line break ends them all).
  Genuine right-to-left scripts (Hebrew, Arabic) are left in their logical order: only the
  override reverses Latin letters, and only an override is undone.
- **Interleaving.** ``"i·d·i·o·t"``, ``"y-o-u a-r-e"``, ``"i😀d😀i😀o😀t"``: a symbol between every letter
  of a word. ``interleaved_gaps`` finds the separators of words spelled letter by letter (all
  their letters single, at least two gaps; two-letter words only in a text that has a longer
  interleaved word) and emoji between two letters anywhere; removing them joins the word again.
  Ordinary punctuation stays: ``e-mail``, ``well-known``, ``9:30``, ``rock'n'roll``, ``v1.2.3``.
- **Invisible characters** (zero-width space and joiners, bidi controls, soft hyphen, tags):
  removed (category Cf and a few fillers).

``deobfuscate(text)`` applies all three and returns plain text; it returns ``text`` itself when
there is nothing to undo, so scores of ordinary text do not change. The filter's normalizer
(``audit.guard.normalize``) runs the same steps on text that keeps a map back to the original.

- **Backwards writing** (``toidi na era uoy``, no control character): ``reads_reversed`` tells
  whether a line reads better backwards, by counting common English words both ways (a reading
  that only costs a second score: it blocks nothing unless the backwards text is itself toxic). It is not
  applied by ``deobfuscate`` (such a line also displays backwards); the filter's normalizer
  scores the forward reading as a second reading.

Limits: English function words only for backwards writing. Symbols
between whole words (``you😀are``) become a space, not a join.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from functools import lru_cache

from audit.text.words import english_words

RLO, LRO, RLE, LRE, PDF = "\u202e", "\u202d", "\u202b", "\u202a", "\u202c"
LRI, RLI, FSI, PDI = "\u2066", "\u2067", "\u2068", "\u2069"
_OPENERS = frozenset((RLO, LRO, RLE, LRE, LRI, RLI, FSI))
_ISOLATES = frozenset((LRI, RLI, FSI))
_PARAGRAPH = frozenset("\n\r\u2029\u0085\x1c\x1d\x1e")
_INVISIBLE_EXTRA = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_APOSTROPHES = frozenset("'\u2019\u02bc\u2018`")


def is_invisible(ch: str) -> bool:
    """Characters that render as nothing: format and control characters (not newline or tab),
    private-use, unassigned, and a few blank fillers (Hangul filler, braille blank)."""
    if ch in "\n\t":
        return False
    return unicodedata.category(ch) in ("Cf", "Cc", "Co", "Cs", "Cn") or ch in _INVISIBLE_EXTRA


_HIDDEN_FORMAT = re.compile(
    "[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]"
)


def is_hidden_format(ch: str) -> bool:
    """The invisible characters used to split words: soft hyphen, zero-width space, joiners and
    marks, bidi controls, word joiner and invisible operators, BOM, tag characters."""
    return _HIDDEN_FORMAT.match(ch) is not None


# ---------------------------------------------------------------------- bidi overrides


def visual_order(text: str) -> list[int] | None:
    """Indices of ``text`` in the left-to-right order a reader sees them, or ``None`` when no
    right-to-left override (U+202E) is present (the order is then the logical one).

    A simplified bidi algorithm for explicit controls: an RLO run displays its parts in reverse
    order; a run nested inside it (an LRO, an embedding or an isolate) keeps its own inner order
    and moves as one block, and a nested RLO is reversed again inside its block. PDF closes the
    innermost override or embedding, PDI the innermost isolate (and what it holds), a line
    break closes everything.
    """
    if RLO not in text:
        return None
    root: list = []
    stack: list[tuple[str, list]] = [("", root)]
    for i, ch in enumerate(text):
        if ch in _OPENERS:
            node: list = [i]
            stack[-1][1].append((ch, node))
            stack.append((ch, node))
        elif ch == PDF and len(stack) > 1 and stack[-1][0] not in _ISOLATES:
            stack[-1][1].append(i)
            stack.pop()
        elif ch == PDI and any(kind in _ISOLATES for kind, _ in stack[1:]):
            while stack[-1][0] not in _ISOLATES:
                stack.pop()
            stack[-1][1].append(i)
            stack.pop()
        elif ch in _PARAGRAPH:
            del stack[1:]
            root.append(i)
        else:
            stack[-1][1].append(i)
    out: list[int] = []
    _flatten("", root, out)
    return out


def _flatten(kind: str, children: list, out: list[int]) -> None:
    parts = reversed(children) if kind == RLO else children
    for child in parts:
        if isinstance(child, int):
            out.append(child)
        else:
            _flatten(child[0], child[1], out)


# ---------------------------------------------------------------------- interleaving


_PICTOGRAPH_RANGES = (
    (0x2190, 0x21FF),
    (0x2300, 0x23FF),
    (0x2460, 0x27BF),
    (0x2900, 0x2BFF),
    (0x1F000, 0x1FAFF),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3299),
)


@lru_cache(maxsize=4096)
def is_emoji_like(ch: str) -> bool:
    """Pictographs (emoji, dingbats, arrows, shapes) and their modifiers (skin tones, variation
    selectors, the keycap mark): never part of a word. Not U+FFFD, the replacement character."""
    cp = ord(ch)
    if 0xFE00 <= cp <= 0xFE0F or cp == 0x20E3 or cp == 0x200D:
        return True
    return unicodedata.category(ch) in ("So", "Sk") and any(a <= cp <= b for a, b in _PICTOGRAPH_RANGES)


def _strip_apostrophes(gap: str) -> str:
    return "".join(c for c in gap if c not in _APOSTROPHES)


def _is_punct_gap(gap: str) -> bool:
    return all(
        c not in _APOSTROPHES
        and c != "\ufffd"
        and unicodedata.category(c)[0] in "PS"
        and not is_emoji_like(c)
        for c in gap
    )


def _is_emoji_gap(gap: str) -> bool:
    return any(is_emoji_like(c) for c in gap) and all(is_emoji_like(c) or is_invisible(c) for c in gap)


_WORD = re.compile(r"\S+")
_LETTER_GAP_LETTER = re.compile(r"[^\W_][\W_]+[^\W_]")  # a word with something between two letters
# quick tests on the whole text: a single letter between symbols (the ``·d·`` of ``i·d·i``), or
# an emoji between two letters; text with neither has nothing to join
_THREE_SPELLED = re.compile(r"(?:[^\w\s]|_)[^\W_](?:[^\w\s]|_)")  # a single letter between symbols
_PICTOGRAPH_CLASS = (
    "\u200d\u20e3\u2190-\u21ff\u2300-\u23ff\u2460-\u27bf\u2900-\u2bff\u3030\u303d\u3297-\u3299"
    "\ufe00-\ufe0f\U0001f000-\U0001faff"
)
_EMOJI_BETWEEN = re.compile(f"[^\\W_][{_PICTOGRAPH_CLASS}]+[^\\W_]")


def _pieces(word: str) -> list[tuple[int, int, bool]]:
    """Split a word into (start, end, is_letters) runs."""
    out: list[tuple[int, int, bool]] = []
    for j, ch in enumerate(word):
        letter = ch.isalnum()
        if out and out[-1][2] == letter:
            out[-1] = (out[-1][0], j + 1, letter)
        else:
            out.append((j, j + 1, letter))
    return out


def _edge_separator(piece: str, sep: str, emoji: bool, at_end: bool) -> int:
    """How many characters of ``piece`` (punctuation before or after an interleaved word) are the
    word's separator, left there by a transform that interleaves every character."""
    if emoji:
        chars = piece[::-1] if at_end else piece
        return next((i for i, c in enumerate(chars) if not (is_emoji_like(c) or is_invisible(c))), len(piece))
    if at_end:
        return len(sep) if piece.endswith(sep) else 0
    return len(sep) if piece.startswith(sep) else 0


def interleaved_gaps(text: str, keep_acronyms: bool = True) -> list[tuple[int, int, str]]:
    """``(start, end, replacement)`` for every separator to remove (``""``) or to turn into a word
    gap (``" "``: emoji between multi-letter words). A word is spelled letter by letter when all
    its letters are single, at least two of them alphabetic, and its inner gaps are all emoji or
    all the same punctuation (at most 3 characters each); two-letter words count only in a text
    that also has a longer one. ``keep_acronyms`` leaves dotted capitals of up to 3 letters
    (``U.S.A.``, ``J.R.R.``) alone."""
    if not _THREE_SPELLED.search(text) and (text.isascii() or not _EMOJI_BETWEEN.search(text)):
        return []
    found: list[tuple[int, int, str, int]] = []  # (start, end, replacement, letters in the word)
    longest = 0
    for m in _WORD.finditer(text):
        word = m.group(0)
        if word.isalnum() or not _LETTER_GAP_LETTER.search(word):
            continue
        pieces = _pieces(word)
        letters = [p for p in pieces if p[2]]
        inner = [p for p in pieces[1:-1] if not p[2]]
        if len(letters) < 2 or not inner:
            continue
        gaps = [word[s:e] for s, e, _ in inner]
        cores = [_strip_apostrophes(g) for g in gaps]
        single = all(e - s == 1 for s, e, _ in letters)
        alpha = "".join(word[s] for s, _, _ in letters if word[s].isalpha())
        emoji = all(c and _is_emoji_gap(c) for c in cores)
        punct = (
            len({frozenset(c) for c in cores}) == 1
            and all(0 < len(c) <= 3 for c in cores)
            and _is_punct_gap(cores[0])
        )
        acronym = keep_acronyms and cores[0] == "." and alpha.isupper() and len(letters) <= 3
        if single and len(alpha) >= 2 and (emoji or (punct and not acronym)):
            found += [
                (m.start() + s, m.start() + e, "".join(c for c in g if c in _APOSTROPHES), len(letters))
                for (s, e, _), g in zip(inner, gaps, strict=True)
            ]
            n = len(letters)
            for edge, (s, e, is_letters) in ((0, pieces[0]), (1, pieces[-1])):  # "jerk_." -> "jerk."
                if is_letters:
                    continue
                cut = _edge_separator(word[s:e], cores[0], emoji, at_end=edge == 0)
                if cut:
                    found.append(
                        (
                            m.start() + (e - cut if edge == 0 else s),
                            m.start() + (e if edge == 0 else s + cut),
                            "",
                            n,
                        )
                    )
            longest = max(longest, n)
            continue
        for s, e, _ in inner:  # emoji between multi-letter runs: a word gap
            if _is_emoji_gap(word[s:e]):
                found.append((m.start() + s, m.start() + e, " ", 99))
    return sorted((s, e, r) for s, e, r, n in found if n >= 3 or (n == 2 and longest >= 3))


# ---------------------------------------------------------------------- backwards writing

_COMMON_WORDS = """
the be to of and in that have it for not on with he as you do at this but his by from they we say
her she or an will my one all would there their what so up out if about who get which go me when
make can like time no just him know take people into year your good some could them see other than
then now look only come its over think also back after use two how our work first well way even new
want because any these give day most us is are was were am been has had did does said i'm you're
don't can't won't it's that's should never ever here very much more off why too ok yes hey please
thank thanks got going gonna
"""
COMMON_WORDS = frozenset(_COMMON_WORDS.split())
"""About 200 common English words (function words, everyday verbs): what tells text that reads."""
_LETTERS = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def reads_reversed(line: str, known: frozenset[str] = frozenset()) -> bool:
    """Whether ``line`` reads better backwards: more words of two letters or more are common
    English words (or in ``known``, e.g. an offensive-word lexicon) backwards than forwards."""
    words = [w for w in _LETTERS.findall(line.casefold()) if len(w) > 1]
    if not words:
        return False
    forward = sum(w in COMMON_WORDS or w in known for w in words)
    backward = sum(w[::-1] in COMMON_WORDS or w[::-1] in known for w in words)
    return backward > forward


# ---------------------------------------------------------------------- encodings

_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{12,}={0,2}(?![A-Za-z0-9+/=])")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def _english_hits(text: str, known: frozenset[str]) -> tuple[int, int]:
    words = [w for w in _LETTERS.findall(text.casefold()) if len(w) > 1]
    return sum(w in COMMON_WORDS or w in known for w in words), len(words)


def reads_as_english(text: str, known: frozenset[str] = frozenset()) -> bool:
    """Whether ``text`` reads as written: it holds a ``known`` word (e.g. the offensive lexicon),
    or at least 1 in 5 of its words are common English words. ROT13 or base64 gibberish does not."""
    hits, n = _english_hits(text, frozenset())
    if any(w in known for w in _LETTERS.findall(text.casefold())):
        return True
    return n > 0 and hits >= 0.2 * n


def _caesar(text: str, shift: int) -> str:
    rot = _ALPHABET[shift:] + _ALPHABET[:shift]
    return text.translate(str.maketrans(_ALPHABET + _ALPHABET.upper(), rot + rot.upper()))


def _base64_decoded(text: str) -> str | None:
    changed = False

    def decode(m: re.Match[str]) -> str:
        nonlocal changed
        run = m.group(0)
        try:
            plain = base64.b64decode(run + "=" * (-len(run) % 4), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return run
        if sum(c.isprintable() or c.isspace() for c in plain) < 0.95 * len(plain):
            return run
        changed = True
        return plain

    out = _BASE64_RUN.sub(decode, text)
    return out if changed else None


def _broad_hits(text: str, known: frozenset[str]) -> int:
    words = english_words()
    return sum(w in COMMON_WORDS or w in words or w in known for w in _LETTERS.findall(text.casefold()) if len(w) > 1)


def decoded_readings(text: str, known: frozenset[str] = frozenset()) -> list[str]:
    """Readings of ``text`` written in an encoding a model can read: base64 runs (12+ characters)
    decoded in place when they decode to readable UTF-8, and the Caesar shift (ROT13 is shift 13)
    under which the most of the text's words are English words (``audit.text.words``, common words
    and ``known`` words), when that is more than as written and either at least 3 and 6 in 10 of
    its words, or at least two and 3 in 10 common words. Only texts with few common English words
    as written are tried (under 1 in 5)."""
    out: list[str] = []
    if (b64 := _base64_decoded(text)) is not None:
        out.append(b64)
    hits, n = _english_hits(text, known)
    if n and hits < 0.2 * n:
        raw_broad = _broad_hits(text, known)
        best, best_score = None, (raw_broad, hits)
        for shift in range(1, 26):
            shifted = _caesar(text, shift)
            score = (_broad_hits(shifted, known), _english_hits(shifted, known)[0])
            if score > best_score:
                best, best_score = shifted, score
        broad, common = best_score
        if best is not None and (
            (broad > raw_broad and broad >= max(3, 0.6 * n)) or (common > hits and common >= max(2, 0.3 * n))
        ):
            out.append(best)
    return out


# ---------------------------------------------------------------------- plain text


def deobfuscate(text: str) -> str:
    """``text`` as a reader sees it, for scoring: overrides undone, invisible characters removed,
    interleaving symbols stripped. Ordinary text comes back unchanged (the same object)."""
    order = visual_order(text)
    out = "".join(text[i] for i in order) if order is not None else text
    if _HIDDEN_FORMAT.search(out):
        out = _HIDDEN_FORMAT.sub("", out)
    gaps = interleaved_gaps(out)
    if gaps:
        parts, pos = [], 0
        for s, e, r in gaps:
            parts += [out[pos:s], r]
            pos = e
        parts.append(out[pos:])
        out = "".join(parts)
    return text if out == text else out
