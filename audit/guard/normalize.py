"""Text normalization before scoring, with a map back to the original text.

Attackers dodge keyword-heavy scorers by writing ``ｆｕｃｋ``, ``fսck`` (Armenian u), ``f\u200buck``,
``f u c k``, ``sh1t`` or ``fuuuuck``. ``normalize(text)`` undoes these, in order:

0. right-to-left overrides undone: the characters are read in the order they display
   (``"\u202etoidi na era uoy"`` shows, and now reads, "you are an idiot");
1. Unicode NFKC per character (full-width, mathematical and compatibility forms -> plain letters);
2. invisible characters removed (zero-width, bidi controls, soft hyphen, tags, other Cf/Cc),
   combining marks stripped (``fück`` -> ``fuck``; zalgo text), unusual spaces -> ``" "``;
3. homoglyphs folded to Latin with the vendored table in ``confusables.py``;
4. case folded;
5. interleaving removed: a symbol or emoji between every letter of a word (``i·d·i·o·t``,
   ``y-o-u a-r-e``, ``i😀d😀i😀o😀t``) and emoji between letters (``you😀suck`` -> ``you suck``);
   ordinary punctuation stays (``e-mail``, ``9:30``, ``rock'n'roll``);
6. spaced-out letters joined (``f u c k``, ``f.u.c.k``, ``f-u-c-k``; a double gap ends a word);
7. leetspeak folded inside words that also hold letters (``sh1t``, ``$hit``, ``@ss``; plain
   numbers such as ``2024``, identifiers, versions and units such as ``mp3``, ``x86_64``,
   ``v1.2.3`` are kept, unless the text is written in leetspeak: ``y0u 455``; ``leet.py``);
8. runs of three or more identical letters collapsed to one (``fuuuuck`` -> ``fuck``).

``variants`` adds the other readings a checker should score too (the worst one counts): the
logical order of text behind an override (what a model reads), a line written backwards
(``toidi na era uoy``) read forwards, spaced-out runs split into words, and text written in
base64 or a Caesar shift (ROT13) decoded, and offensive words scrambled by character noise
restored (``noise.py``). Steps 0-2 and 5 are
``audit.text.deobfuscate``, shared with the scorers that read untrusted text directly.

Every output character remembers the span of original characters it came from, so a span found
on the normalized text (a flagged word) maps back to the original text for redaction:
``NormalizedText.to_original(start, end)``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from pydantic import BaseModel, ConfigDict

from audit.guard.confusables import fold_confusable
from audit.guard.leet import TOKEN as LEET_TOKEN
from audit.guard.leet import folder as leet_folder
from audit.guard.lexicon import OFFENSIVE_WORDS
from audit.guard.noise import looks_noised, restorations
from audit.guard.segment import english_split
from audit.text.deobfuscate import (
    decoded_readings,
    interleaved_gaps,
    is_invisible,
    reads_as_english,
    reads_reversed,
    visual_order,
)

_SPACED_SEP = r"(?:[ ._\-*~·•/]|\t)"
_SPACED_RUN = re.compile(rf"(?<![^\W_])[^\W_](?:{_SPACED_SEP}[^\W_](?![^\W_])){{2,}}")
_LEXICON = frozenset(OFFENSIVE_WORDS)
_LEXICON_BY_LENGTH = sorted(_LEXICON, key=len, reverse=True)
_ARTICLE_HINT = re.compile(r"(?:^|\s)\S\s+\S[\s._\-*~·•/]+\S")
_REPEATS = re.compile(r"([^\W\d_])\1{2,}")
_SPACES = re.compile(r"[ \t]{2,}")


class NormalizeOptions(BaseModel):
    """Which steps to run; all on by default. A policy's ``normalize:`` block is this object
    (``{enabled: false}`` turns normalization off, ``{leetspeak: false}`` one step)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    bidi: bool = True
    nfkc: bool = True
    invisible: bool = True
    diacritics: bool = True
    confusables: bool = True
    casefold: bool = True
    interleaving: bool = True
    spacing: bool = True
    leetspeak: bool = True
    repeats: bool = True
    reversed: bool = True
    decode: bool = True
    noise: bool = True


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
        if "\u202e" in self.original:  # characters reordered by an override: the span covers them all
            return min(self.starts[start:end]), max(self.ends[start:end])
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


