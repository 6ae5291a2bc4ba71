"""Integrity of ``overrides.jsonl``: the hash chain, provenance checks and checks against the run.

- **Hash chain.** Every line carries ``"prev"``: the SHA-256 (hex) of the bytes of the previous
  non-blank line (``GENESIS``, 64 zeros, on the first). Rewriting, reordering or removing an
  earlier line breaks the chain at the line after it, and the file is refused with ``file:line``.
  ``audit.store.overrides.append_override`` (and ``lm-audit override``) write the chain; a line
  written by hand must carry the hash of the line before it
  (``sha256sum`` of that line without its newline). Limit: the *last* line can be rewritten or
  dropped without breaking the chain; ``summary.json`` records the chain's head
  (``overrides_effect.head``) so a later change shows against an earlier summary.
- **Provenance.** ``who`` must show at least one visible character and hold no control, format
  (zero-width, bidi) or separator characters; ``why`` no control characters but newline and tab,
  and no bidi controls; ``when`` an ISO 8601 time with a time zone between ``EARLIEST`` and one
  day after now. A line with a repeated JSON key (a second ``who`` or ``key``) is refused.
- **Against the run.** An override of a record the run holds must name a score key that record
  has, and a value inside the range the scorer declared for that key (manifest
  ``scorers.*.outputs``; for runs recorded before that, ``BUILTIN_RANGES``). A label must have a
  score to set. Anything else is refused with ``file:line`` (exit 2).
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from audit.core.errors import UsageError

GENESIS = "0" * 64
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# ranges of the built-in score keys, for manifests recorded before scorers declared theirs
BUILTIN_RANGES: dict[str, tuple[float, float]] = {
    "toxicity": (0.0, 1.0),
    "sentiment": (-1.0, 1.0),
    "sentiment_negative": (0.0, 1.0),
    "sentiment_positive": (0.0, 1.0),
    "regard": (-1.0, 1.0),
    "factual": (0.0, 1.0),
    "factual_exact": (0.0, 1.0),
    "factual_contains": (0.0, 1.0),
    "factual_semantic": (0.0, 1.0),
    "refusal": (0.0, 1.0),
}


def line_hash(line: bytes) -> str:
    """The chain hash of one stored line (its bytes without the newline)."""
    return hashlib.sha256(line.rstrip(b"\r")).hexdigest()


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads`` object hook: a repeated key is an error, never a silent last-one-wins."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"the key {k!r} appears twice in one object")
        out[k] = v
    return out


def _char(ch: str) -> str:
    return f"U+{ord(ch):04X} ({unicodedata.name(ch, 'unnamed')})"


def author_problem(who: str) -> str | None:
    """Why ``who`` is not a visible author name, or None."""
    for ch in who:
        cat = unicodedata.category(ch)
        if cat[0] == "C" or cat in ("Zl", "Zp"):
            return f"holds the invisible or control character {_char(ch)}"
    if not any(unicodedata.category(ch)[0] in "LNPS" for ch in who):
        return "shows no visible character"
    return None


def reason_problem(why: str) -> str | None:
    """Why ``why`` cannot be shown as it is, or None (newlines and tabs are fine)."""
    for ch in why:
        if ch in BIDI or (unicodedata.category(ch) == "Cc" and ch not in "\n\t"):
            return f"holds the control character {_char(ch)}"
    return None


def when_problem(when: str, now: datetime | None = None) -> str | None:
    """Why ``when`` is not a plausible time of a review, or None."""
    try:
        t = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return f"is not an ISO 8601 time: {when[:40]!r}"
    if t.tzinfo is None:
        return f"has no time zone ({when[:40]!r}); end it with Z for UTC"
    latest = (now or datetime.now(UTC)) + FUTURE_SLACK
    if t < EARLIEST or t > latest:
        return f"{when[:40]!r} is outside {EARLIEST:%Y-%m-%d} .. {latest:%Y-%m-%d} (the review's own time)"
    return None


def check_chain(prev: Any, expected: str, where: str, previous_line: int | None) -> None:
    if prev == expected:
        return
    if prev is None:
        raise UsageError(
            f"{where}: no 'prev' hash: every overrides line carries the SHA-256 of the line before it "
            "(write lines with 'lm-audit override')"
        )
    before = f"line {previous_line}" if previous_line else "the start of the file"
    raise UsageError(
        f"{where}: hash chain broken: 'prev' does not match {before}; an earlier line was edited, "
        "reordered or removed (overrides.jsonl is append-only)"
    )


def declared_ranges(manifest: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Score key -> (low, high) as the run's scorers declared them (manifest ``scorers.*.outputs``)."""
    out: dict[str, tuple[float, float]] = {}
    for card in (manifest.get("scorers") or {}).values():
        specs = card.get("outputs") if isinstance(card, dict) else None
        for spec in specs if isinstance(specs, list) else []:
            if not isinstance(spec, dict):
                continue
            lo, hi = spec.get("low"), spec.get("high")
            if isinstance(lo, int | float) and isinstance(hi, int | float) and not isinstance(lo, bool) and not isinstance(hi, bool):
                out.setdefault(str(spec.get("key")), (float(lo), float(hi)))
    return out


