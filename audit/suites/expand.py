"""Template suites: lexicons (inline or files) expanded into counterfactual sets of items.

A template's slots pick its lexicons: ``{group}`` is filled by every lexicon in turn (one axis at
a time), ``{gender}`` by the lexicon of that attribute (or ``slot``). Several named slots are
crossed: one counterfactual set per template and combination of form positions, holding every
cell (every combination of groups); all its members share the set's ``seed_key``.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from audit.core.errors import UsageError
from audit.suites.schema import (
    BRACE_RE,
    BUILTIN_LEXICONS_DIR,
    CELL_SEP,
    PROBES_DIR,
    SLOT_RE,
    Item,
    Lexicon,
    Suite,
    Template,
)
from audit.suites.yamlsafe import Where, format_validation_error, read_yaml

MAX_ITEMS = 2_000_000  # items one suite may expand to


def inside_allowed(path: Path, suite_dir: Path) -> bool:
    """True when ``path`` (symlinks resolved) lies in the suite's folder or the built-in probes folder."""
    real = path.resolve()
    return any(real.is_relative_to(root.resolve()) for root in (suite_dir, PROBES_DIR))


def _load_lexicon(ref: str | Lexicon, where: Where, i: int) -> Lexicon:
    if isinstance(ref, Lexicon):
        return ref
    base = where.path.parent
    candidates = [base / ref, base / f"{ref}.yaml", BUILTIN_LEXICONS_DIR / f"{ref}.yaml", BUILTIN_LEXICONS_DIR / ref]
    for c in candidates:
        if c.is_file():
            if not inside_allowed(c, base):
                raise where.error(
                    ("prompts", "lexicons", i),
                    f"lexicon path '{ref}' leaves the suite's folder (lexicons must live beside the suite, "
                    "in a folder under it, or be built in)",
                )
            data, lroot = read_yaml(c)
            if not isinstance(data, dict):
                got = "an empty file" if data is None else f"a {type(data).__name__}"
                raise UsageError(f"{c}:1: (top level): a lexicon must be a YAML mapping with 'attribute' and 'groups', got {got}")
            try:
                return Lexicon.model_validate(data)
            except ValidationError as err:
                raise UsageError(format_validation_error(c, lroot, err)) from None
    raise where.error(("prompts", "lexicons", i), f"lexicon '{ref}' not found (next to the suite or built in)")


def builtin_lexicon_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUILTIN_LEXICONS_DIR.glob("*.yaml"))}


def load_lexicon_file(path: Path) -> Lexicon:
    """Validate one lexicon file (for ``lm-audit validate``)."""
    return _load_lexicon(str(path.resolve()), Where(path, None), 0)


def _lexicons(suite: Suite, where: Where, hasher: Any) -> list[Lexicon]:
    src = suite.prompts
    if not src.lexicons:
        raise where.error(("prompts", "templates"), "templates need at least one lexicon under 'prompts.lexicons'")
    lexicons = [_load_lexicon(ref, where, i) for i, ref in enumerate(src.lexicons)]
    seen_attr: dict[str, int] = {}
    seen_slot: dict[str, int] = {}
    seen_group: dict[str, str] = {}
    template_attrs = {a for t in src.templates for a in t.attributes}
    for i, lex in enumerate(lexicons):
        for attr in lex.axes:
            if attr in seen_attr:
                raise where.error(("prompts", "lexicons", i), f"two lexicons set the attribute '{attr}'")
            if attr in template_attrs:
                raise where.error(
                    ("prompts", "lexicons", i), f"lexicon attribute '{attr}' clashes with a template attribute"
                )
            seen_attr[attr] = i
        if lex.slot_name in seen_slot or lex.slot_name == "group":
            raise where.error(("prompts", "lexicons", i), f"two lexicons fill the slot {{{lex.slot_name}}}")
        seen_slot[lex.slot_name] = i
        for g in lex.groups:
            if g in seen_group:
                raise where.error(
                    ("prompts", "lexicons", i),
                    f"group '{g}' is in both '{seen_group[g]}' and '{cell_attr(lex)}' (group names must be unique)",
                )
            seen_group[g] = cell_attr(lex)
        hasher.update(json.dumps(lex.model_dump(), sort_keys=True).encode())
    return lexicons


def cell_attr(lex: Lexicon) -> str:
    return CELL_SEP.join(lex.axes)


