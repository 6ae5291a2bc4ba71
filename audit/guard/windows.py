"""Sliding windows over a text, so one toxic sentence inside a long benign text is caught.

Whole-text scores dilute: a TF-IDF or transformer classifier averages a single insult with three
paragraphs of weather talk. ``spans(text)`` returns the ``[start, end)`` character spans to score:
the whole text, each sentence, each sentence's clauses cut at colons and semicolons (a request
framed as "... the following: <request>. Write that scene." is scored alone), and windows of ``size_words`` words moved by
``stride_words``.
A check keeps the worst score over the spans.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"\S+")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")
_CLAUSE = re.compile(r"[^.!?:;\n]+[.!?]*")  # a sentence cut at colons: a framed request scored alone
_WORD_CHARS = re.compile(r"[^\W_]+")


def spans(text: str, size_words: int = 24, stride_words: int = 12, sentences: bool = True) -> list[tuple[int, int]]:
    """Spans to score, deduplicated, whole text first."""
    out: list[tuple[int, int]] = [(0, len(text))]
    if not text.strip():
        return out
    if sentences:
        for m in _SENTENCE.finditer(text):
            piece = m.group(0)
            if piece.strip():
                lead = len(piece) - len(piece.lstrip())
                out.append((m.start() + lead, m.end()))
        for m in _CLAUSE.finditer(text):
            piece = m.group(0)
            if piece.strip() and m.end() - m.start() < len(text):
                lead = len(piece) - len(piece.lstrip())
                out.append((m.start() + lead, m.end()))
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    if len(words) > size_words:
        stride = min(stride_words, size_words)
        starts = list(range(0, len(words) - size_words + 1, stride))
        if starts[-1] != len(words) - size_words:
            starts.append(len(words) - size_words)
        for i in starts:
            out.append((words[i][0], words[i + size_words - 1][1]))
    seen: set[tuple[int, int]] = set()
    unique = []
    for span in out:
        if span not in seen:
            seen.add(span)
            unique.append(span)
    return unique


def word_spans(text: str) -> list[tuple[int, int]]:
    """Spans of the words (letters and digits) of a text, for word-level redaction."""
    return [(m.start(), m.end()) for m in _WORD_CHARS.finditer(text)]
