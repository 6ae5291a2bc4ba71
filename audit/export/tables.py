"""CSV and Parquet tables of a run, for spreadsheets and notebooks: ``records``, ``metrics``,
``groups`` and ``gates`` (the frames of ``audit.api``, same columns).

CSV cells that a spreadsheet would run as a formula (text starting with ``=``, ``+``, ``-``, ``@``,
tab or carriage return: model text is untrusted) get a leading ``'``; Parquet keeps the exact text.
Object columns that mix types (e.g. an attribute that is a number in one suite and text in
another) are written as text in Parquet.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

TABLES = ("records", "metrics", "groups", "gates")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _defuse(v: Any) -> Any:
    if isinstance(v, str) and v.startswith(_FORMULA_START):
        return "'" + v
    return v


def for_csv(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or str(out[c].dtype) in ("string", "str"):
            out[c] = out[c].map(_defuse)
    return out


def for_parquet(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if out[c].dtype != object:
            continue
        kinds = {type(v) for v in out[c].dropna()}
        if len(kinds) > 1 or (kinds and not kinds <= {str, bool, int, float}):
            out[c] = out[c].map(lambda v: None if v is None or v != v else str(v))
    return out


def write_tables(run_dir: Path, out_dir: Path, fmt: str) -> list[Path]:
    """``<out_dir>/<table>.csv`` (or ``.parquet``) for every table; returns the files."""
    from audit.api import load_run

    run = load_run(run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in TABLES:
        df = getattr(run, name)
        path = out_dir / f"{name}.{fmt}"
        if fmt == "csv":
            for_csv(df).to_csv(path, index=False)
        else:
            for_parquet(df).to_parquet(path, index=False)
        paths.append(path)
    return paths
