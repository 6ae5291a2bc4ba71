"""Comparisons of runs, computed by ``audit/`` and turned into tables here (no statistics of our own).

- two runs: ``audit.compare.report.compare_runs`` (what ``lm-audit compare A B`` prints);
- two or more runs (the models page): ``audit.compare.compare_many``: per figure every run's
  estimate with CI on the shared items, rank, significance-group letters and pairwise tests.
Results are cached by the runs' files (mtime, size).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.loading import Run
from dashboard.safe_io import MANIFEST, OVERRIDES, RECORDS, confined, stamp
from dashboard.tables import as_list, as_number


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


def official_compare_frame(result: dict[str, Any]) -> pd.DataFrame:
    rows = []
    suites = result.get("suites") if isinstance(result.get("suites"), dict) else {}
    for sid, s in suites.items():
        for f in as_list(s.get("figures") if isinstance(s, dict) else None):
            if not isinstance(f, dict):
                continue
            rows.append(
                {
                    "suite": sid,
                    "figure": str(f.get("figure")),
                    "A": as_number(f.get("a")),
                    "B": as_number(f.get("b")),
                    "delta (B - A)": as_number(f.get("delta")),
                    "delta ci_low": as_number(f.get("ci_low")),
                    "delta ci_high": as_number(f.get("ci_high")),
                    "p": as_number(f.get("p_value")),
                    "higher is": str(f.get("higher_is") or ""),
                    "verdict": str(f.get("verdict") or ""),
                    "shared prompts": as_number(f.get("n_shared")),
                    "method": str(f.get("method") or ""),
                }
            )
    cols = ["suite", "figure", "A", "B", "delta (B - A)", "delta ci_low", "delta ci_high", "p", "higher is",
            "verdict", "shared prompts", "method"]
    return pd.DataFrame(rows, columns=cols)


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


def leaderboard_frame(result: dict[str, Any]) -> pd.DataFrame:
    """One row per (suite, figure, run): estimate, CI, rank and significance letters."""
    rows = []
    suites = result.get("suites") if isinstance(result.get("suites"), dict) else {}
    for sid, s in suites.items():
        for f in as_list(s.get("figures") if isinstance(s, dict) else None):
            if not isinstance(f, dict):
                continue
            for m in as_list(f.get("models")):
                if not isinstance(m, dict):
                    continue
                rows.append(
                    {
                        "suite": sid,
                        "figure": str(f.get("figure")),
                        "run": str(m.get("run")),
                        "model": str(m.get("model") or ""),
                        "rank": as_number(m.get("rank")),
                        "group": "uninformative: not ranked" if m.get("uninformative") else str(m.get("letters") or ""),
                        "estimate": as_number(m.get("estimate")),
                        "ci_low": as_number(m.get("ci_low")),
                        "ci_high": as_number(m.get("ci_high")),
                        "shared": as_number(f.get("n_shared")),
                        "higher is": str(f.get("higher_is") or ""),
                        "ideal": as_number(f.get("ideal")),
                    }
                )
    cols = ["suite", "figure", "run", "model", "rank", "group", "estimate", "ci_low", "ci_high", "shared",
            "higher is", "ideal"]
    return pd.DataFrame(rows, columns=cols)


def pairwise_frame(result: dict[str, Any], suite: str, figure: str) -> pd.DataFrame:
    rows = []
    s = (result.get("suites") or {}).get(suite) or {}
    for f in as_list(s.get("figures")):
        if not isinstance(f, dict) or f.get("figure") != figure:
            continue
        for p in as_list(f.get("pairwise")):
            if isinstance(p, dict):
                rows.append(
                    {
                        "A": str(p.get("a")),
                        "B": str(p.get("b")),
                        "delta (B - A)": as_number(p.get("delta")),
                        "delta ci_low": as_number(p.get("ci_low")),
                        "delta ci_high": as_number(p.get("ci_high")),
                        "p": as_number(p.get("p_value")),
                        "p (Holm)": as_number(p.get("p_holm")),
                        "significant": bool(p.get("significant")),
                        "test": str(p.get("test") or ""),
                    }
                )
    cols = ["A", "B", "delta (B - A)", "delta ci_low", "delta ci_high", "p", "p (Holm)", "significant", "test"]
    return pd.DataFrame(rows, columns=cols)
