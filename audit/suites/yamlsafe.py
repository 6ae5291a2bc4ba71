"""Reading YAML safely and locating errors: every problem is one ``path:line: field: message``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from audit.core.errors import UsageError


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


# resource limits of suite and lexicon YAML files; each is a usage error naming the limit
MAX_YAML_BYTES = 16 * 1024 * 1024
MAX_YAML_DEPTH = 64  # nested mappings/sequences
MAX_YAML_NODES = 2_000_000  # values after expanding aliases (stops "billion laughs" files)


class _LimitError(yaml.YAMLError):
    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (naming both lines) and deep nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise _LimitError(mark.line + 1, f"nested deeper than {MAX_YAML_DEPTH} levels")
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if first is not None:
                raise _LimitError(line, f"{key}: key '{key}' is given twice (lines {first} and {line}); remove one")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def _count_nodes(data: Any, limit: int) -> bool:
    """True when ``data`` holds at most ``limit`` values, counting shared (aliased) ones each time."""
    stack = [data]
    n = 0
    while stack:
        x = stack.pop()
        n += 1
        if n > limit:
            return False
        if isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return True


def read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse one YAML file: ``(data, root node)``; every problem is one located ``UsageError``."""
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise UsageError(f"{path}: file is {size:,} bytes, over the limit of {MAX_YAML_BYTES:,} for a suite or lexicon")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    try:
        loader = StrictLoader(text)  # the reader refuses NUL and other non-printable characters here
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise UsageError(f"{path}:{line}: invalid YAML: control character U+{code:04X} is not allowed") from None
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except _LimitError as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise UsageError(f"{where}: {exc.message}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{where}: invalid YAML: {problem}") from None
    except RecursionError:
        raise UsageError(f"{path}: invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    if not _count_nodes(data, MAX_YAML_NODES):
        raise UsageError(f"{path}: more than {MAX_YAML_NODES:,} values once aliases are expanded")
    return data, root
