"""A run's records as one flat frame for the pages: the base columns, ``a:<attribute>`` and
``s:<score>`` columns (``records_to_frame``), cached by the records file's (mtime, size).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.safe_io import RECORDS, parse_records, stamp

ATTR = "a:"  # column prefix of record attributes in the records frame
SCORE = "s:"  # column prefix of record scores
BASE_COLUMNS = ["key", "suite", "item_id", "template_id", "sample", "prompt", "completion"]


def load_records(run_dir: Path, root: Path) -> pd.DataFrame:
    """Every complete record of a run as one flat frame: the base columns, ``a:<attribute>`` and
    ``s:<score>`` columns. Cached by the records file's (mtime, size)."""
    return _records_cached(str(run_dir / RECORDS), str(root), stamp(run_dir / RECORDS))


def records_to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    base: dict[str, list[Any]] = {c: [] for c in BASE_COLUMNS}
    attrs: dict[str, list[Any]] = {}
    scores: dict[str, list[Any]] = {}
    for i, row in enumerate(rows):
        for c in BASE_COLUMNS:
            v = row.get(c)
            base[c].append(v if v is None or isinstance(v, str | int | float) else str(v))
        a = row.get("attributes")
        if isinstance(a, dict):
            for k, v in a.items():
                col = attrs.get(k)
                if col is None:  # a new attribute: pad the rows before it
                    col = attrs[k] = [None] * i
                col.append(None if v is None else str(v))
        s = row.get("scores")
        if isinstance(s, dict):
            for k, v in s.items():
                col = scores.get(k)
                if col is None:
                    col = scores[k] = [math.nan] * i
                col.append(float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan)
        n = i + 1
        for col in attrs.values():
            if len(col) < n:
                col.append(None)
        for col in scores.values():
            if len(col) < n:
                col.append(math.nan)
    frame = pd.DataFrame(base)
    for c in ("prompt", "completion"):
        frame[c] = frame[c].fillna("").astype(str)
    for c in ("key", "item_id"):
        frame[c] = frame[c].astype(str)
    frame["suite"] = frame["suite"].astype(str).astype("category")
    frame["template_id"] = frame["template_id"].astype("string")
    frame["sample"] = pd.to_numeric(frame["sample"], errors="coerce").fillna(0).astype(int)
    extra = {f"{ATTR}{k}": pd.Series(v, dtype="string").astype("category") for k, v in attrs.items()}
    extra.update({f"{SCORE}{k}": pd.Series(v, dtype="float64") for k, v in scores.items()})
    if extra:
        frame = pd.concat([frame, pd.DataFrame(extra)], axis=1)
    return frame


@st.cache_data(max_entries=4, show_spinner="Loading records ...")
def _records_cached(path: str, root: str, stamp_: tuple[int, int]) -> pd.DataFrame:
    return records_to_frame(parse_records(Path(path), Path(root)))


def attr_columns(df: pd.DataFrame) -> list[str]:
    return [c[len(ATTR) :] for c in df.columns if c.startswith(ATTR)]


def score_columns(df: pd.DataFrame) -> list[str]:
    return [c[len(SCORE) :] for c in df.columns if c.startswith(SCORE) and df[c].notna().any()]
