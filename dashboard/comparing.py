"""Comparisons of runs, computed by ``audit/`` and turned into tables here (no statistics of our own).

- two runs: ``audit.compare.report.compare_runs`` (what ``lm-audit compare A B`` prints);
- two or more runs (the models page): ``audit.compare.compare_many``: per figure every run's
  estimate with CI on the shared items, rank, significance-group letters and pairwise tests.
Results are cached by the runs' files (mtime, size).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.loading import Run
from dashboard.safe_io import MANIFEST, OVERRIDES, RECORDS, confined, stamp
from dashboard.tables import (
    DELTA_COLUMNS,
    ESTIMATE_COLUMNS,
    Column,
    as_number,
    dicts,
    names,
    pick,
    text,
    text_or_blank,
)


def _unsafe(runs: list[Run]) -> str | None:
    for r in runs:
        for name in (MANIFEST, RECORDS, OVERRIDES):
            p = r.path / name
            if (p.exists() or p.is_symlink()) and confined(r.root, p) is None:
                return f"run {r.run_id}: {name} links outside the reports folder"
        if r.manifest.get("status") != "complete":
            return f"run {r.run_id} is {r.manifest.get('status', 'not complete')!s}, not complete"
    return None


def _stamps(runs: list[Run]) -> tuple[Any, ...]:
    return tuple(stamp(r.path / name) for r in runs for name in (MANIFEST, RECORDS, OVERRIDES))


def official_compare(a: Run, b: Run) -> tuple[dict[str, Any] | None, str]:
    """``lm-audit compare A B``, cached; ``(None, reason)`` when it cannot run (a run still being
    written, a damaged run, a file linking outside the reports folder)."""
    why = _unsafe([a, b])
    if why:
        return None, why
    return _official_compare_cached(str(a.path), str(b.path), _stamps([a, b]))


@st.cache_data(max_entries=8, show_spinner="Comparing the runs (paired intervals and their p-values) ...")
def _official_compare_cached(a: str, b: str, stamps: tuple[Any, ...]) -> tuple[dict[str, Any] | None, str]:
    from audit.compare.report import compare_runs
    from audit.core.errors import UsageError

    try:
        return compare_runs(Path(a), Path(b)), ""
    except UsageError as exc:
        return None, str(exc)
    except Exception as exc:
        return None, f"lm-audit compare failed: {type(exc).__name__}: {exc}"


def suite_figures(result: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(suite, figure entry) of every figure of a comparison's result (odd shapes skipped)."""
    suites = result.get("suites") if isinstance(result.get("suites"), dict) else {}
    for sid, s in suites.items():
        yield from ((sid, f) for f in dicts(s.get("figures") if isinstance(s, dict) else None))


OFFICIAL_COLUMNS: list[Column] = [
    ("figure", "figure", text), ("A", "a", as_number), ("B", "b", as_number), *DELTA_COLUMNS,
    ("higher is", "higher_is", text_or_blank), ("verdict", "verdict", text_or_blank),
    ("shared prompts", "n_shared", as_number), ("method", "method", text_or_blank),
]


def official_compare_frame(result: dict[str, Any]) -> pd.DataFrame:
    rows = [{"suite": sid, **pick(f, OFFICIAL_COLUMNS)} for sid, f in suite_figures(result)]
    return pd.DataFrame(rows, columns=["suite", *names(OFFICIAL_COLUMNS)])


def many_compare(runs: list[Run]) -> tuple[dict[str, Any] | None, str]:
    """``audit.compare.compare_many`` over 2+ runs, cached; ``(None, reason)`` when it cannot run."""
    if len(runs) < 2:
        return None, "pick at least two runs"
    why = _unsafe(runs)
    if why:
        return None, why
    return _many_cached(tuple(str(r.path) for r in runs), _stamps(runs))


@st.cache_data(max_entries=8, show_spinner="Ranking the runs (paired tests on shared items) ...")
def _many_cached(paths: tuple[str, ...], stamps: tuple[Any, ...]) -> tuple[dict[str, Any] | None, str]:
    from audit.core.errors import UsageError

    try:
        from audit.compare import compare_many
    except ImportError as exc:
        return None, f"the multi-run comparison is not available in this installation: {exc}"
    try:
        return compare_many([Path(p) for p in paths]), ""
    except UsageError as exc:
        return None, str(exc)
    except Exception as exc:
        return None, f"the comparison failed: {type(exc).__name__}: {exc}"


RUN_COLUMNS: list[Column] = [
    ("run", "run", text), ("model", "model", text_or_blank), ("rank", "rank", as_number), *ESTIMATE_COLUMNS
]
FIGURE_COLUMNS: list[Column] = [
    ("shared", "n_shared", as_number), ("higher is", "higher_is", text_or_blank), ("ideal", "ideal", as_number)
]
PAIRWISE_COLUMNS: list[Column] = [
    ("A", "a", text), ("B", "b", text), *DELTA_COLUMNS, ("p (Holm)", "p_holm", as_number),
    ("significant", "significant", bool), ("test", "test", text_or_blank),
]


def leaderboard_frame(result: dict[str, Any]) -> pd.DataFrame:
    """One row per (suite, figure, run): estimate, CI, rank and significance letters."""
    rows = [
        {
            "suite": sid,
            "figure": str(f.get("figure")),
            **pick(m, RUN_COLUMNS),
            "group": "uninformative: not ranked" if m.get("uninformative") else str(m.get("letters") or ""),
            **pick(f, FIGURE_COLUMNS),
        }
        for sid, f in suite_figures(result)
        for m in dicts(f.get("models"))
    ]
    cols = ["suite", "figure", *names(RUN_COLUMNS), *names(FIGURE_COLUMNS)]
    cols.insert(5, "group")
    return pd.DataFrame(rows, columns=cols)


def pairwise_frame(result: dict[str, Any], suite: str, figure: str) -> pd.DataFrame:
    rows = [
        pick(p, PAIRWISE_COLUMNS)
        for sid, f in suite_figures(result)
        if sid == suite and f.get("figure") == figure
        for p in dicts(f.get("pairwise"))
    ]
    return pd.DataFrame(rows, columns=names(PAIRWISE_COLUMNS))
