"""The run store: one folder per run, ``manifest.json`` plus append-only ``records.jsonl``.

Durability rules, so a killed run loses nothing and duplicates nothing:
- a record is appended only once it is complete (generated and scored), as one line, and the file
  is flushed and fsynced after every batch;
- on open, a torn last line (a write cut by SIGKILL or power loss) is cut off, and any line that
  does not parse, with everything after it, is dropped; duplicate keys keep their first copy;
- the manifest is replaced atomically (write to a temp file, then ``os.replace``).
Re-running with the same ``--out`` and ``--name`` skips the records already present.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from audit.errors import UsageError
from audit.types import Record

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MANIFEST = "manifest.json"
RECORDS = "records.jsonl"


def check_run_id(run_id: str) -> str:
    if not RUN_ID_RE.match(run_id) or ".." in run_id:
        raise UsageError(
            f"invalid run name '{run_id}': use letters, digits, '.', '_' and '-' (at most 128, no path)"
        )
    return run_id


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def repair_records(path: Path, rewrite: bool = True) -> list[dict[str, Any]]:
    """Load ``records.jsonl``: the valid rows, deduplicated, up to the first torn or corrupt line.

    With ``rewrite`` (only the run's writer, holding the run lock, may ask for it) a torn tail is
    also cut off on disk, so appends continue on a clean line. Readers never rewrite: a run that is
    still being written simply shows its last line as not there yet.
    """
    if not path.exists():
        return []
    raw = path.read_bytes()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    good_end = 0
    pos = 0
    clean = True
    while pos < len(raw):
        nl = raw.find(b"\n", pos)
        if nl == -1:  # torn last line: no newline was written
            clean = False
            break
        line = raw[pos:nl]
        try:
            row = json.loads(line) if line.strip() else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            clean = False
            break
        if row is not None:
            if not isinstance(row, dict) or "key" not in row:
                clean = False
                break
            if row["key"] in seen:
                clean = False  # a duplicate: rewrite without it
            else:
                seen.add(row["key"])
                rows.append(row)
        pos = nl + 1
        good_end = pos
    if rewrite and (not clean or good_end != len(raw)):
        body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
        atomic_write_text(path, body)
    return rows


class RunStore:
    """Owns ``<out>/<run_id>/``."""

    def __init__(self, out: Path | str, run_id: str) -> None:
        self.run_id = check_run_id(run_id)
        self.dir = Path(out) / run_id
        self.records_path = self.dir / RECORDS
        self.manifest_path = self.dir / MANIFEST
        self._fh: Any = None
        self._lock_fh: Any = None

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def read_manifest(self) -> dict[str, Any]:
        return read_manifest(self.dir)

    def lock(self) -> None:
        """Take the run's writer lock (released when the process exits), or fail with one line."""
        import fcntl

        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.dir / ".lock", "w")  # noqa: SIM115 - held for the run's lifetime
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_fh.close()
            self._lock_fh = None
            raise UsageError(
                f"run {self.dir} is being written by another process; wait or use another --name"
            ) from None

    def completed_keys(self) -> set[str]:
        """Keys already written; repairs a torn tail (call after ``lock``)."""
        return {r["key"] for r in repair_records(self.records_path, rewrite=True)}

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        atomic_write_json(self.manifest_path, manifest)

    def append(self, records: Iterable[Record]) -> int:
        lines = "".join(r.to_json() + "\n" for r in records)
        if not lines:
            return 0
        if self._fh is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.records_path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        self._fh.write(lines)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return lines.count("\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None


def read_manifest(run_dir: Path | str) -> dict[str, Any]:
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise UsageError(f"not a run folder (no {MANIFEST}): {run_dir}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: corrupt manifest: {exc.msg}") from None


def read_records(run_dir: Path | str) -> list[Record]:
    """Every complete record of a run (repairing a torn tail first)."""
    return [Record.from_dict(r) for r in repair_records(Path(run_dir) / RECORDS, rewrite=False)]

