"""Reading run files defensively: confined to the reports folder, bounded in size and depth.

- ``reports_dir()``: the configured reports folder.
- ``confined(root, path)``: ``path`` if it (after following any symlink) stays inside ``root``;
  a symlink that leads out of the reports folder is never followed.
- ``read_json(path, root)``: a JSON file, or ``None`` when it is missing, outside, larger than
  its cap (``MAX_JSON_BYTES``) or nested deeper than ``MAX_DEPTH``. So one damaged run (a
  summary nested 50,000 deep) cannot raise on any page, its own or another run's.
- ``parse_records(path, root)``: ``records.jsonl`` read-only, complete lines only.
- ``scrub(value)``: lone surrogates (a ``\\ud800`` escape in a hand-edited or hostile file parses
  to one) become U+FFFD in every string and key, since no page can encode them; every JSON file
  read here is scrubbed, and so is what audit computes from the raw records for a page.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

REPORTS_ENV = "LM_AUDIT_REPORTS"
MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
SUMMARY = "summary.json"
OVERRIDES = "overrides.jsonl"
MAX_JSON_BYTES = {MANIFEST: 8 << 20, SUMMARY: 64 << 20}
DEFAULT_MAX_BYTES = 16 << 20
MAX_LINE_BYTES = 4 << 20  # one record line
MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


def reports_dir() -> Path:
    """``--reports DIR`` after ``--`` on the streamlit command line, else ``$LM_AUDIT_REPORTS``,
    else ``./reports``."""
    argv = sys.argv[1:]
    for i, arg in enumerate(argv):
        if arg == "--reports" and i + 1 < len(argv):
            return Path(argv[i + 1]).resolve()
        if arg.startswith("--reports="):
            return Path(arg.split("=", 1)[1]).resolve()
    return Path(os.environ.get(REPORTS_ENV) or "reports").resolve()


def confined(root: Path, path: Path) -> Path | None:
    """``path`` resolved, if it lies inside ``root`` (symlinks followed only within it)."""
    try:
        real = path.resolve(strict=False)
        return real if real.is_relative_to(root.resolve()) else None
    except (OSError, RuntimeError, ValueError):  # symlink loops, odd names
        return None


def stamp(path: Path) -> tuple[int, int]:
    """(mtime_ns, size) of a file, the cache key of everything read from it."""
    try:
        st = path.stat()
    except OSError:
        return (0, -1)
    return (st.st_mtime_ns, st.st_size)


def depth_of(value: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of a parsed JSON value, iteratively (stops counting past ``limit``)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def scrub(value: Any) -> Any:
    """``value`` with every lone surrogate, in strings and dict keys at any depth, replaced by
    U+FFFD (iteratively: the depth is bounded by ``MAX_DEPTH`` before this runs, but no recursion
    anyway). Values without one come back as they are."""

    def fix(x: Any) -> Any:
        return _SURROGATE.sub("\ufffd", x) if isinstance(x, str) else x

    top: list[Any] = [value]
    stack: list[tuple[Any, Any]] = [(top, 0)]  # (container, key or index) whose value to fix
    while stack:
        parent, k = stack.pop()
        v = parent[k]
        if isinstance(v, str):
            if _SURROGATE.search(v):
                parent[k] = fix(v)
        elif isinstance(v, list):
            stack.extend((v, i) for i in range(len(v)))
        elif isinstance(v, dict):
            if any(isinstance(key, str) and _SURROGATE.search(key) for key in v):
                fixed = {fix(key): item for key, item in v.items()}
                v.clear()
                v.update(fixed)
            stack.extend((v, key) for key in v)
    return top[0]


def load_json_text(raw: bytes | str) -> Any:
    """Parse JSON; ``None`` when invalid or nested deeper than ``MAX_DEPTH``. Lone surrogates are
    scrubbed (``scrub``)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None
    if depth_of(value) > MAX_DEPTH:
        return None
    if "\\u" in raw if isinstance(raw, str) else b"\\u" in raw:  # a surrogate can only come from an escape
        value = scrub(value)
    return value


def read_json(path: Path, root: Path, max_bytes: int | None = None) -> Any:
    """A JSON file under ``root``, or ``None`` (missing, outside, too big, too deep, invalid)."""
    real = confined(root, path)
    if real is None or not real.is_file():
        return None
    cap = max_bytes or MAX_JSON_BYTES.get(path.name, DEFAULT_MAX_BYTES)
    try:
        if real.stat().st_size > cap:
            return None
        return load_json_text(real.read_bytes())
    except OSError:
        return None


def why_unreadable(path: Path, root: Path) -> str | None:
    """A reason when ``read_json`` would give None for an existing file (for a note on the page)."""
    if not path.exists() and not path.is_symlink():
        return None
    real = confined(root, path)
    if real is None:
        return f"{path.name} links outside the reports folder; not read"
    try:
        size = real.stat().st_size
    except OSError as exc:
        return f"{path.name}: {exc.strerror}"
    cap = MAX_JSON_BYTES.get(path.name, DEFAULT_MAX_BYTES)
    if size > cap:
        return f"{path.name} is {size:,} bytes, over the dashboard's cap of {cap:,}; not read"
    if read_json(path, root) is None:
        return f"{path.name} is not valid JSON or is nested deeper than {MAX_DEPTH} levels; not read"
    return None


def parse_records(path: Path, root: Path | None = None) -> list[dict[str, Any]]:
    """``records.jsonl`` without modifying it: complete JSON lines only, first copy of a key.
    Lines that are torn (no newline yet), over ``MAX_LINE_BYTES``, invalid or too deep are skipped."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    real = confined(root, path) if root is not None else path
    if real is None:
        return rows
    try:
        fh = real.open("rb")
    except OSError:
        return rows
    with fh:
        while True:
            line = fh.readline(MAX_LINE_BYTES + 1)
            if not line:
                break
            if not line.endswith(b"\n"):
                if len(line) > MAX_LINE_BYTES:  # an oversized line: skip to its end
                    while line and not line.endswith(b"\n"):
                        line = fh.readline(MAX_LINE_BYTES + 1)
                    continue
                break  # a torn last line of a run still being written
            row = load_json_text(line)
            if isinstance(row, dict) and isinstance(row.get("key"), str) and row["key"] not in seen:
                seen.add(row["key"])
                rows.append(row)
    return rows
