"""Data-file suites: rows of .jsonl/.json/.csv/.txt files become items.

A ``pair_id`` column (``fields.pair_id``) groups rows into counterfactual sets: members share
their sampling seed (``seed_key``) and the ``pair_id`` attribute, so they are paired in the
statistics and ``--limit`` keeps them together. Resource limits (file size, field size, row count,
JSON depth) are usage errors naming the file and line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from audit.core.errors import UsageError
from audit.suites.expand import MAX_ITEMS, inside_allowed
from audit.suites.schema import Item, Suite
from audit.suites.yamlsafe import Where

MAX_DATA_BYTES = 1024**3  # one data file
MAX_FIELD_CHARS = 1_048_576  # one field (a prompt, an option, an attribute)


@contextmanager
def _csv_field_limit(n: int) -> Iterator[None]:
    old = csv.field_size_limit()
    csv.field_size_limit(n)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _too_long(row: Any) -> str | None:
    if isinstance(row, dict):
        for k, v in row.items():
            if isinstance(v, str) and len(v) > MAX_FIELD_CHARS:
                return str(k)
    return None


def _read_rows(data_path: Path) -> tuple[list[Any], list[int] | None]:
    """The rows of a data file and, for .jsonl/.txt/.csv, the file line each row starts on."""
    suffix = data_path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".csv", ".txt"):
        raise UsageError(f"{data_path}: unsupported data format '{suffix}' (use .jsonl, .json, .csv or .txt)")
    try:
        size = data_path.stat().st_size
        if size > MAX_DATA_BYTES:
            raise UsageError(f"{data_path}: file is {size:,} bytes, over the limit of {MAX_DATA_BYTES:,} for a data file")
        rows, lines = _parse_rows(data_path, suffix)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{data_path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{data_path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise UsageError(f"{data_path}: JSON nested too deeply (rows must be flat objects)") from None
    for n, row in enumerate(rows):
        col = _too_long(row)
        if col is not None:
            raise UsageError(f"{row_where(data_path, lines, n)}: field '{col}' is over the limit of {MAX_FIELD_CHARS:,} characters")
    return rows, lines


def row_where(data_path: Path, lines: list[int] | None, n: int) -> str:
    """``file:line`` of row ``n`` (0-based) where lines are known, else ``file: row N``."""
    return f"{data_path}:{lines[n]}" if lines is not None else f"{data_path}: row {n + 1}"


def _parse_rows(data_path: Path, suffix: str) -> tuple[list[Any], list[int] | None]:
    if suffix == ".jsonl":
        rows, lines = [], []
        with data_path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    lines.append(n)
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise UsageError(f"{data_path}:{n}: invalid JSON line: {exc.msg}") from None
                    except RecursionError:
                        raise UsageError(f"{data_path}:{n}: JSON nested too deeply (rows must be flat objects)") from None
                    if len(rows) > MAX_ITEMS:
                        raise UsageError(f"{data_path}:{n}: more than {MAX_ITEMS:,} rows")
        return rows, lines
    if suffix == ".json":
        data = json.loads(data_path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise UsageError(f"{data_path}:1: a .json data file must hold a list of objects")
        if len(data) > MAX_ITEMS:
            raise UsageError(f"{data_path}: more than {MAX_ITEMS:,} rows")
        return data, None
    if suffix == ".csv":
        with data_path.open(encoding="utf-8", newline="") as fh, _csv_field_limit(MAX_FIELD_CHARS):
            reader = csv.DictReader(fh)
            rows, lines = [], []
            try:
                start = 2  # the header is line 1
                for row in reader:
                    rows.append(row)
                    lines.append(start)
                    start = reader.line_num + 1
                    if len(rows) > MAX_ITEMS:
                        raise UsageError(f"{data_path}:{reader.line_num}: more than {MAX_ITEMS:,} rows")
            except csv.Error as exc:
                if "field larger" in str(exc):
                    raise UsageError(
                        f"{data_path}:{reader.line_num + 1}: a field is over the limit of {MAX_FIELD_CHARS:,} characters"
                    ) from None
                raise UsageError(f"{data_path}:{reader.line_num}: invalid CSV: {exc}") from None
            return rows, lines
    with data_path.open(encoding="utf-8") as fh:
        numbered = [(n, line) for n, line in enumerate(fh, 1) if line.strip()]
    return [{"prompt": line.rstrip("\n")} for _, line in numbered], [n for n, _ in numbered]


def _text_columns(f: Any) -> list[tuple[str, str]]:
    """(role, column) of the fields that must hold text: the prompt, the context, the options."""
    out = [("prompt", f.prompt)] if f.prompt else []
    out += [("context", f.context)] if f.context else []
    return out + [(f"option '{name}'", col) for name, col in f.options.items()]


def _json_kind(v: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean"}.get(type(v), "a number")


def _as_list(v: Any) -> list[str]:
    if v is None or v == "":
        return []
    if isinstance(v, list):
        return [str(x) for x in v if str(x).strip()]
    return [str(v)]


def load_data_items(suite: Suite, where: Where, hasher: Any) -> list[Item]:
    listed = isinstance(suite.prompts.data, list)
    items: list[Item] = []
    for si, src in enumerate(suite.prompts.sources()):
        base: tuple[Any, ...] = ("prompts", "data", si) if listed else ("prompts",)
        file_loc = (*base, "file") if listed else ("prompts", "data")
        data_path = where.path.parent / src.file
        if not data_path.is_file():
            raise where.error(file_loc, f"data file not found: {src.file} (paths are relative to the suite file)")
        if not inside_allowed(data_path, where.path.parent):
            raise where.error(
                file_loc,
                f"data path '{src.file}' leaves the suite's folder (data must live beside the suite, "
                "in a folder under it, or in the built-in probes folder)",
            )
        hasher.update(data_path.read_bytes())
        rows, lines = _read_rows(data_path)
        f = src.fields
        if "pair_id" in f.attributes or "pair_id" in src.attributes:
            raise where.error(
                (*base, "fields", "attributes"),
                "'pair_id' is reserved: name the column in fields.pair_id so set members share their seeds",
            )
        needed = [
            c
            for c in [f.id, f.prompt, f.context, f.correct, f.incorrect, f.pair_id, *f.options.values(), *f.attributes]
            if c
        ]
        needed += list(src.filter)
        clash = sorted(set(f.attributes) & set(src.attributes))
        if clash:
            raise where.error((*base, "attributes"), f"attribute '{clash[0]}' is both a column and a constant")
        row_of: dict[str, int] = {}
        for n, row in enumerate(rows):
            if not isinstance(row, dict):
                raise UsageError(f"{row_where(data_path, lines, n)}: row {n + 1} is not an object")
            missing = [c for c in needed if c not in row]
            if missing:
                raise where.error(
                    (*base, "fields"), f"column '{missing[0]}' not in {data_path.name} (row {n + 1})"
                )
            if any(row[col] not in allowed for col, allowed in src.filter.items()):
                continue
            for role, col in _text_columns(f):
                if not isinstance(row.get(col, ""), str):
                    got = "null" if row[col] is None else f"{_json_kind(row[col])} ({json.dumps(row[col])[:40]})"
                    raise UsageError(f"{row_where(data_path, lines, n)}: {role} column '{col}' is {got}, not text")
            row_id = str(row[f.id]) if f.id else str(n)
            item_id = f"{src.name}:{row_id}" if src.name else row_id
            if item_id in row_of:
                raise where.error(
                    file_loc, f"duplicate item id '{row_id}' in {data_path.name} (rows {row_of[item_id]} and {n + 1})"
                )
            row_of[item_id] = n + 1
            prompt = str(row[f.prompt]) if f.prompt else ""
            if src.format and f.prompt:
                prompt = src.format.replace("{prompt}", prompt)
            attrs: dict[str, Any] = {**src.attributes, **{a: row[a] for a in f.attributes}}
            seed_key = item_id
            if f.pair_id:
                pair = str(row[f.pair_id]).strip()
                if not pair:
                    raise UsageError(f"{data_path}: row {n + 1}: empty {f.pair_id} (every row of a paired file needs a set)")
                seed_key = f"{src.name}:pair={pair}" if src.name else f"pair={pair}"
                attrs["pair_id"] = seed_key
            items.append(
                Item(
                    item_id=item_id,
                    prompt=prompt,
                    seed_key=seed_key,
                    attributes=attrs,
                    context=str(row[f.context]) if f.context else "",
                    options={name: str(row[col]) for name, col in f.options.items()},
                    correct=_as_list(row[f.correct]) if f.correct else [],
                    incorrect=_as_list(row[f.incorrect]) if f.incorrect else [],
                )
            )
    return items