def _english_words(letters: list[tuple[str, int, int]]) -> list[tuple[str, int, int]] | None:
    """A joined run cut into the English words a reader sees in it (``segment.py``), else None."""
    words = english_split("".join(c for c, _, _ in letters).casefold())
    if words is None:
        return None
    out: list[tuple[str, int, int]] = []
    i = 0
    for piece in words:
        if out:
            out.append((" ", letters[i][1], letters[i][1]))
        out.extend(letters[i : i + len(piece)])
        i += len(piece)
    return out


def _segment(letters: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Put spaces around known offensive words inside a joined run that words cannot cover
    (longest match first)."""
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
            if is_invisible(c):
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
    match_text: str, pieces: list[tuple[str, int, int]], segment: bool = False, article: bool = False
) -> list[tuple[str, int, int]]:
    letters = [p for p in pieces if p[0].isalnum()]
    if sum(1 for p in letters if p[0].isalpha()) < 2:
        return pieces
    if not segment:
        return letters
    # a leading "a"/"i" may be a word ("a p i e c e": a piece) or not ("a r r o g a n t"): the
    # ``article`` reading keeps it apart, the other lets the words decide
    apart = letters[0][0] in "ai" and pieces[1][0].isspace() and len(letters) >= 4
    if apart and article:
        return [letters[0], pieces[1], *(_english_words(letters[1:]) or _segment(letters[1:]))]
    if (words := _english_words(letters)) is not None:
        return words
    if apart:
        return [letters[0], pieces[1], *_segment(letters[1:])]
    return _segment(letters)


def _collapse_repeats(match_text: str, pieces: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    return [(pieces[0][0], pieces[0][1], pieces[-1][2])]


def _collapse_spaces(match_text: str, pieces: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    return [(" ", pieces[0][1], pieces[-1][2])]


def _remove_interleaving(chars: _Chars) -> None:
    gaps = interleaved_gaps(chars.text, keep_acronyms=False)
    if not gaps:
        return
    out: list[tuple[str, int, int]] = []
    pos = 0
    for start, end, repl in gaps:
        out.extend(chars.items[pos:start])
        if repl:
            out.append((repl, chars.items[start][1], chars.items[end - 1][2]))
        pos = end
    out.extend(chars.items[pos:])
    chars.items = out
    chars.text = "".join(c for c, _, _ in out)


def normalize(
    text: str,
    options: NormalizeOptions | None = None,
    *,
    segment_spaced: bool = False,
    article: bool = False,
    logical: bool = False,
) -> NormalizedText:
    """Normalize ``text`` for scoring; see the module docstring for the steps.

    ``segment_spaced``: split spaced-out runs into words (a second reading; ``variants``), with
    ``article`` a leading single "a" or "i" kept apart as a word (a third).
    ``logical``: keep the stored order of text behind right-to-left overrides (step 0 off)."""
    opts = options or NormalizeOptions()
    flags = (opts.nfkc, opts.invisible, opts.diacritics, opts.confusables, opts.casefold)
    order = visual_order(text) if opts.bidi and not logical else None
    if order is None and text.isascii() and opts.invisible:  # fast path: steps 1-4 reduce to dropping controls, lowercasing
        lower = text.lower() if opts.casefold else text
        items = [(c, i, i + 1) for i, c in enumerate(lower) if " " <= c < "\x7f" or c in "\n\t"]
    else:
        indices = range(len(text)) if order is None else order
        items = [(c, i, i + 1) for i in indices for c in _fold_char(text[i], *flags)]
    chars = _Chars(items)
    if opts.interleaving:
        _remove_interleaving(chars)
    if opts.spacing:
        chars.replace_matches(_SPACED_RUN, lambda t, p: _join_spaced(t, p, segment_spaced, article))
    if opts.leetspeak:  # identifiers and version strings stay unless the text is leet (leet.py)
        chars.replace_matches(LEET_TOKEN, leet_folder(chars.text))
    if opts.repeats:
        chars.replace_matches(_REPEATS, _collapse_repeats)
    chars.replace_matches(_SPACES, _collapse_spaces)
    return _from_items(text, chars.items)


def _from_items(original: str, items: list[tuple[str, int, int]]) -> NormalizedText:
    return NormalizedText(
        original=original,
        text="".join(c for c, _, _ in items),
        starts=[s for _, s, _ in items],
        ends=[e for _, _, e in items],
    )


def _restored(norm: NormalizedText) -> NormalizedText | None:
    """``norm`` with scrambled offensive words restored (``noise.py``); None when none is."""
    found = restorations(norm.text)
    if not found:
        return None
    text, starts, ends = list(norm.text), list(norm.starts), list(norm.ends)
    for a, b, word in found:  # same length: each letter maps to the whole original word
        text[a:b] = word
        starts[a:b], ends[a:b] = [min(starts[a:b])] * len(word), [max(ends[a:b])] * len(word)
    return NormalizedText(original=norm.original, text="".join(text), starts=starts, ends=ends)


def _whole_span(original: str, norm: NormalizedText) -> NormalizedText:
    """A reading decoded from ``original`` (base64, a Caesar shift): each character maps to the
    whole original text, since decoding does not keep character positions."""
    n = len(norm.text)
    return NormalizedText(original=original, text=norm.text, starts=[0] * n, ends=[len(original)] * n)


def reversed_lines(norm: NormalizedText) -> NormalizedText | None:
    """``norm`` with each line that reads backwards (``toidi na era uoy``) turned around, keeping
    the map to the original; ``None`` when no line does."""
    lines = norm.text.split("\n")
    backwards = [reads_reversed(line, _LEXICON) for line in lines]
    if not any(backwards):
        return None
    items = list(zip(norm.text, norm.starts, norm.ends, strict=True))
    out: list[tuple[str, int, int]] = []
    start = 0
    for line, flip in zip(lines, backwards, strict=True):
        piece = items[start : start + len(line)]
        out.extend(piece[::-1] if flip else piece)
        if start + len(line) < len(items):
            out.append(items[start + len(line)])  # the line break
        start += len(line) + 1
    return _from_items(norm.original, out)


def variants(text: str, options: NormalizeOptions | None = None) -> list[NormalizedText]:
    """The normalized text, plus the other readings of it when they differ: the segmented reading
    of spaced-out runs, the stored (logical) order behind right-to-left overrides, lines written
    backwards read forwards, base64 or a Caesar shift decoded, noise-scrambled lexicon words
    restored. A checker scores all of them and keeps the worst. When a decoded reading applies and
    the text as written does not read (no lexicon word, under 1 in 5 common English words), only
    the decoded readings are scored: ROT13 gibberish is not what a reader sees."""
    opts = options or NormalizeOptions()
    first = normalize(text, opts)
    out = [first]
    if opts.spacing and _ARTICLE_HINT.search(text):
        out.append(normalize(text, opts, segment_spaced=True))
        out.append(normalize(text, opts, segment_spaced=True, article=True))
    if opts.bidi and "\u202e" in text:
        out.append(normalize(text, opts, logical=True))
    if opts.reversed:
        out += [r for r in (reversed_lines(n) for n in list(out)) if r is not None]
    if opts.decode and (decoded := decoded_readings(text, _LEXICON)):
        # what a reader (or a model) sees is the decoded text: a reading of the text as written
        # (or written backwards) is scored only if it reads (a lexicon word, common English)
        kept = [n for n in out if reads_as_english(n.text, _LEXICON)]
        out = kept + [_whole_span(text, normalize(r, opts)) for r in decoded]
    if opts.noise and looks_noised(text) and (restored := _restored(first)) is not None:
        out.append(restored)
    unique: dict[str, NormalizedText] = {}
    for n in out:
        unique.setdefault(n.text, n)
    return list(unique.values())


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
    return _from_items(norm.original, chars.items)
