"""The reviewer's workflow: the records behind a figure (influence from ``audit.review.influence``),
overrides (``audit.store.overrides``, appended to the run's overrides.jsonl), and the run's figures and
gates recomputed with them (``audit.summary.build.build_summary``). The only write the dashboard makes
is appending an override line; records.jsonl is never edited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from dashboard.loading import Run
from dashboard.safe_io import MANIFEST, OVERRIDES, RECORDS, confined, stamp
from dashboard.tables import as_list


def figures_of(run: Run, suite: str) -> list[str]:
    """Every figure of a suite a reviewer can drill into, named as gates name them."""
    s = run.suite_summary(suite)
    out: list[str] = []
    for g in as_list(s.get("gates")):
        if isinstance(g, dict) and g.get("metric"):
            out.append(str(g["metric"]))
    for m in as_list(s.get("metrics")):
        if not isinstance(m, dict) or not m.get("name"):
            continue
        out.append(str(m["name"]))
        for attr, cells in (m.get("by") or {}).items() if isinstance(m.get("by"), dict) else []:
            for v in cells if isinstance(cells, dict) else []:
                out.append(f"{m['name']}[{attr}={v}]")
    for g in as_list(s.get("groups")):
        if not isinstance(g, dict):
            continue
        out.append(f"gap({g.get('score')}, {g.get('attribute')})")
        for grp in g.get("by_group") or {} if isinstance(g.get("by_group"), dict) else {}:
            out.append(f"group({g.get('score')}, {g.get('attribute')}={grp})")
    return list(dict.fromkeys(out))


def _why_not(run: Run) -> str | None:
    for name in (MANIFEST, RECORDS, OVERRIDES):
        p = run.path / name
        if (p.exists() or p.is_symlink()) and confined(run.root, p) is None:
            return f"{name} links outside the reports folder"
    return None


def _stamps(run: Run) -> tuple[Any, ...]:
    return tuple(stamp(run.path / n) for n in (MANIFEST, RECORDS, OVERRIDES))


def drill(run: Run, suite: str, figure: str, max_records: int = 300) -> tuple[dict[str, Any] | None, str]:
    """(influence result, "") or (None, why): the records behind ``figure`` with overrides applied."""
    why = _why_not(run)
    if why:
        return None, why
    return _drill_cached(str(run.path), suite, figure, max_records, _stamps(run))


@st.cache_data(max_entries=32, show_spinner="Finding the records behind this figure ...")
def _drill_cached(path: str, suite: str, figure: str, max_records: int, stamps: tuple[Any, ...]) -> tuple[dict[str, Any] | None, str]:
    from audit.core.errors import UsageError
    from audit.review.influence import FigureNotFound, influence
    from audit.store.overrides import apply, load_overrides
    from audit.store.run_store import read_manifest, read_records

    try:
        manifest = read_manifest(path)
        sm = (manifest.get("suites") or {}).get(suite)
        if not isinstance(sm, dict):
            return None, f"suite {suite!r} is not in this run"
        every = read_records(path)
        records = [r for r in apply(every, load_overrides(path, every, manifest)) if r.suite == suite]
        return influence(records, sm, figure, max_records), ""
    except (UsageError, FigureNotFound) as exc:
        return None, str(exc)
    except Exception as exc:
        return None, f"could not compute the records behind {figure!r}: {type(exc).__name__}: {exc}"


def overrides(run: Run) -> tuple[list[Any], str]:
    """The run's override lines, or ([], one line saying what is wrong with the file)."""
    from audit.core.errors import UsageError
    from audit.store.overrides import load_overrides

    why = _why_not(run)
    if why:
        return [], why
    try:
        return load_overrides(run.path), ""
    except UsageError as exc:
        return [], str(exc)


def add_override(run: Run, key: str, *, who: str, why: str, label: str | None = None, score: str | None = None,
                 value: Any = None) -> str:
    """Append one override line; "" on success, else the one-line reason."""
    from audit.core.errors import UsageError
    from audit.store.overrides import append_override

    problem = _why_not(run)
    if problem:
        return problem
    keys = set(run.records["key"]) if not run.records.empty else set()
    try:
        append_override(run.path, key, who=who, why=why, label=label, score=score, value=value, known_keys=keys)
    except UsageError as exc:
        return str(exc)
    except OSError as exc:
        return f"could not write {OVERRIDES}: {exc.strerror}"
    return ""


def recomputed(run: Run) -> tuple[dict[str, Any] | None, str]:
    """The run's summary recomputed with its overrides (as ``lm-audit report`` would), in memory."""
    why = _why_not(run)
    if why:
        return None, why
    policy = (run.summary or {}).get("policy")
    return _recompute_cached(str(run.path), policy if isinstance(policy, str) else None, _stamps(run))


@st.cache_data(max_entries=8, show_spinner="Recomputing figures and gates with the overrides ...")
def _recompute_cached(path: str, policy: str | None, stamps: tuple[Any, ...]) -> tuple[dict[str, Any] | None, str]:
    from audit.core.errors import UsageError
    from audit.summary.build import build_summary

    pol = Path(policy) if policy and Path(policy).is_file() else None
    try:
        return build_summary(Path(path), pol, self_audit=False), ""
    except UsageError as exc:
        return None, str(exc)
    except Exception as exc:
        return None, f"could not recompute: {type(exc).__name__}: {exc}"


def write_reports(run: Run) -> str:
    """Rewrite summary.json, report.md and report.html with the overrides (``lm-audit report``)."""
    from audit.core.errors import UsageError
    from audit.report.write import write_reports as write
    from audit.summary.build import build_summary

    why = _why_not(run)
    if why:
        return why
    policy = (run.summary or {}).get("policy")
    pol = Path(policy) if isinstance(policy, str) and Path(policy).is_file() else None
    try:
        write(run.path, build_summary(run.path, pol))
    except UsageError as exc:
        return str(exc)
    return ""
