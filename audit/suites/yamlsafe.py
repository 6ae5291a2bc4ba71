"""Reading YAML safely and locating errors: every problem is one ``path:line: field: message``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from audit.errors import UsageError


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or of its deepest existing parent)."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for n, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if k.value == str(part):
                    nxt = k if n == len(loc) - 1 else v
                    break
            if nxt is None:
                break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


class Where:
    """Formats one-line errors located in one YAML file: ``path:line: field: message``."""

    def __init__(self, path: Path, root: yaml.Node | None) -> None:
        self.path = path
        self.root = root

    def error(self, loc: tuple[Any, ...], msg: str) -> UsageError:
        line = _line_of(self.root, loc)
        where = f"{self.path}:{line}" if line else str(self.path)
        field_name = ".".join(str(p) for p in loc) or "(top level)"
        return UsageError(f"{where}: {field_name}: {msg}")


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the tags pydantic adds inside unions and validators (``str``, ``function-after[...]``)."""
    return tuple(p for p in loc if not (isinstance(p, str) and (p in _UNION_TAGS or "[" in p)))


# pydantic adds the union member's type name to the location of errors inside unions
_UNION_TAGS = {"str", "Lexicon", "list[DataSource]", "DataSource", "int", "float", "bool", "list[str | int]"}


def format_validation_error(path: Path, root: yaml.Node | None, err: ValidationError) -> str:
    errors = [(_clean_loc(e["loc"]), e) for e in err.errors()]
    # inside a union, report the branch the user evidently meant (the deepest location); errors of
    # the other branches sit at a prefix of it and are not counted as further problems
    loc, e = max(errors, key=lambda x: len(x[0]))
    others = {lc for lc, _ in errors if lc != loc and lc != loc[: len(lc)]}
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        msg = f"unknown key '{loc[-1]}'" if loc else "unknown key"
    elif e["type"] == "missing":
        msg = "required field is missing"
    msg = msg.removeprefix("Value error, ")
    if e["type"] not in ("extra_forbidden", "missing") and "input" in e and not isinstance(e["input"], dict | list):
        got = repr(e["input"])
        if len(got) <= 40 and got not in msg:
            msg = f"{msg} (got {got})"
    more = f" (+{len(others)} more)" if others else ""
    return str(Where(path, root).error(loc, msg + more))


def read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{where}: invalid YAML: {problem}") from None
    return data, root
