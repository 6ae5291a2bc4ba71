"""Text normalization before scoring, with a map back to the original text.

Attackers dodge keyword-heavy scorers by writing ``ｆｕｃｋ``, ``fսck`` (Armenian u), ``f\u200buck``,
``f u c k``, ``sh1t`` or ``fuuuuck``. ``normalize(text)`` undoes these, in order:

1. Unicode NFKC per character (full-width, mathematical and compatibility forms -> plain letters);
2. invisible characters removed (zero-width, bidi controls, soft hyphen, tags, other Cf/Cc),
   combining marks stripped (``fück`` -> ``fuck``; zalgo text), unusual spaces -> ``" "``;
3. homoglyphs folded to Latin with the vendored table in ``confusables.py``;
4. case folded;
5. spaced-out letters joined (``f u c k``, ``f.u.c.k``, ``f-u-c-k``; a double gap ends a word);
6. leetspeak folded inside words that also hold letters (``sh1t``, ``$hit``, ``@ss``; plain
   numbers such as ``2024`` are kept, unless the text is written in leetspeak: ``y0u 455``);
7. runs of three or more identical letters collapsed to one (``fuuuuck`` -> ``fuck``).

Every output character remembers the span of original characters it came from, so a span found
on the normalized text (a flagged word) maps back to the original text for redaction:
``NormalizedText.to_original(start, end)``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache

from audit.guard.confusables import fold_confusable
from audit.guard.lexicon import OFFENSIVE_WORDS

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
_LEET_SYMBOLS_NOT_AT_END = frozenset("!|+")
# Invisible code points that are not in category Cf/Cc but still render as nothing.
_INVISIBLE_EXTRA = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_SPACED_SEP = r"(?:[ ._\-*~·•/]|\t)"
_SPACED_RUN = re.compile(rf"(?<![^\W_])[^\W_](?:{_SPACED_SEP}[^\W_](?![^\W_])){{2,}}")
_LEET_TOKEN = re.compile(r"(?:[^\W_]|[@$!|+])+")
_LEXICON_BY_LENGTH = sorted(set(OFFENSIVE_WORDS), key=len, reverse=True)
_ARTICLE_HINT = re.compile(r"(?:^|\s)\S\s+\S[\s._\-*~·•/]+\S")
_REPEATS = re.compile(r"([^\W\d_])\1{2,}")
_SPACES = re.compile(r"[ \t]{2,}")


@dataclass(frozen=True)
class NormalizeOptions:
    """Which steps to run; all on by default."""

    nfkc: bool = True
    invisible: bool = True
    diacritics: bool = True
    confusables: bool = True
    casefold: bool = True
    spacing: bool = True
    leetspeak: bool = True
    repeats: bool = True
    # Spaced-out text loses its word boundaries: "you are a f u c k i n g i d i o t" joins into
    # "afuckingidiot". The default reading keeps the run whole; ``segment_spaced`` keeps a leading
    # single "a"/"i" apart and splits out known offensive words (``lexicon.py``) so the scorer
    # sees them. Scoring looks at both readings (``variants``).
    segment_spaced: bool = False


@dataclass
class NormalizedText:
    """``text`` plus, for each of its characters, the ``[start, end)`` span in ``original``."""

    original: str
    text: str
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a span of ``text`` to the span of ``original`` it was made from."""
        if not self.text or end <= start:
            return (0, 0) if not self.starts else (self.starts[min(start, len(self.starts) - 1)],) * 2
        start = max(0, min(start, len(self.text) - 1))
        end = max(start + 1, min(end, len(self.text)))
        return self.starts[start], self.ends[end - 1]


