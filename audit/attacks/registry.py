"""Attack lookup by name: built-ins plus third-party plugins from the ``lm_audit.attacks``
entry-point group (``name = "package.module:AttackClass"``), as for scorers.

``get_attack("base64")`` returns the attack; ``resolve_attacks("base64,rot13")`` or
``resolve_attacks("all")`` a list, with one clear ``UsageError`` line for an unknown name.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from importlib.metadata import entry_points

from audit.attacks.base import FAMILIES, Attack
from audit.core.errors import UsageError

# name -> "module:Class"; the order is the order of ``available()`` and of ``--attacks all``
BUILTIN: dict[str, str] = {
    "base64": "audit.attacks.encoding_base64:Base64",
    "rot13": "audit.attacks.encoding_caesar:Rot13",
    "caesar": "audit.attacks.encoding_caesar:Caesar",
    "leetspeak": "audit.attacks.leetspeak:Leetspeak",
    "homoglyphs": "audit.attacks.homoglyphs:Homoglyphs",
    "zero-width": "audit.attacks.zero_width:ZeroWidth",
    "rtl-reversal": "audit.attacks.rtl_reversal:RtlReversal",
    "interleave-emoji": "audit.attacks.interleave:InterleaveEmoji",
    "interleave-punct": "audit.attacks.interleave:InterleavePunct",
    "best-of-n": "audit.attacks.noise:BestOfN",
    "role-play": "audit.attacks.framings:RolePlay",
    "fiction": "audit.attacks.framings:Fiction",
    "refusal-suppression": "audit.attacks.framings:RefusalSuppression",
    "prefix-injection": "audit.attacks.framings:PrefixInjection",
    "payload-splitting": "audit.attacks.framings:PayloadSplitting",
}
_CACHE: dict[str, Attack] = {}


def _plugins() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group="lm_audit.attacks")}


def available() -> list[str]:
    """Every attack name: built-ins in their fixed order, then plugins sorted."""
    return [*BUILTIN, *sorted(set(_plugins()) - set(BUILTIN))]


def get_attack(name: str) -> Attack:
    """The attack called ``name`` (built once per process), or UsageError naming the known ones."""
    if name not in _CACHE:
        if name in BUILTIN:
            mod, _, attr = BUILTIN[name].partition(":")
            cls = getattr(importlib.import_module(mod), attr)
        elif name in (plugins := _plugins()):
            cls = plugins[name].load()  # type: ignore[attr-defined]
        else:
            raise UsageError(f"unknown attack '{name}' (available: {', '.join(available())}, or all)")
        attack = cls()
        if not isinstance(attack, Attack) or attack.name != name or attack.family not in FAMILIES:
            raise UsageError(f"attack '{name}' is not an Attack named '{name}' with a family in {FAMILIES}")
        _CACHE[name] = attack
    return _CACHE[name]


def resolve_attacks(spec: str | Sequence[str]) -> list[Attack]:
    """Attacks from ``"all"``, ``"a,b"`` or a list of names (each once, in the order given)."""
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else [str(n).strip() for n in spec]
    names = [n for n in names if n]
    if not names:
        raise UsageError("no attack named (give NAME[,NAME] or all; lm-audit attacks lists them)")
    if "all" in names:
        names = available()
    return [get_attack(n) for n in dict.fromkeys(names)]
