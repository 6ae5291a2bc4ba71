"""Right-to-left reversal: the text reversed inside a right-to-left override (U+202E ... U+202C).

A bidirectional renderer displays the reversed characters right to left, i.e. as the original
sentence, while the characters themselves (what a filter or a model reads) run backwards.
Reversible. Answers are read as whichever of plain and reversed reads as English.
"""

from __future__ import annotations

from audit.attacks.base import Attack, check_text
from audit.attacks.reading import most_english, strip_invisible

RLO, PDF = "\u202e", "\u202c"


class RtlReversal(Attack):
    """Right-to-left reversal: reversed characters behind U+202E, closed by U+202C."""

    name = "rtl-reversal"
    family = "encoding"
    description = "the text reversed behind a right-to-left override (U+202E), so it displays as the original"
    reversible = True

    def apply(self, text: str, seed: int = 0) -> str:
        return RLO + check_text(text)[::-1] + PDF

    def decode(self, text: str) -> str | None:
        t = check_text(text)
        if not (t.startswith(RLO) and t.endswith(PDF)):
            return None
        return t[len(RLO):-len(PDF)][::-1]

    def read_answer(self, answer: str) -> str | None:
        plain = strip_invisible(answer)
        return most_english([plain, plain[::-1]])
