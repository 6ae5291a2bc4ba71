"""Loading a suite: resolve its name or path, validate it, expand its items."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import ValidationError

from audit.core.errors import UsageError
from audit.suites.answers import attach_answers
from audit.suites.cells import add_cell_attributes
from audit.suites.checks import check_attributes, check_metrics, check_score_keys, referenced_attributes
from audit.suites.data import load_data_items
from audit.suites.expand import expand_templates
from audit.suites.panel import attach_panel
from audit.suites.schema import BUILTIN_SUITES_DIR, LoadedSuite, Suite
from audit.suites.yamlsafe import Where, format_validation_error, read_yaml


def builtin_suite_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUILTIN_SUITES_DIR.glob("*.yaml"))}


def resolve_suite_path(name_or_path: str) -> Path:
    builtin = builtin_suite_paths()
    if name_or_path in builtin:
        return builtin[name_or_path]
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists() or "/" in name_or_path:
        if not p.is_file():
            raise UsageError(f"suite file not found: {name_or_path}")
        return p
    known = ", ".join(builtin) or "none"
    raise UsageError(f"unknown suite '{name_or_path}' (built-in: {known}; or pass a path to a .yaml file)")


def load_suite_file(name_or_path: str) -> tuple[Suite, Path]:
    suite, path, _ = _load_suite_file(name_or_path)
    return suite, path


def _load_suite_file(name_or_path: str) -> tuple[Suite, Path, yaml.Node | None]:
    path = resolve_suite_path(name_or_path)
    data, root = read_yaml(path)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise UsageError(f"{path}:1: (top level): a suite must be a YAML mapping, got {got}")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as err:
        raise UsageError(format_validation_error(path, root, err)) from None
    check_structure(suite, Where(path, root))
    return suite, path, root


def check_structure(suite: Suite, where: Where) -> None:
    """Cross-field rules, each reported at the line of the field at fault."""
    if suite.default_protocol and suite.default_protocol not in suite.protocols:
        known = ", ".join(suite.protocols) or "none"
        raise where.error(("default_protocol",), f"'{suite.default_protocol}' is not in 'protocols' (known: {known})")
    listed = isinstance(suite.prompts.data, list)
    for i, s in enumerate(suite.prompts.sources()):
        fields_loc = ("prompts", "data", i, "fields") if listed else ("prompts", "fields")
        answers = suite.prompts.answers
        if answers is not None and (s.fields.options or not s.fields.prompt):
            raise where.error(
                fields_loc, "with 'answers', give 'prompt' (the question's column) and no 'options' (the answers are the options)"
            )
        if suite.task == "likelihood" and answers is None and len(s.fields.options) < 2:
            raise where.error(
                (*fields_loc, "options"), "task 'likelihood' needs at least two options (option name -> column)"
            )
        if suite.task == "generate" and not s.fields.prompt:
            raise where.error(fields_loc, "task 'generate' needs 'prompt' (the column holding the prompt)")
    if listed:
        names = [src.name for src in suite.prompts.sources()]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise where.error(("prompts", "data", i, "name"), f"duplicate data source name '{name}'")
    if suite.task == "likelihood" and suite.prompts.templates and suite.prompts.continuations is None:
        raise where.error(
            ("task",), "task 'likelihood' needs data files with options, or templates with 'prompts.continuations'"
        )
    if suite.task != "likelihood" and suite.prompts.answers is not None:
        raise where.error(("prompts", "answers"), "'answers' need task: likelihood")
    if suite.task != "likelihood" and suite.prompts.continuations is not None:
        raise where.error(("prompts", "continuations"), "'continuations' need task: likelihood")
    seen: set[str] = set()
    for i, t in enumerate(suite.prompts.templates):
        if t.id in seen:
            raise where.error(("prompts", "templates", i, "id"), f"duplicate template id '{t.id}'")
        seen.add(t.id)
    for i, name in enumerate(suite.scorers):
        if name in suite.scorers[:i]:
            raise where.error(("scorers", i), f"scorer '{name}' is listed twice")


def check_attack_names(suite: Suite, where: Where, known: Sequence[str]) -> None:
    """Each ``attacks:`` entry names a known attack (or is ``all``), once, on a generate suite."""
    if suite.attacks and suite.task != "generate":
        raise where.error(("attacks",), "attacks need task: generate (a likelihood suite has no answer to attack)")
    for i, name in enumerate(suite.attacks):
        if name != "all" and name not in known:
            raise where.error(("attacks", i), f"unknown attack '{name}' (available: {', '.join(known)}, or all)")
        if name in suite.attacks[:i]:
            raise where.error(("attacks", i), f"attack '{name}' is listed twice")


def load_suite(
    name_or_path: str, known_scorers: set[str] | None = None, known_attacks: Sequence[str] | None = None
) -> LoadedSuite:
    """Load, validate and expand a suite. ``known_scorers`` enables the scorer-name check and
    ``known_attacks`` (``audit.attacks.available()``) the check of the ``attacks:`` names."""
    suite, path, root = _load_suite_file(name_or_path)
    where = Where(path, root)
    if known_scorers is not None:
        for i, name in enumerate(suite.scorers):
            if name.partition(":")[0] not in known_scorers:
                raise where.error(
                    ("scorers", i), f"unknown scorer '{name}' (known: {', '.join(sorted(known_scorers)) or 'none'})"
                )
    if known_attacks is not None:
        check_attack_names(suite, where, known_attacks)
    check_metrics(suite, where)
    hasher = hashlib.sha256()
    hasher.update(path.read_bytes())
    notes: list[str] = []
    if suite.prompts.templates:
        items, notes = expand_templates(suite, where, hasher)
        if suite.prompts.continuations is not None:
            attach_panel(items, suite.prompts.continuations)
    else:
        items = load_data_items(suite, where, hasher)
        if suite.prompts.answers is not None:
            attach_answers(items, suite.prompts.answers)
    add_cell_attributes(items, referenced_attributes(suite))
    if not items:
        raise where.error(("prompts",), "the suite produces no prompts (empty data file, or a filter that keeps nothing?)")
    seen: set[str] = set()
    for it in items:
        if it.item_id in seen:
            raise where.error(("prompts",), f"duplicate item id '{it.item_id}'")
        seen.add(it.item_id)
    check_attributes(suite, where, items)
    if known_scorers is not None:
        check_score_keys(suite, where, items)
    return LoadedSuite(suite=suite, path=path, items=items, data_hash=hasher.hexdigest()[:16], notes=notes)