class _Chars:
    """A mutable list of (character, original start, original end), with its text kept current."""

    def __init__(self, items: list[tuple[str, int, int]]) -> None:
        self.items = items
        self.text = "".join(c for c, _, _ in items)

    def replace_matches(self, pattern: re.Pattern[str], fn) -> None:  # type: ignore[no-untyped-def]
        """Replace each match with ``fn(match_text, pieces)``; the new characters carry their
        own spans. ``fn`` returns ``pieces`` itself to leave a match unchanged (no copy made)."""
        text = self.text
        out: list[tuple[str, int, int]] = []
        out_text: list[str] = []
        pos = 0
        for m in pattern.finditer(text):
            pieces = self.items[m.start() : m.end()]
            new = fn(m.group(0), pieces)
            if new is pieces:
                continue
            out.extend(self.items[pos : m.start()])
            out.extend(new)
            out_text.append(text[pos : m.start()])
            out_text.append("".join(c for c, _, _ in new))
            pos = m.end()
        if out_text:
            out.extend(self.items[pos:])
            out_text.append(text[pos:])
            self.items = out
            self.text = "".join(out_text)


def _per_char(items: Iterable[tuple[str, int, int]], fn) -> list[tuple[str, int, int]]:  # type: ignore[no-untyped-def]
    out: list[tuple[str, int, int]] = []
    for ch, s, e in items:
        for new in fn(ch):
            out.append((new, s, e))
    return out


def _is_invisible(ch: str) -> bool:
    if ch in "\n\t":
        return False
    return unicodedata.category(ch) in ("Cf", "Cc", "Co", "Cs", "Cn") or ch in _INVISIBLE_EXTRA