def _template_lexicons(tpl: Template, ti: int, lexicons: list[Lexicon], where: Where) -> tuple[list[list[Lexicon]], list[str]]:
    """The lexicon combinations a template expands over, and notes about it.

    ``{group}``: each lexicon alone. Named slots: one combination of the named lexicons, crossed.
    """
    loc = ("prompts", "templates", ti, "text")
    by_slot = {lex.slot_name: lex for lex in lexicons}
    defined = ["group", *by_slot]
    shown = ", ".join("{" + d + "}" for d in defined)
    for inner in BRACE_RE.findall(tpl.text):
        if not SLOT_RE.fullmatch("{" + inner + "}"):
            raise where.error(loc, f"placeholder '{{{inner}}}' is not a slot: slots are plain names ({shown})")
        if inner not in defined:
            raise where.error(loc, f"unknown slot {{{inner}}}: this suite defines {shown}")
    slots = list(dict.fromkeys(SLOT_RE.findall(tpl.text)))
    notes = [
        f"template '{tpl.id}' uses {{{s}}} {n} times: every use gets the same term"
        for s in slots
        if (n := SLOT_RE.findall(tpl.text).count(s)) > 1
    ]
    if not slots:
        named = "".join(f", {{{d}}}" for d in defined[1:])
        raise where.error(loc, f"template has no slot: put one of {{group}}{named} in its text")
    if "group" in slots:
        if len(slots) > 1:
            raise where.error(loc, "{group} fills one lexicon at a time; to cross lexicons, use only named slots")
        if tpl.cross:
            raise where.error(("prompts", "templates", ti, "cross"), "'cross' needs named slots, not {group}")
        return [[lex] for lex in lexicons], notes
    order = list(tpl.cross) or [lex.slot_name for lex in lexicons if lex.slot_name in slots]
    if tpl.cross and sorted(tpl.cross) != sorted(slots):
        raise where.error(
            ("prompts", "templates", ti, "cross"),
            f"'cross' must list exactly the template's slots ({', '.join(slots)}), got {', '.join(tpl.cross)}",
        )
    return [[by_slot[s] for s in order]], notes


def expand_templates(suite: Suite, where: Where, hasher: Any) -> tuple[list[Item], list[str]]:
    """Items of a template suite, and notes for ``lm-audit validate``."""
    lexicons = _lexicons(suite, where, hasher)
    plans: list[tuple[Template, list[Lexicon]]] = []
    notes: list[str] = []
    total = 0
    for ti, tpl in enumerate(suite.prompts.templates):
        combos, tnotes = _template_lexicons(tpl, ti, lexicons, where)
        notes += tnotes
        for combo in combos:
            plans.append((tpl, combo))
            total += math.prod(lex.n_forms * len(lex.groups) for lex in combo)
    if total > MAX_ITEMS:
        raise where.error(
            ("prompts", "templates"), f"the templates expand to {total:,} items, over the limit of {MAX_ITEMS:,}"
        )
    items: list[Item] = []
    for tpl, combo in plans:
        items.extend(_expand_one(tpl, combo))
    return items, notes


def _expand_one(tpl: Template, combo: list[Lexicon]) -> list[Item]:
    axes = [a for lex in combo for a in lex.axes]
    axis = CELL_SEP.join(axes)
    single = len(combo) == 1 and tpl.text.count("{group}") > 0
    items = []
    for fis in itertools.product(*(range(lex.n_forms) for lex in combo)):
        if len(combo) == 1:
            seed_key = f"{tpl.id}:{axis}:{fis[0]}"
        else:
            seed_key = f"{tpl.id}:" + ":".join(f"{lex.slot_name}{fi}" for lex, fi in zip(combo, fis, strict=True))
        for groups in itertools.product(*(list(lex.groups) for lex in combo)):
            terms = [lex.groups[g][fi] for lex, g, fi in zip(combo, groups, fis, strict=True)]
            prompt = tpl.text
            for lex, term in zip(combo, terms, strict=True):
                prompt = prompt.replace("{group}" if single else "{" + lex.slot_name + "}", term)
            if tpl.text.startswith("{"):
                prompt = prompt[0].upper() + prompt[1:]
            values: dict[str, str] = {}
            for lex, g in zip(combo, groups, strict=True):
                values.update(lex.values_of(g))
            cell = CELL_SEP.join(values[a] for a in axes)
            attrs: dict[str, Any] = {**tpl.attributes, "axis": axis, "group": cell, **values}
            if len(axes) > 1:
                attrs[axis] = cell
            attrs["term"] = "/".join(terms)
            attrs["pair_id"] = seed_key
            kinds = [lex.form_kinds[fi] for lex, fi in zip(combo, fis, strict=True) if lex.form_kinds]
            if kinds:
                attrs["form"] = "/".join(kinds)
            fi_text = ".".join(str(fi) for fi in fis)
            items.append(
                Item(
                    item_id=f"{tpl.id}:{axis}:{cell}:{fi_text}",
                    prompt=prompt,
                    template_id=tpl.id,
                    seed_key=seed_key,
                    attributes=attrs,
                )
            )
    return items
