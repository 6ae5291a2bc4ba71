"""Template suites: lexicons (inline or files) expanded into counterfactual sets of items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from audit.errors import UsageError
from audit.suites.schema import BUILTIN_LEXICONS_DIR, SLOT_RE, Item, Lexicon, Suite
from audit.suites.yamlsafe import Where, format_validation_error, read_yaml


def _load_lexicon(ref: str | Lexicon, where: Where, i: int) -> Lexicon:
    if isinstance(ref, Lexicon):
        return ref
    base = where.path.parent
    candidates = [base / ref, base / f"{ref}.yaml", BUILTIN_LEXICONS_DIR / f"{ref}.yaml", BUILTIN_LEXICONS_DIR / ref]
    for c in candidates:
        if c.is_file():
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


def expand_templates(suite: Suite, where: Where, hasher: Any) -> list[Item]:
    src = suite.prompts
    if not src.lexicons:
        raise where.error(("prompts", "templates"), "templates need at least one lexicon under 'prompts.lexicons'")
    lexicons = [_load_lexicon(ref, where, i) for i, ref in enumerate(src.lexicons)]
    seen_attr: dict[str, int] = {}
    seen_group: dict[str, str] = {}
    template_attrs = {a for t in src.templates for a in t.attributes}
    for i, lex in enumerate(lexicons):
        if lex.attribute in seen_attr:
            raise where.error(("prompts", "lexicons", i), f"two lexicons set the attribute '{lex.attribute}'")
        if lex.attribute in template_attrs:
            raise where.error(
                ("prompts", "lexicons", i), f"lexicon attribute '{lex.attribute}' clashes with a template attribute"
            )
        seen_attr[lex.attribute] = i
        for g in lex.groups:
            if g in seen_group:
                raise where.error(
                    ("prompts", "lexicons", i),
                    f"group '{g}' is in both '{seen_group[g]}' and '{lex.attribute}' (group names must be unique)",
                )
            seen_group[g] = lex.attribute
        hasher.update(json.dumps(lex.model_dump(), sort_keys=True).encode())
    items: list[Item] = []
    for ti, tpl in enumerate(src.templates):
        slots = SLOT_RE.findall(tpl.text)
        if set(slots) != {"group"}:
            unknown = sorted(set(slots) - {"group"})
            what = (
                f"unknown slot(s) {', '.join('{' + u + '}' for u in unknown)}; only {{group}} is filled"
                if unknown
                else "template has no {group} slot"
            )
            raise where.error(("prompts", "templates", ti, "text"), what)
        for lex in lexicons:
            for fi in range(lex.n_forms):
                seed_key = f"{tpl.id}:{lex.attribute}:{fi}"
                for group, forms in lex.groups.items():
                    term = forms[fi]
                    prompt = tpl.text.replace("{group}", term)
                    if tpl.text.startswith("{group}"):
                        prompt = prompt[0].upper() + prompt[1:]
                    attrs: dict[str, Any] = {
                        **tpl.attributes,
                        "axis": lex.attribute,
                        "group": group,
                        lex.attribute: group,
                        "term": term,
                        "pair_id": seed_key,
                    }
                    if lex.form_kinds:
                        attrs["form"] = lex.form_kinds[fi]
                    items.append(
                        Item(
                            item_id=f"{tpl.id}:{lex.attribute}:{group}:{fi}",
                            prompt=prompt,
                            template_id=tpl.id,
                            seed_key=seed_key,
                            attributes=attrs,
                        )
                    )
    return items
