"""Attacked prompts: each plain item followed by its attacked versions, paired by ``pair_id``.

``attack_items(items, attacks)`` keeps every plain item (attribute ``technique: none``) and adds,
per attack and variant, an item with id ``<plain id>~<attack>`` (``~<attack>.<v>`` for attacks with
several variants), prompt ``attack.prompt(plain prompt, seed)`` and attributes: the plain item's,
plus ``technique``, ``attack_family``, ``attack_variant``, ``attack_of`` (the plain item's id) and
``pair_id`` (the plain item's ``pair_id``, else its id), so the summary pairs each attacked prompt
with its plain prompt and resamples them together. The seed is a hash of the plain item's id, the
attack and the variant: the same prompt gets the same attacked text in every run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

from audit.attacks.base import Attack
from audit.suites import Item

PLAIN = "none"
ATTACK_ATTRIBUTES = ("technique", "attack_family", "attack_variant", "attack_of")


def attack_seed(item_id: str, attack: str, variant: int) -> int:
    """The seed of one attacked prompt: stable across runs, machines and Python versions."""
    h = hashlib.sha256(f"{item_id}\x1f{attack}\x1f{variant}".encode()).digest()
    return int.from_bytes(h[:4], "little")


def attack_items(items: Sequence[Item], attacks: Sequence[Attack]) -> list[Item]:
    """The plain items and, after each, its attacked versions (module docstring)."""
    out: list[Item] = []
    for it in items:
        out.append(replace(it, attributes={**it.attributes, "technique": PLAIN}))
        pair = it.attributes.get("pair_id") or it.item_id
        for attack in attacks:
            for v in range(attack.variants):
                suffix = f"~{attack.name}" + (f".{v}" if attack.variants > 1 else "")
                out.append(replace(
                    it, item_id=it.item_id + suffix, seed_key="",
                    prompt=attack.prompt(it.prompt, attack_seed(it.item_id, attack.name, v)),
                    attributes={**it.attributes, "technique": attack.name, "attack_family": attack.family,
                                "attack_variant": v, "attack_of": it.item_id, "pair_id": pair},
                ))
    return out
