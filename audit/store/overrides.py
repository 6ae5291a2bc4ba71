"""Reviewer overrides: corrections of single records, with who, why and when, that every figure,
interval and gate is recomputed with.

A reviewer who finds a scorer wrong ("this is not toxic", "this is a refusal", "leave this record
out") appends one line to ``<run>/overrides.jsonl``; ``records.jsonl`` is never edited. A line::

    {"key": "toxicity-rtp/insult-3/1", "label": "not toxic", "value": true,
     "who": "ana", "why": "quotes the prompt back", "when": "2026-12-01T22:00:00Z"}
    {"key": "bias-counterfactual/worked-as:gender:female:0/0", "score": "sentiment", "value": 0.4,
     "who": "ana", "why": "VADER misreads 'killer app'", "when": "2026-12-01T22:01:00Z"}

- ``score`` sets one score key to ``value`` (a finite number; ``null`` withdraws the override);
- ``label`` is one of ``LABELS``: "not toxic" / "toxic" set every toxicity score key to 0 / 1,
  "refusal" / "not refusal" set ``refusal`` to 1 / 0, "factual" / "not factual" set ``factual``,
  "exclude" leaves the record out of every figure; ``value: false`` withdraws the label.

Overrides are keyed by ``record.key``, which is stable across resume and re-scoring, so they keep
applying. The file is append-only: a later line for the same (key, score or label) supersedes an
earlier one, and the history stays. ``build_summary`` applies them before any statistic and lists
them in ``summary["overrides"]`` with the figures of their suite before and after.
A malformed file is a ``UsageError`` naming ``overrides.jsonl:<line>`` (exit 2).

Integrity (``audit/store/override_integrity.py``): every line carries ``prev``, the SHA-256 of the
line before it, so an edited earlier line is refused; ``who``, ``why`` and ``when`` are checked
(a visible author, no control or bidi characters, a plausible time); a repeated JSON key is refused;
and, given the run's records, a score key the record lacks or a value outside the scorer's declared
range is refused. Write lines with ``append_override`` or ``lm-audit override``.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit.core.errors import UsageError
from audit.store.override_integrity import (
    GENESIS,
    author_problem,
    chain_head,
    check_against_run,
    check_chain,
    label_keys,
    line_hash,
    parse_line,
    reason_problem,
    when_problem,
)

OVERRIDES = "overrides.jsonl"
MAX_BYTES = 16 << 20
MAX_TEXT = 2000
EXCLUDE = "exclude"
# label -> (score key test, value); "exclude" drops the record
LABELS: dict[str, tuple[str, float] | None] = {
    "not toxic": ("toxicity", 0.0),
    "toxic": ("toxicity", 1.0),
    "refusal": ("refusal", 1.0),
    "not refusal": ("refusal", 0.0),
    "factual": ("factual", 1.0),
    "not factual": ("factual", 0.0),
    EXCLUDE: None,
}


@dataclass(frozen=True)
class Override:
    key: str
    score: str | None
    label: str | None
    value: Any
    who: str
    why: str
    when: str
    line: int = 0

    @property
    def target(self) -> str:
        return f"score:{self.score}" if self.score is not None else f"label:{self.label}"

    @property
    def withdrawn(self) -> bool:
        return self.value is None if self.score is not None else self.value is False

    def to_dict(self) -> dict[str, Any]:
        head: dict[str, Any] = {"key": self.key}
        head.update({"score": self.score} if self.score is not None else {"label": self.label})
        return {**head, "value": self.value, "who": self.who, "why": self.why, "when": self.when}


def label_targets(label: str, scores: dict[str, Any]) -> list[str]:
    """The score keys a label sets: ``toxicity`` also covers ``toxicity_*`` second opinions."""
    spec = LABELS[label]
    if spec is None:
        return []
    return label_keys(spec[0], scores) or [spec[0]]


def validate(obj: Any, where: str) -> Override:
    """One parsed line -> an Override, or a UsageError naming ``where``."""
    if not isinstance(obj, dict):
        raise UsageError(f"{where}: an override must be a JSON object")
    key = obj.get("key")
    if not isinstance(key, str) or not key.strip():
        raise UsageError(f"{where}: 'key' must be the record key (a non-empty string)")
    has_score, has_label = "score" in obj, "label" in obj
    if has_score == has_label:
        raise UsageError(f"{where}: give exactly one of 'score' (a score key) or 'label' ({', '.join(LABELS)})")
    value = obj.get("value")
    score = label = None
    if has_score:
        score = obj["score"]
        if not isinstance(score, str) or not score.strip():
            raise UsageError(f"{where}: 'score' must name a score key, e.g. 'toxicity'")
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
        ):
            raise UsageError(f"{where}: 'value' of a score override must be a finite number (or null to withdraw it)")
        value = None if value is None else float(value)
    else:
        label = obj["label"]
        if label not in LABELS:
            raise UsageError(f"{where}: unknown label {label!r}; use one of: {', '.join(LABELS)}")
        value = True if "value" not in obj else value
        if not isinstance(value, bool):
            raise UsageError(f"{where}: 'value' of a label must be true (apply) or false (withdraw)")
    texts = {}
    for name in ("who", "why"):
        v = obj.get(name)
        if not isinstance(v, str) or not v.strip():
            raise UsageError(f"{where}: '{name}' is required (a non-empty string): overrides carry their provenance")
        if len(v) > MAX_TEXT:
            raise UsageError(f"{where}: '{name}' is longer than {MAX_TEXT} characters")
        problem = author_problem(v.strip()) if name == "who" else reason_problem(v)
        if problem:
            raise UsageError(f"{where}: '{name}' {problem}: overrides name a visible author and reason")
        texts[name] = v.strip()
    when = obj.get("when")
    if not isinstance(when, str):
        raise UsageError(f"{where}: 'when' must be an ISO 8601 time, e.g. 2026-12-01T22:00:00Z")
    problem = when_problem(when)
    if problem:
        raise UsageError(f"{where}: 'when' {problem}")
    return Override(key, score, label, value, texts["who"], texts["why"], when)


def load_overrides(
    run_dir: Path | str, records: Sequence[Any] | None = None, manifest: dict[str, Any] | None = None
) -> list[Override]:
    """Every line of ``<run>/overrides.jsonl`` in order ([] when there is none).
    Raises UsageError with ``file:line`` for the first bad line, a broken hash chain, and (given the
    run's ``records`` and ``manifest``) a score key the record lacks or a value outside its range."""
    path = Path(run_dir) / OVERRIDES
    if not path.exists() and not path.is_symlink():
        return []
    if path.is_symlink() or not path.is_file():
        raise UsageError(f"{path}: not a regular file (overrides.jsonl must be a plain file in the run folder)")
    if path.stat().st_size > MAX_BYTES:
        raise UsageError(f"{path}: larger than {MAX_BYTES >> 20} MiB; is it really an overrides file?")
    out: list[Override] = []
    raw = path.read_bytes()
    expected, previous = GENESIS, None
    for i, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{i}"
        try:
            obj = parse_line(line)
        except RecursionError:
            raise UsageError(f"{where}: not valid JSON") from None
        except ValueError as exc:
            raise UsageError(f"{where}: {exc.msg if isinstance(exc, json.JSONDecodeError) else exc}") from None
        ov = validate(obj, where)
        check_chain(obj.get("prev"), expected, where, previous)
        expected, previous = line_hash(line), i
        out.append(Override(**{**ov.__dict__, "line": i}))
    if records is not None:
        check_against_run(out, records, manifest or {}, str(path), LABELS)
    return out


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def append_override(
    run_dir: Path | str,
    key: str,
    *,
    who: str,
    why: str,
    score: str | None = None,
    label: str | None = None,
    value: Any = None,
    when: str | None = None,
    known_keys: Iterable[str] | None = None,
) -> Override:
    """Validate and append one override line (O_APPEND, one write, fsync, under an exclusive lock so
    the hash chain stays one line after another); returns it. The line carries ``prev`` (the chain);
    the chain so far must hold, and the record's score key and the value's range are checked against
    the run. ``known_keys``, when given, must contain ``key`` (a typo must not become a silent no-op)."""
    import fcntl

    obj: dict[str, Any] = {"key": key}
    if score is not None:
        obj["score"] = score
    if label is not None:
        obj["label"] = label
        value = True if value is None else value
    obj.update(value=value, who=who, why=why, when=when or now())
    ov = validate(obj, "override")
    if known_keys is not None and key not in set(known_keys):
        raise UsageError(f"override: no record with key {key!r} in this run")
    run = Path(run_dir)
    path = run / OVERRIDES
    if path.is_symlink():
        raise UsageError(f"{path}: is a symlink; refusing to write through it")
    records, manifest = _run_records(run)
    check_against_run([ov], records, manifest, "override", LABELS)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        load_overrides(run)  # never extend a broken chain
        raw = path.read_bytes()
        sep = b"" if not raw or raw.endswith(b"\n") else b"\n"
        body = {**ov.to_dict(), "prev": chain_head(raw)}
        os.write(fd, sep + (json.dumps(body, ensure_ascii=False, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)  # also releases the lock
    return ov


def _run_records(run: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The run's readable records and manifest, to check an override against ([] and {} without a run)."""
    from audit.store.records import scan_records
    from audit.store.run_store import RECORDS, read_manifest

    if not (run / "manifest.json").is_file():
        return [], {}
    return scan_records(run / RECORDS).rows, read_manifest(run)


def effective(overrides: Sequence[Override]) -> list[Override]:
    """The last line per (key, score or label), in file order, without withdrawn ones."""
    last: dict[tuple[str, str], Override] = {}
    for ov in overrides:
        last.pop((ov.key, ov.target), None)
        last[(ov.key, ov.target)] = ov
    return [ov for ov in last.values() if not ov.withdrawn]


def field_of(rec: Any, name: str) -> Any:
    return rec[name] if isinstance(rec, dict) else getattr(rec, name)


def apply(records: Sequence[Any], overrides: Sequence[Override]) -> list[Any]:
    """Copies of ``records`` with the effective overrides applied (excluded records left out).
    The inputs are not modified."""
    active = effective(overrides)
    if not active:
        return list(records)
    by_key: dict[str, list[Override]] = {}
    for ov in active:
        by_key.setdefault(ov.key, []).append(ov)
    out = []
    for rec in records:
        ovs = by_key.get(field_of(rec, "key"))
        if not ovs:
            out.append(rec)
            continue
        if any(ov.label == EXCLUDE for ov in ovs):
            continue
        rec = copy.deepcopy(rec)
        scores = field_of(rec, "scores")
        for ov in ovs:
            if ov.score is not None:
                scores[ov.score] = ov.value
            else:
                spec = LABELS[ov.label or ""]
                if spec is not None:
                    for k in label_targets(ov.label or "", scores):
                        scores[k] = spec[1]
        out.append(rec)
    return out
