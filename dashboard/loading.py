"""Run folders of the reports folder: listing and opening them (``records_frame`` makes the records
one flat frame).

Only folders listed here are ever opened: a run id from the URL or a widget is looked up in the
listing (``run_path``), never joined onto a path. Loaders are ``st.cache_data`` functions keyed by
the files' (mtime, size): a rerun costs a lookup and a run still being written is reloaded when it
changes. Nothing here writes into a run folder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from audit.store.status import run_status
from audit.summary.read import overrides_note
from dashboard.records_frame import load_records
from dashboard.safe_io import (
    MANIFEST,
    OVERRIDES,
    RECORDS,
    SUMMARY,
    confined,
    read_json,
    stamp,
    why_unreadable,
)


def _valid_run_name(name: str) -> bool:
    from audit.store.run_store import RUN_ID_RE

    return bool(RUN_ID_RE.match(name)) and ".." not in name


@dataclass(frozen=True)
class RunEntry:
    run_id: str
    path: str
    model: str
    backend: str
    random_weights: bool
    suites: tuple[str, ...]
    created: str
    status: str
    has_summary: bool
    gates_passed: bool | None
    gates_failed: int
    gates_total: int
    error: str | None = None
    # PASS / FAIL / INCONCLUSIVE / ERROR counts (audit.gates.evaluate.gate_counts); None: an old summary
    gate_verdicts: tuple[int, int, int, int] | None = None
    overrides: str = ""  # "2 applied, 1 verdict(s) changed" when reviewer overrides are in the figures
    overrides_note: str | None = None  # the full line (audit.summary.read.overrides_note)

    @property
    def gates_verdict(self) -> str:
        """The run's verdict over its gates, never PASS while a gate is INCONCLUSIVE, whatever
        ``on_inconclusive`` says (that only sets the exit code)."""
        from audit.gates.text import overall_verdict

        if self.gate_verdicts is None:  # summaries written before verdicts: passed or not
            return "PASS" if self.gates_passed else "FAIL"
        names = ("PASS", "FAIL", "INCONCLUSIVE", "ERROR")
        return overall_verdict([v for v, n in zip(names, self.gate_verdicts, strict=True) for _ in range(n)])

    @property
    def gates_text(self) -> str:
        """``INCONCLUSIVE (2 pass, 0 fail, 4 inconclusive, 0 error of 6)``."""
        if self.gate_verdicts is None:
            return f"{self.gates_verdict} ({self.gates_total - self.gates_failed} of {self.gates_total} pass)"
        counts = ", ".join(f"{n} {v}" for v, n in zip(("pass", "fail", "inconclusive", "error"), self.gate_verdicts,
                                                      strict=True))
        return f"{self.gates_verdict} ({counts} of {self.gates_total})"


def _run_folders(reports: Path) -> list[Path]:
    """Run folders directly under ``reports``: a valid run name, a manifest, and no symlink that
    leads outside the folder."""
    if not reports.is_dir():
        return []
    root = reports.resolve()
    out = []
    for d in sorted(reports.iterdir()):
        if not _valid_run_name(d.name) or not d.is_dir():
            continue
        real = confined(root, d)
        if real is None or real.parent != root:
            continue
        if confined(root, d / MANIFEST) is not None and (d / MANIFEST).is_file():
            out.append(d)
    return out


def list_runs(reports: Path) -> list[RunEntry]:
    """Every run under ``reports``, newest first (cached until a manifest or summary changes)."""
    folders = _run_folders(reports)
    stamps = tuple((d.name, stamp(d / MANIFEST), stamp(d / SUMMARY)) for d in folders)
    return _list_runs_cached(str(reports.resolve()), stamps)


@st.cache_data(max_entries=8, show_spinner=False)
def _list_runs_cached(reports: str, stamps: tuple[Any, ...]) -> list[RunEntry]:
    runs = [_entry(Path(reports) / name, Path(reports)) for name, _m, _s in stamps]
    runs.sort(key=lambda r: (r.created, r.run_id), reverse=True)
    return runs


def _entry(d: Path, root: Path) -> RunEntry:
    error = None
    manifest = read_json(d / MANIFEST, root)
    if not isinstance(manifest, dict):
        error = why_unreadable(d / MANIFEST, root) or "unreadable manifest: not a JSON object"
        manifest = {}
    summary = read_json(d / SUMMARY, root)
    summary = summary if isinstance(summary, dict) else None
    gates = (summary or {}).get("gates")
    gates = gates if isinstance(gates, dict) else {}
    model = manifest.get("model") if isinstance(manifest.get("model"), dict) else {}
    suites = manifest.get("suites") if isinstance(manifest.get("suites"), dict) else {}

    def _int(x: Any) -> int:
        return int(x) if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) else 0

    return RunEntry(
        run_id=d.name,
        path=str(d),
        model=str(model.get("name", "?")),
        backend=str(model.get("backend", "")),
        random_weights=bool(model.get("random_weights", False)),
        suites=tuple(str(s) for s in suites),
        created=str(manifest.get("created") or ""),
        status=run_status(d, manifest) if manifest else "?",  # a killed run's "running" reads interrupted
        has_summary=summary is not None,
        gates_passed=gates.get("passed") if isinstance(gates.get("passed"), bool) else None,
        gates_failed=_int(gates.get("n_failed")),
        gates_total=_int(gates.get("n_total")),
        error=error,
        gate_verdicts=(
            (_int(gates.get("n_pass")), _int(gates.get("n_fail")), _int(gates.get("n_inconclusive")),
             _int(gates.get("n_error")))
            if all(k in gates for k in ("n_pass", "n_fail", "n_inconclusive")) else None
        ),
        overrides=_overrides_short(summary),
        overrides_note=overrides_note(summary) if summary else None,
    )


def _overrides_short(summary: dict[str, Any] | None) -> str:
    eff = (summary or {}).get("overrides_effect")
    if not isinstance(eff, dict) or not eff.get("n_lines"):
        return ""
    changed = eff.get("changed_gates") if isinstance(eff.get("changed_gates"), list) else []
    return f"{eff.get('n_applied', 0)} applied, {len(changed)} verdict(s) changed"


def run_path(reports: Path, run_id: Any) -> Path | None:
    """The folder of ``run_id`` if, and only if, it is one of the listed runs. The returned path
    comes from the listing, never from ``run_id`` itself."""
    if not isinstance(run_id, str):
        return None
    for entry in list_runs(reports):
        if entry.run_id == run_id:
            return Path(entry.path)
    return None


def runs_frame(runs: list[RunEntry]) -> pd.DataFrame:
    rows = []
    for r in runs:
        if r.gates_total:
            gates = r.gates_text
        elif r.has_summary:
            gates = "no gates"
        else:
            gates = "no summary.json"
        rows.append(
            {
                "run": r.run_id,
                "model": r.model + (" (random weights)" if r.random_weights else ""),
                "suites": ", ".join(r.suites),
                "created": r.created,
                "status": r.status,
                "gates": gates,
                "overrides": r.overrides,
            }
        )
    return pd.DataFrame(rows, columns=["run", "model", "suites", "created", "status", "gates", "overrides"])


# --------------------------------------------------------------------------- one run


def load_manifest(run_dir: Path, root: Path) -> dict[str, Any]:
    return _json_cached(str(run_dir / MANIFEST), str(root), stamp(run_dir / MANIFEST)) or {}


def load_summary(run_dir: Path, root: Path) -> dict[str, Any] | None:
    """``summary.json`` as a dict, or ``None`` when missing, unreadable or over the caps."""
    return _json_cached(str(run_dir / SUMMARY), str(root), stamp(run_dir / SUMMARY))


@st.cache_data(max_entries=32, show_spinner=False)
def _json_cached(path: str, root: str, stamp_: tuple[int, int]) -> dict[str, Any] | None:
    data = read_json(Path(path), Path(root))
    return data if isinstance(data, dict) else None


def provisional_summary(run_dir: Path, root: Path) -> tuple[dict[str, Any] | None, str | None]:
    """For a run without summary.json (still running, or killed): the summary ``audit/`` computes
    from the records so far (``audit.summary.build.build_summary``; nothing is written, no self-audit),
    so every figure shown still comes from audit/ with its CI. (summary, None), or (None, why not).
    Cached by the manifest's and records' (mtime, size)."""
    if confined(root, run_dir / RECORDS) is None or not (run_dir / RECORDS).is_file():
        return None, "no readable records.jsonl"
    return _provisional_cached(str(run_dir), str(root), stamp(run_dir / MANIFEST), stamp(run_dir / RECORDS))


@st.cache_data(max_entries=4, show_spinner="Computing a provisional summary from the records ...")
def _provisional_cached(
    run_dir: str, root: str, manifest_stamp: tuple[int, int], records_stamp: tuple[int, int]
) -> tuple[dict[str, Any] | None, str | None]:
    from audit.summary.build import build_summary

    try:
        summary = build_summary(Path(run_dir), self_audit=False)
    except Exception as exc:  # a damaged run must still open: say why, show the records
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    return summary, None


@dataclass
class Run:
    """Everything a page needs about one run."""

    run_id: str
    path: Path
    root: Path
    manifest: dict[str, Any]
    summary: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)

    @property
    def records(self) -> pd.DataFrame:
        return load_records(self.path, self.root)

    @property
    def suites_summary(self) -> dict[str, Any]:
        s = (self.summary or {}).get("suites")
        return s if isinstance(s, dict) else {}

    @property
    def suites_manifest(self) -> dict[str, Any]:
        s = self.manifest.get("suites")
        return s if isinstance(s, dict) else {}

    @property
    def level_text(self) -> str:
        """The CI level this run's figures use, as printed: ``95%``, or ``98.75%`` after --until-decided."""
        from audit.report.format import level_text, summary_level

        return level_text(summary_level(self.summary))

    def suite_summary(self, suite: str) -> dict[str, Any]:
        s = self.suites_summary.get(suite)
        return s if isinstance(s, dict) else {}

    def suite_manifest(self, suite: str) -> dict[str, Any]:
        s = self.suites_manifest.get(suite)
        return s if isinstance(s, dict) else {}

    @property
    def suite_ids(self) -> list[str]:
        return list(dict.fromkeys([*self.suites_manifest, *self.suites_summary]))

    @property
    def schema_ok(self) -> bool:
        return bool(self.summary) and self.summary.get("schema_version") == 1

    def score_direction(self, key: str) -> str:
        """``better``, ``worse`` or ``neutral``: as summary.json records it (from the run's scorers),
        else as ``audit.core.score_directions`` knows the key."""
        from audit.core.score_directions import score_direction

        declared = (self.summary or {}).get("score_directions")
        return score_direction(key, declared if isinstance(declared, dict) else None)

    @property
    def overrides_path(self) -> Path:
        return self.path / OVERRIDES

    def protocol_text(self, suite: str) -> str:
        p = self.suite_summary(suite).get("protocol")
        if isinstance(p, dict) and p.get("text"):
            return str(p["text"])
        g = self.suite_manifest(suite).get("generation")
        if isinstance(g, dict):
            return (
                f"k={g.get('samples')}, {g.get('max_new_tokens')} tokens, T={g.get('temperature')}, "
                f"top_p={g.get('top_p')}"
            )
        return ""


