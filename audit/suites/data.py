"""Data-file suites: rows of .jsonl/.json/.csv/.txt files become items."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from audit.errors import UsageError
from audit.suites.schema import Item, Suite
from audit.suites.yamlsafe import Where


def _read_rows(data_path: Path) -> list[dict[str, Any]]:
    suffix = data_path.suffix.lower()
    try:
        if suffix == ".jsonl":
            rows = []
            with data_path.open(encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise UsageError(f"{data_path}:{n}: invalid JSON line: {exc.msg}") from None
            return rows
        if suffix == ".json":
            data = json.loads(data_path.read_text(encoding="utf-8"))
            if not isinstance(data, list):
                raise UsageError(f"{data_path}:1: a .json data file must hold a list of objects")
            return data
        if suffix == ".csv":
            with data_path.open(encoding="utf-8", newline="") as fh:
                return list(csv.DictReader(fh))
        if suffix == ".txt":
            with data_path.open(encoding="utf-8") as fh:
                return [{"prompt": line.rstrip("\n")} for line in fh if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{data_path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{data_path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    raise UsageError(f"{data_path}: unsupported data format '{suffix}' (use .jsonl, .json, .csv or .txt)")


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
        hasher.update(data_path.read_bytes())
        rows = _read_rows(data_path)
        f = src.fields
        needed = [c for c in [f.id, f.prompt, f.context, f.correct, f.incorrect, *f.options.values(), *f.attributes] if c]
        needed += list(src.filter)
        clash = sorted(set(f.attributes) & set(src.attributes))
        if clash:
            raise where.error((*base, "attributes"), f"attribute '{clash[0]}' is both a column and a constant")
        row_of: dict[str, int] = {}
        for n, row in enumerate(rows):
            if not isinstance(row, dict):
                raise UsageError(f"{data_path}:{n + 1}: row {n + 1} is not an object")
            missing = [c for c in needed if c not in row]
            if missing:
                raise where.error(
                    (*base, "fields"), f"column '{missing[0]}' not in {data_path.name} (row {n + 1})"
                )
            if any(row[col] not in allowed for col, allowed in src.filter.items()):
                continue
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
            items.append(
                Item(
                    item_id=item_id,
                    prompt=prompt,
                    seed_key=item_id,
                    attributes=attrs,
                    context=str(row[f.context]) if f.context else "",
                    options={name: str(row[col]) for name, col in f.options.items()},
                    correct=_as_list(row[f.correct]) if f.correct else [],
                    incorrect=_as_list(row[f.incorrect]) if f.incorrect else [],
                )
            )
    return items
