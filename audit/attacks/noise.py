"""Best-of-N character noise (after Hughes et al. 2024, "Best-of-N Jailbreaking"): seeded random
capitalization, shuffled word middles and nearby-character substitutions.

Each of ``variants`` seeds gives another noisy copy of the request; the run sends every copy, and
hit@k (any copy or sample breached) is the Best-of-N figure. Not reversible.
"""

from __future__ import annotations

import random
import re

from audit.attacks.base import Attack, check_text

P_CAPS = 0.6  # each letter's case flipped with this probability
P_SHUFFLE = 0.6  # each word of 4+ letters has its middle letters shuffled with this probability
P_ASCII = 0.06  # each printable ASCII character moved one code point up or down with this probability
_WORD = re.compile(r"[A-Za-z]{4,}")


def _shuffle_middle(word: str, rng: random.Random) -> str:
    mid = list(word[1:-1])
    rng.shuffle(mid)
    return word[0] + "".join(mid) + word[-1]


class BestOfN(Attack):
    """Best-of-N noise: seeded caps flips, shuffled word middles, ±1 ASCII substitutions."""

    name = "best-of-n"
    family = "noise"
    description = "seeded character noise (case flips, shuffled word middles, ±1 ASCII); several draws per prompt"
    variants = 3

    def apply(self, text: str, seed: int = 0) -> str:
        rng = random.Random(f"best-of-n:{seed}")
        t = _WORD.sub(lambda m: _shuffle_middle(m.group(0), rng) if rng.random() < P_SHUFFLE else m.group(0),
                      check_text(text))
        out = []
        for c in t:
            if c.isalpha() and rng.random() < P_CAPS:
                c = c.swapcase()
            if 33 <= ord(c) <= 125 and c.isalnum() and rng.random() < P_ASCII:
                c = chr(ord(c) + rng.choice((-1, 1)))
            out.append(c)
        return "".join(out)
