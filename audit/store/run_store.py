"""The run store: one folder per run, ``manifest.json`` plus append-only ``records.jsonl``.

Durability rules, so a killed run loses nothing and duplicates nothing:
- a record is appended only once it is complete (generated and scored), as one line, and the file
  is flushed and fsynced after every batch;
- on open, a torn last line (a write cut by SIGKILL or power loss) is cut off; a line in the middle
  that does not parse, or holds fields of the wrong type, is moved to ``records.quarantine.jsonl``
  (its record is made again) and never hides the lines after it; duplicate keys keep their first copy (a
  duplicate with different scores or text marks the run damaged for readers);
- readers (``report``, ``gate``, ``compare``, the dashboard) read every line and report each bad one
  as ``records.jsonl:LINE: what is wrong`` (``read_records_checked``); such a run is *damaged*, and a
  damaged, empty or short run never passes a gate or a comparison;
- the manifest is replaced atomically (write to a temp file, then ``os.replace``).
Re-running with the same ``--out`` and ``--name`` skips the records already present.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from audit.core.errors import UsageError
from audit.core.types import Record
from audit.store.records import MAX_REPORTED, json_kind, scan_records, split_lines, to_record

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
    """Load ``records.jsonl``: the valid rows, deduplicated (every line is read; a bad line never
    hides the lines after it).

    With ``rewrite`` (only the run's writer, holding the run lock, may ask for it) the file is made
    clean for appending: a torn tail is cut off, duplicates dropped, and unreadable lines moved to
    ``records.quarantine.jsonl`` (appended with their line numbers), so their records are produced
    again. Readers never rewrite: a run still being written shows its last line as not there yet.
    """
    found = scan_records(path)
    if found.error:
        raise UsageError(f"{path}: {found.error.partition(': ')[2]}")
    if rewrite and found.conflicts:  # lm-audit never writes these: which copy is right is unknown
        raise UsageError(
            f"{path.parent / found.conflicts[0]}; this run cannot be resumed as it is: "
            "move the folder aside and start the run again"
        )
    if rewrite and (found.torn_tail or found.bad_lines or found.n_duplicates):
        raw = path.read_bytes()
        lines, _ = split_lines(raw)
        bad = set(found.bad_lines)
        quarantined = [
            json.dumps({"line": n, "text": line.decode("utf-8", "replace")}, ensure_ascii=False)
            for n, line in lines
            if n in bad
        ]
        if quarantined:
            with (path.parent / QUARANTINE).open("a", encoding="utf-8") as fh:
                fh.write("".join(q + "\n" for q in quarantined))
        body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in found.rows)
        atomic_write_text(path, body)
    return found.rows


QUARANTINE = "records.quarantine.jsonl"


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
        for attempt in range(5):  # a reader's status probe (audit.store.status) holds it for an instant
            try:
                fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError:
                if attempt < 4:
                    time.sleep(0.05)
        self._lock_fh.close()
        self._lock_fh = None
        raise UsageError(f"run {self.dir} is being written by another process; wait or use another --name")

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


MAX_MANIFEST_BYTES = 64 * 1024 * 1024


def read_manifest(run_dir: Path | str) -> dict[str, Any]:
    """The run's manifest, checked for the shape lm-audit relies on (else one-line ``UsageError``)."""
    path = Path(run_dir) / MANIFEST
    if not Path(run_dir).is_dir():
        raise UsageError(f"not a run folder: {run_dir} (give a folder made by 'lm-audit run')")
    if not path.is_file():
        raise UsageError(f"not a run folder (no {MANIFEST}): {run_dir}")
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise UsageError(f"{path}: corrupt manifest: over {MAX_MANIFEST_BYTES // 2**20} MiB")
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{path}: corrupt manifest: not UTF-8 text (binary?)") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: corrupt manifest: {exc.msg} (line {exc.lineno})") from None
    except RecursionError:
        raise UsageError(f"{path}: corrupt manifest: JSON nested too deep") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the manifest: {exc.strerror or exc}") from None
    problem = check_manifest(data)
    if problem:
        raise UsageError(f"{path}: corrupt manifest: {problem}")
    return data


_SUITE_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "path": (str,),
    "title": (str,),
    "task": (str,),
    "protocol": (str,),
    "generation": (dict,),
    "metrics": (list,),
    "gates": (list,),
    "group_attributes": (list,),
    "scorers": (list,),
    "n_items": (int,),
}