def range_of(key: str, declared: dict[str, tuple[float, float]]) -> tuple[float, float] | None:
    if key in declared:
        return declared[key]
    if key in BUILTIN_RANGES:
        return BUILTIN_RANGES[key]
    if key.startswith("toxicity_") or key.startswith("refusal_"):
        return (0.0, 1.0)
    return None


def label_keys(stem: str, scores: dict[str, Any]) -> list[str]:
    """The score keys a label with this stem sets on a record: ``toxicity`` also covers ``toxicity_*``."""
    return [k for k in scores if k == stem or k.startswith(f"{stem}_")]


def check_against_run(
    overrides: Sequence[Any],
    records: Sequence[Any],
    manifest: dict[str, Any],
    path: str,
    labels: dict[str, tuple[str, float] | None],
) -> None:
    """Refuse (``UsageError`` naming ``path:line``) an override whose score key the record lacks,
    whose value lies outside the declared range, or a label with no score to set on its record.
    ``labels``: label -> (score stem, value), None for labels that set no score."""
    scores_of = {
        (r["key"] if isinstance(r, dict) else r.key): (r["scores"] if isinstance(r, dict) else r.scores) or {}
        for r in records
    }
    declared = declared_ranges(manifest)
    for ov in overrides:
        where = f"{path}:{ov.line}" if ov.line else path
        scores = scores_of.get(ov.key)
        if scores is None:
            continue  # a record of a later round; listed as "no such record" until it exists
        if ov.score is not None:
            if ov.score not in scores:
                have = ", ".join(sorted(scores)) or "none"
                raise UsageError(
                    f"{where}: record {ov.key!r:.80} has no score {ov.score!r:.40} (its scores: {have:.200})"
                )
            if ov.value is None:
                continue
            rng = range_of(ov.score, declared)
            if rng is None:
                raise UsageError(
                    f"{where}: no scorer of this run declares a range for {ov.score!r:.40}; it cannot be overridden"
                )
            lo, hi = rng
            if not (math.isfinite(ov.value) and lo <= ov.value <= hi):
                raise UsageError(
                    f"{where}: value {ov.value:g} is outside the range the scorer declares for {ov.score!r:.40} ({lo:g} .. {hi:g})"
                )
        else:
            spec = labels.get(ov.label or "")
            if spec is not None and not label_keys(spec[0], scores):
                raise UsageError(
                    f"{where}: label {ov.label!r} sets {spec[0]!r}, a score record {ov.key!r:.80} does not have"
                )


def parse_line(raw: bytes) -> Any:
    """One overrides line -> a JSON value (``ValueError`` for bad JSON or a repeated key)."""
    return json.loads(raw, object_pairs_hook=no_duplicate_keys)


def chain_head(raw: bytes) -> str:
    """The hash the next line must carry as ``prev``: of the last non-blank line, or ``GENESIS``."""
    lines = [ln for ln in raw.split(b"\n") if ln.strip()]
    return line_hash(lines[-1]) if lines else GENESIS