def _segment(letters: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Put spaces around known offensive words inside a joined run (longest match first)."""
    run = "".join(c for c, _, _ in letters).casefold()
    out: list[tuple[str, int, int]] = []
    i = 0
    while i < len(run):
        word = next((w for w in _LEXICON_BY_LENGTH if run.startswith(w, i)), None)
        if word is None:
            out.append(letters[i])
            i += 1
            continue
        if out and out[-1][0] != " ":
            out.append((" ", letters[i][1], letters[i][1]))
        out.extend(letters[i : i + len(word)])
        i += len(word)
        if i < len(run):
            out.append((" ", letters[i][1], letters[i][1]))
    return out


@lru_cache(maxsize=1 << 16)
def _fold_char(ch: str, nfkc: bool, invisible: bool, diacritics: bool, confusables: bool, casefold: bool) -> str:
    """Steps 1-4 for one original character (all per-character, so they compose here)."""
    out = []
    for c in unicodedata.normalize("NFKC", ch) if nfkc else ch:
        if invisible:
            if _is_invisible(c):
                continue
            if unicodedata.category(c) == "Zs":
                c = " "
        if diacritics:
            c = "".join(x for x in unicodedata.normalize("NFD", c) if unicodedata.category(x) != "Mn")
        for d in c:
            if confusables:
                d = fold_confusable(d)
            out.append(d.casefold() if casefold else d)
    return "".join(out)


def _join_spaced(
    match_text: str, pieces: list[tuple[str, int, int]], segment: bool = False
) -> list[tuple[str, int, int]]:
    letters = [p for p in pieces if p[0].isalnum()]
    if sum(1 for p in letters if p[0].isalpha()) < 2:
        return pieces
    if not segment:
        return letters
    if letters[0][0] in "ai" and pieces[1][0].isspace() and len(letters) >= 4:
        return [letters[0], pieces[1], *_segment(letters[1:])]
    return _segment(letters)


def _is_mixed_leet(token: str) -> bool:
    return any(c.isalpha() for c in token) and any(c in LEET for c in token)


def _fold_leet(
    token: str, pieces: list[tuple[str, int, int]], digits_too: bool = False
) -> list[tuple[str, int, int]]:
    if token.isalpha():
        return pieces
    if not _is_mixed_leet(token) and not (
        digits_too and token.isdigit() and all(c in LEET for c in token)
    ):
        return pieces
    keep_from = len(pieces)  # trailing "!", "|", "+" are punctuation, not letters
    while keep_from > 0 and pieces[keep_from - 1][0] in _LEET_SYMBOLS_NOT_AT_END:
        keep_from -= 1
    return [
        (LEET[ch], s, e) if ch in LEET and i < keep_from else (ch, s, e)
        for i, (ch, s, e) in enumerate(pieces)
    ]


def _collapse_repeats(match_text: str, pieces: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    return [(pieces[0][0], pieces[0][1], pieces[-1][2])]


def _collapse_spaces(match_text: str, pieces: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    return [(" ", pieces[0][1], pieces[-1][2])]


def normalize(text: str, options: NormalizeOptions | None = None) -> NormalizedText:
    """Normalize ``text`` for scoring; see the module docstring for the steps."""
    opts = options or NormalizeOptions()
    flags = (opts.nfkc, opts.invisible, opts.diacritics, opts.confusables, opts.casefold)
    if text.isascii() and opts.invisible:  # fast path: steps 1-4 reduce to dropping controls, lowercasing
        lower = text.lower() if opts.casefold else text
        items = [(c, i, i + 1) for i, c in enumerate(lower) if " " <= c < "\x7f" or c in "\n\t"]
    else:
        items = [(c, i, i + 1) for i, ch in enumerate(text) for c in _fold_char(ch, *flags)]
    chars = _Chars(items)
    if opts.spacing:
        chars.replace_matches(
            _SPACED_RUN, lambda t, p: _join_spaced(t, p, segment=opts.segment_spaced)
        )
    if opts.leetspeak:
        # In a text written in leetspeak (two or more mixed words such as "y0u", "h4te"), an
        # all-digit word made of leet digits is leet too ("455" -> "ass"); elsewhere numbers stay.
        leet_text = (
            sum(1 for m in _LEET_TOKEN.finditer(chars.text) if not m.group(0).isalpha() and _is_mixed_leet(m.group(0)))
            >= 2
        )
        chars.replace_matches(_LEET_TOKEN, lambda t, p: _fold_leet(t, p, digits_too=leet_text))
    if opts.repeats:
        chars.replace_matches(_REPEATS, _collapse_repeats)
    chars.replace_matches(_SPACES, _collapse_spaces)
    items = chars.items
    return NormalizedText(
        original=text,
        text=chars.text,
        starts=[s for _, s, _ in items],
        ends=[e for _, _, e in items],
    )


def variants(text: str, options: NormalizeOptions | None = None) -> list[NormalizedText]:
    """The normalized text, plus the segmented reading of spaced-out runs when that differs
    (see ``NormalizeOptions.segment_spaced``)."""
    opts = options or NormalizeOptions()
    first = normalize(text, opts)
    if not opts.spacing or not _ARTICLE_HINT.search(text):
        return [first]
    second = normalize(text, replace(opts, segment_spaced=True))
    return [first] if second.text == first.text else [first, second]


def drop_terms(norm: NormalizedText, terms: Iterable[str]) -> NormalizedText:
    """Remove whole-word occurrences of ``terms`` (already normalized, lowercase) from the
    normalized text, keeping the map to the original. Used to neutralize benign identity terms
    ("gay", "muslim") that keyword-heavy toxicity scorers over-flag."""
    words = sorted({t.strip() for t in terms if t and t.strip()}, key=len, reverse=True)
    if not words or not norm.text:
        return norm
    pattern = re.compile(r"(?<![^\W_])(?:" + "|".join(re.escape(w) for w in words) + r")(?![^\W_])")
    chars = _Chars(list(zip(norm.text, norm.starts, norm.ends, strict=True)))
    chars.replace_matches(pattern, lambda _t, _p: [])
    chars.replace_matches(_SPACES, _collapse_spaces)
    items = chars.items
    return NormalizedText(
        original=norm.original,
        text="".join(c for c, _, _ in items),
        starts=[s for _, s, _ in items],
        ends=[e for _, _, e in items],
    )