def check_manifest(data: Any) -> str | None:
    """What is wrong with a manifest's shape, or None."""
    if not isinstance(data, dict):
        return f"expected a JSON object, found {json_kind(data)}"
    for name, kinds in (("model", (dict,)), ("scorers", (dict,)), ("command", (list,)), ("run_id", (str,))):
        if data.get(name) is not None and not isinstance(data[name], kinds):
            return f"'{name}' must be {json_kind(kinds[0]())}, not {json_kind(data[name])}"
    suites = data.get("suites")
    if not isinstance(suites, dict) or not suites:
        return "'suites' must be an object naming at least one suite" if not isinstance(suites, dict) else "no suites"
    if data.get("seed") is not None and (not isinstance(data["seed"], int) or isinstance(data["seed"], bool)):
        return f"'seed' must be a whole number, not {json_kind(data['seed'])}"
    for sid, sm in suites.items():
        if not isinstance(sm, dict):
            return f"suites.{sid:.60}: must be an object, not {json_kind(sm)}"
        if "path" not in sm:
            return f"suites.{sid:.60}: missing 'path'"
        for name, types in _SUITE_FIELD_TYPES.items():
            v = sm.get(name)
            if v is not None and (not isinstance(v, types) or isinstance(v, bool)):
                return f"suites.{sid:.60}.{name}: must be {json_kind(types[0]())}, not {json_kind(v)}"
        for name in ("metrics", "gates"):
            if any(not isinstance(x, dict) for x in sm.get(name) or []):
                return f"suites.{sid:.60}.{name}: every entry must be an object"
        for name in ("group_attributes", "scorers"):
            if any(not isinstance(x, str) for x in sm.get(name) or []):
                return f"suites.{sid:.60}.{name}: every entry must be a string"
    return None


def expected_records(manifest: dict[str, Any]) -> int | None:
    """How many records the manifest promises: per suite ``n_expected`` when the run recorded one
    (a run that stops early on purpose), else ``n_items x samples``; None when it cannot say."""
    total = 0
    for sm in (manifest.get("suites") or {}).values():
        if isinstance(sm.get("n_expected"), int):
            total += sm["n_expected"]
            continue
        n_items = sm.get("n_items")
        samples = (sm.get("generation") or {}).get("samples", 1)
        if not isinstance(n_items, int) or not isinstance(samples, int):
            return None
        total += n_items * (1 if sm.get("task") == "likelihood" else max(1, samples))
    return total


def read_records_checked(
    run_dir: Path | str, manifest: dict[str, Any] | None = None
) -> tuple[list[Record], dict[str, Any] | None]:
    """Every readable record of a run, and what is wrong with the run (None when healthy).

    The damage dict (``summary["damaged"]``): ``n_unreadable`` (lines that are not a valid record),
    ``unreadable`` (the first 50 as ``records.jsonl:LINE: what is wrong``), ``n_read``,
    ``n_expected`` (from the manifest, or None) and ``reason`` (one line). A run is damaged when a
    line is unreadable, records.jsonl cannot be read, a key was written twice with different scores
    or text (``n_conflicting_duplicates``; the first copy is returned), there are no records, or fewer
    than the manifest promises. Unreadable lines are skipped; the rest are still returned.
    """
    run_dir = Path(run_dir)
    if manifest is None:
        manifest = read_manifest(run_dir)
    found = scan_records(run_dir / RECORDS)
    records = [to_record(r) for r in found.rows]
    suites = set(manifest.get("suites") or {})
    n_read = sum(1 for r in records if r.suite in suites)
    n_expected = expected_records(manifest)
    unreadable = list(found.unreadable)
    n_unreadable = len(found.bad_lines)
    if found.torn_tail and manifest.get("status") == "complete":
        n_unreadable += 1  # a finished run has no half-written line
        unreadable.append(f"{RECORDS}:last: a torn (half-written) line in a finished run")
    reasons = []
    if found.error:
        reasons.append(found.error)
    if n_unreadable:
        reasons.append(f"{n_unreadable} unreadable line(s) in {RECORDS}, first {unreadable[0]}")
    if found.conflicts:  # which copy is right cannot be known: the run's figures cannot be trusted
        reasons.append(f"{len(found.conflicts)} record key(s) written twice with different results, first {found.conflicts[0]}")
        unreadable += found.conflicts[: max(0, MAX_REPORTED - len(unreadable))]
    if n_read == 0:
        reasons.append("the run holds no records")
    elif n_expected is not None and n_read < n_expected:
        status = manifest.get("status") or "unknown"
        hint = "; re-run the same 'lm-audit run' command to resume" if status != "complete" else ""
        reasons.append(f"{n_read} of {n_expected} promised records (status: {status}){hint}")
    if not reasons:
        return records, None
    damage = {
        "n_unreadable": n_unreadable,
        "unreadable": unreadable,
        "n_conflicting_duplicates": len(found.conflicts),
        "n_read": n_read,
        "n_expected": n_expected,
        "reason": "; ".join(reasons),
    }
    return records, damage


def read_records(run_dir: Path | str) -> list[Record]:
    """Every valid record of a run (bad lines skipped; see ``read_records_checked`` for the damage)."""
    found = scan_records(Path(run_dir) / RECORDS)
    if found.error:
        raise UsageError(f"{Path(run_dir) / RECORDS}: {found.error.partition(': ')[2]}")
    return [to_record(r) for r in found.rows]


def describe_damage(damage: dict[str, Any] | None) -> str:
    """One line for reports and the CLI: how many records were unreadable, and why the run fails."""
    if not damage:
        return ""
    expected = damage.get("n_expected")
    of = f" of {expected} promised" if expected is not None else ""
    return (
        f"DAMAGED RUN (never passes): {damage.get('n_read', 0)} records read{of}, "
        f"{damage.get('n_unreadable', 0)} unreadable; {damage.get('reason', '')}"
    )
