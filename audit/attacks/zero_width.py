"""Zero-width insertion: an invisible character between every two adjacent letters.

Seeded: each gap gets a zero-width space (U+200B) or a word joiner (U+2060). The text displays
unchanged but every word is split for a word list or a tokenizer. Reversible for texts holding no
U+200B or U+2060 of their own (``decode`` removes both).
"""

from __future__ import annotations

import random

from audit.attacks.base import Attack, check_text

MARKS = ("\u200b", "\u2060")
_STRIP = dict.fromkeys(map(ord, MARKS), None)


class ZeroWidth(Attack):
    """Zero-width insertion: U+200B or U+2060 (seeded) between adjacent letters."""

    name = "zero-width"
    family = "encoding"
    description = "an invisible zero-width character between every two adjacent letters"
    reversible = True

    def apply(self, text: str, seed: int = 0) -> str:
        rng = random.Random(f"zero-width:{seed}")
        t = check_text(text)
        out: list[str] = []
        for i, c in enumerate(t):
            out.append(c)
            if c.isalpha() and i + 1 < len(t) and t[i + 1].isalpha():
                out.append(MARKS[rng.randrange(len(MARKS))])
        return "".join(out)

    def decode(self, text: str) -> str | None:
        return check_text(text).translate(_STRIP)
