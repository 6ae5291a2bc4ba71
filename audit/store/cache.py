"""Generation cache: completions keyed by (model fingerprint, prompt, params, seed, key, sample).

A SQLite file in the lm-audit cache dir (``LM_AUDIT_CACHE_DIR`` or the user cache dir). Re-scoring,
re-running with other scorers, or resuming never regenerates a completion it has seen. Safe for
several processes (WAL mode, busy timeout), so Ray workers on one machine can share it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from audit.core.types import Completion, GenParams, GenRequest


def cache_key(fingerprint: str, req: GenRequest, params: GenParams, seed: int) -> str:
    blob = json.dumps(
        [fingerprint, req.prompt, params.to_dict(), seed if not params.greedy else None, req.key, req.sample],
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _storable(text: str) -> str | bytes:
    """Completions are cached as they came (the runner repairs invalid Unicode after the cache, so
    a cached re-run notes the same repair); text SQLite cannot encode is kept as raw bytes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")
    return text


class GenerationCache:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS generations (k TEXT PRIMARY KEY, text TEXT NOT NULL, n_tokens INTEGER)"
        )

    def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            marks = ",".join("?" * len(chunk))
            for k, text, n in self._db.execute(
                f"SELECT k, text, n_tokens FROM generations WHERE k IN ({marks})", chunk
            ):
                if isinstance(text, bytes):  # stored raw (lone surrogates): see put_many
                    text = text.decode("utf-8", "surrogatepass")
                found[k] = Completion(text=text, n_tokens=n or 0, cached=True)
        return found

    def put_many(self, items: Iterable[tuple[str, Completion]]) -> None:
        rows = [(k, _storable(c.text), c.n_tokens) for k, c in items]
        if rows:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO generations VALUES (?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()
