"""Reading ``records.jsonl``: every line parsed and checked against ``audit.core.types.Record``'s
field types, a bad line reported as ``records.jsonl:LINE: what is wrong`` and skipped (never the
lines after it), a torn last line noticed, duplicate keys kept once (a copy with other scores or text
is a conflict). Read-only: ``run_store`` writes, repairs and judges the run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.core.types import Record

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def split_lines(raw: bytes) -> tuple[list[tuple[int, bytes]], bool]:
    """(line number, bytes) of every newline-terminated line, and whether a torn tail follows
    (bytes after the last newline: a write cut by SIGKILL or power loss, possibly NUL-filled)."""
    lines: list[tuple[int, bytes]] = []
    pos, n = 0, 0
    while pos < len(raw):
        nl = raw.find(b"\n", pos)
        if nl == -1:
            return lines, bool(raw[pos:].strip(b"\x00 \t\r"))
        n += 1
        lines.append((n, raw[pos:nl]))
        pos = nl + 1
    return lines, False


def parse_record_line(line: bytes) -> dict[str, Any]:
    """One records.jsonl line -> a record dict with checked field types, or ``ValueError`` saying
    what is wrong (in a few words, for ``file:line: problem``)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 (byte {exc.start})") from None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    problem = check_record_dict(row)
    if problem:
        raise ValueError(problem)
    if _SURROGATE_ESCAPE.search(line):  # lone surrogates escaped in JSON: make the text valid
        from audit.models.base import clean_value

        row, notes = clean_value(row)
        if notes:
            row["extra"] = {**row["extra"], "text_repaired": sorted(set(notes))}
    return row


def check_record_dict(row: Any) -> str | None:
    """What is wrong with a record dict (field types as in ``audit.core.types.Record``), or None."""
    if not isinstance(row, dict):
        return f"a record must be a JSON object, not {json_kind(row)}"
    for f in _RECORD_FIELDS:
        if f.name not in row and f.name not in _OPTIONAL_FIELDS:
            return f"missing field '{f.name}'"
    for name in ("key", "suite", "item_id", "prompt", "completion"):
        if not isinstance(row[name], str):
            return f"'{name}' must be a string, not {json_kind(row[name])}"
    if not row["key"]:
        return "'key' is empty"
    if row.get("template_id") is not None and not isinstance(row["template_id"], str):
        return f"'template_id' must be a string or null, not {json_kind(row['template_id'])}"
    if not isinstance(row["sample"], int) or isinstance(row["sample"], bool) or row["sample"] < 0:
        return f"'sample' must be a whole number >= 0, not {row['sample']!r:.40}"
    for name in ("attributes", "scores", "extra", "timings"):
        if name in row and not isinstance(row[name], dict):
            return f"'{name}' must be an object, not {json_kind(row[name])}"
    for k, v in (row.get("attributes") or {}).items():
        if v is not None and not isinstance(v, str | int | float | bool):
            return f"attributes.{k:.40}: must be a string, number, bool or null, not {json_kind(v)}"
    for name in ("scores", "timings"):
        for k, v in (row.get(name) or {}).items():
            if v is None and name == "scores":
                continue
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                return f"{name}.{k:.40}: must be a finite number{' or null' if name == 'scores' else ''}, not {v!r:.40}"
    return None


def json_kind(v: Any) -> str:
    """How a JSON value's type reads in a message: 'an object', 'a list', 'null'..."""
    return {dict: "an object", list: "a list", str: "a string", bool: "a bool", type(None): "null"}.get(
        type(v), f"a {type(v).__name__}"
    )


_RECORD_FIELDS = dataclasses.fields(Record)
_OPTIONAL_FIELDS = {"template_id", "attributes", "scores", "extra", "timings"}


@dataclass
class RecordsRead:
    """What reading records.jsonl found: the valid rows, and every line that was not one."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # "records.jsonl:5: not JSON (...)"
    bad_lines: list[int] = field(default_factory=list)
    torn_tail: bool = False
    n_duplicates: int = 0
    # a key written again with other scores or text: "records.jsonl:9: key 'k' repeats line 2 with different scores"
    conflicts: list[str] = field(default_factory=list)
    error: str | None = None  # the file itself could not be read (a folder, no permission)


def scan_records(path: Path) -> RecordsRead:
    """Read every line of ``records.jsonl``; a bad line is reported and skipped, never the rest."""
    out = RecordsRead()
    if not path.exists():
        return out
    try:
        raw = path.read_bytes()
    except (IsADirectoryError, PermissionError, OSError) as exc:
        out.error = f"{path.name}: cannot be read ({exc.strerror or type(exc).__name__})"
        return out
    lines, out.torn_tail = split_lines(raw)
    seen: dict[str, tuple[int, dict[str, Any]]] = {}
    for n, line in lines:
        if not line.strip():
            continue
        try:
            row = parse_record_line(line)
        except ValueError as exc:
            out.bad_lines.append(n)
            if len(out.unreadable) < MAX_REPORTED:
                out.unreadable.append(f"{path.name}:{n}: {exc}")
            continue
        if row["key"] in seen:
            out.n_duplicates += 1
            first_line, first = seen[row["key"]]
            differs = [f for f in ("scores", "completion") if first.get(f) != row.get(f)]
            if differs:
                out.conflicts.append(
                    f"{path.name}:{n}: key {row['key']!r:.80} repeats line {first_line} with different {' and '.join(differs)}"
                )
            continue
        seen[row["key"]] = (n, row)
        out.rows.append(row)
    return out


MAX_REPORTED = 50  # unreadable lines listed by name; all are counted


def to_record(row: dict[str, Any]) -> Record:
    known = {f.name for f in _RECORD_FIELDS}
    return Record(**{k: v for k, v in row.items() if k in known})
