"""The attack interface: a text transform that tries to get a refused request answered.

An ``Attack`` has a ``name`` (what suites, ``--attacks`` and ``gate-eval --attacks`` use), a
``family`` (``encoding``, ``noise`` or ``framing``), a one-line ``description``, and ``reversible``.

- ``apply(text, seed) -> str``: the transformed text alone (the obfuscated or framed request, or
  obfuscated toxic text for the moderation filter). Deterministic: the same text and seed always
  give the same output. Only ``noise`` attacks and framings with several wordings use the seed.
- ``decode(text) -> str | None``: the inverse of ``apply`` for reversible attacks
  (``decode(apply(x, seed)) == x``); ``None`` when the attack is not reversible or ``text`` is not
  in its encoding.
- ``prompt(text, seed) -> str``: what a run sends to a model: ``apply`` plus, for encodings a model
  must be told about (base64, ROT13), one line saying how the request is written and asking for the
  answer in the same encoding.
- ``read_answer(answer) -> str | None``: the model's answer as plain text: decoded when it is
  written in the attack's encoding, as given when it is readable plain text, ``None`` when it can
  be read neither way (the outcome is then *undetermined*, never *refused*).
- ``variants``: how many seeded draws a run makes per prompt (Best-of-N noise draws several).
"""

from __future__ import annotations

from typing import ClassVar

from audit.attacks.reading import readable, strip_invisible

FAMILIES = ("encoding", "noise", "framing")


class Attack:
    """Base class of every attack (see the module docstring for the contract)."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    description: ClassVar[str] = ""
    reversible: ClassVar[bool] = False
    variants: ClassVar[int] = 1
    # a line sent before the payload ({payload} is replaced), or None to send apply() alone
    instruction: ClassVar[str | None] = None

    def apply(self, text: str, seed: int = 0) -> str:
        raise NotImplementedError

    def decode(self, text: str) -> str | None:
        return None

    def prompt(self, text: str, seed: int = 0) -> str:
        payload = self.apply(text, seed)
        return payload if self.instruction is None else self.instruction.replace("{payload}", payload)

    def read_answer(self, answer: str) -> str | None:
        """Default: the answer itself when it reads as text (zero-width characters removed), else None."""
        plain = strip_invisible(answer)
        return plain if readable(plain) else None

    def card(self) -> dict[str, object]:
        return {"name": self.name, "family": self.family, "description": self.description,
                "reversible": self.reversible, "variants": self.variants}

    def __repr__(self) -> str:
        return f"<attack {self.name} ({self.family})>"


def check_text(text: object) -> str:
    """``text`` itself, or TypeError with one clear line when it is not a string."""
    if not isinstance(text, str):
        raise TypeError(f"an attack transforms a str, got {type(text).__name__}")
    return text