def open_run(reports: Path, run_id: Any) -> Run | None:
    path = run_path(reports, run_id)
    if path is None:
        return None
    root = reports.resolve()
    manifest = load_manifest(path, root)
    summary = load_summary(path, root)
    run = Run(run_id=path.name, path=path, root=root, manifest=manifest, summary=summary)
    for name in (MANIFEST, SUMMARY, RECORDS):
        why = why_unreadable(path / name, root) if name != RECORDS else (
            "records.jsonl links outside the reports folder; not read"
            if (path / name).exists() and confined(root, path / name) is None else None
        )
        if why:
            run.notes.append(why)
    if summary is None and manifest and not (path / SUMMARY).exists():
        summary, why = provisional_summary(path, root)
        run.summary = summary
        run.notes.append(
            "This run has no summary.json yet (still running, or stopped before the end): the figures "
            "below are PROVISIONAL, computed by audit/ from the records written so far, with their CIs. "
            "`lm-audit report <run folder>` writes the summary."
            if summary is not None
            else f"This run has no summary.json and none could be computed from its records ({why}): "
            "only the records are shown. `lm-audit report <run folder>` says what is wrong."
        )
    elif summary is None:
        run.notes.append("This run's summary.json is unreadable: only the records are shown. Rebuild it with `lm-audit report <run folder>`.")
    elif summary.get("schema_version") != 1:
        run.notes.append(f"summary.json has schema_version {summary.get('schema_version')!r} (the dashboard reads version 1): some sections may be missing.")
    damaged = summary.get("damaged") if isinstance(summary, dict) else None
    if isinstance(damaged, dict):
        run.notes.append(f"This run is damaged: {damaged.get('reason') or 'some records are unreadable'}.")
    return run
