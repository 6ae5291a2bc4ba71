"""English words, for telling text that reads from gibberish.

``english_words()`` is the set of lower-case words GPT-2's vocabulary holds as whole tokens after a
space (``Ġword``, ``ĠWord``; ``probes/data/gpt2_tokenizer/encoder.json``, MIT, vendored for the GPT-2
tokenizer): about 24,600 words of web English, names and common abbreviations included. It is
a membership test, not a dictionary: a word in it is frequent in English text; a word missing from
it (``rbt``, ``vqvbg``) is rare or not English. Used to read a Caesar shift (ROT13) back and to
restore letters moved by character noise (``audit.guard.noise``).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path


def _tokenizer_vocabulary() -> Path:
    import probes

    return Path(next(iter(probes.__path__))) / "data" / "gpt2_tokenizer" / "encoder.json"


@cache
def english_words() -> frozenset[str]:
    """Lower-case ASCII words GPT-2's vocabulary holds as whole tokens after a space. Empty when
    the vendored file is missing (then every reading that needs it is skipped)."""
    path = _tokenizer_vocabulary()
    if not path.is_file():
        return frozenset()
    tokens = json.loads(path.read_text(encoding="utf-8"))
    return frozenset(t[1:].lower() for t in tokens if t.startswith("\u0120") and t[1:].isalpha() and t[1:].isascii())
