"""What every exporter reads from a run folder: manifest, reviewed records and the summary.

``load_run_data(run_dir)`` returns the manifest, the records with reviewer overrides applied (the
same records every figure of ``summary.json`` was computed from) and the summary: ``summary.json``
when the run has one, else a fresh ``build_summary`` (nothing is written). Figures are taken from
the summary as computed in ``audit/``; exporters only reshape them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit import __version__
from audit.core.errors import UsageError
from audit.report.format import level_text

FIGURE_KEYS = ("estimate", "ci_low", "ci_high", "n", "n_clusters")


@dataclass
class RunData:
    run_dir: Path
    manifest: dict[str, Any]
    records: list[dict[str, Any]]
    summary: dict[str, Any]
    overridden: set[str] = field(default_factory=set)  # record keys a reviewer override changed

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id") or self.run_dir.name)

    @property
    def model(self) -> dict[str, Any]:
        return self.manifest.get("model") or {}

    def suite_records(self, suite: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("suite") == suite]


def load_run_data(run_dir: Path | str, *, fresh: bool = False) -> RunData:
    """Read a run folder for export (one-line ``UsageError`` for a folder that is not a run)."""
    from audit.store import overrides as ovr
    from audit.store.run_store import read_manifest, read_records_checked

    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    records, _damaged = read_records_checked(run_dir, manifest)
    review = ovr.load_overrides(run_dir, records, manifest)
    rows = [r if isinstance(r, dict) else _record_dict(r) for r in ovr.apply(records, review)]
    summary = None if fresh else _read_summary(run_dir)
    if summary is None:
        from audit.summary.build import build_summary

        summary = build_summary(run_dir, self_audit=False)
    return RunData(run_dir, manifest, rows, summary, {ov.key for ov in ovr.effective(review)})


def _record_dict(rec: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(rec)


def _read_summary(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "summary.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise UsageError(f"{path}: unreadable summary; rebuild it with 'lm-audit report {run_dir}'") from None
    if not isinstance(data, dict) or not isinstance(data.get("suites"), dict):
        raise UsageError(f"{path}: not an lm-audit summary; rebuild it with 'lm-audit report {run_dir}'")
    return data


# --------------------------------------------------------------------------- figures


def finite(v: Any) -> float | None:
    """A finite float, or None (NaN, inf, None, strings and bools are not figures)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def suite_figures(suite_summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Every headline figure of one suite (metrics, then group gaps) under the names gates use:
    ``{"figure", "kind", "estimate", "ci_low", "ci_high", "n", "higher_is", "ideal", "scale",
    "method", "warnings", "uninformative", "score", "by"}``."""
    out: list[dict[str, Any]] = []
    for m in suite_summary.get("metrics", []) or []:
        out.append(
            {
                "figure": m.get("name"),
                "kind": "metric",
                "metric": m.get("metric"),
                "score": m.get("score"),
                **{k: m.get(k) for k in FIGURE_KEYS},
                "higher_is": m.get("higher_is"),
                "ideal": m.get("ideal"),
                "scale": m.get("scale"),
                "method": m.get("method"),
                "ci_level": m.get("ci_level"),
                "warnings": list(m.get("warnings") or []),
                "uninformative": bool(m.get("uninformative")),
                "by": m.get("by") or {},
            }
        )
    for g in suite_summary.get("groups", []) or []:
        gap = g.get("gap") or {}
        out.append(
            {
                "figure": f"gap({g.get('score')}, {g.get('attribute')})",
                "kind": "gap",
                "metric": "gap",
                "score": g.get("score"),
                **{k: gap.get(k) for k in FIGURE_KEYS},
                "higher_is": "worse",
                "ideal": 0.0,
                "scale": None,
                "method": gap.get("method"),
                "ci_level": gap.get("ci_level"),
                "warnings": list(gap.get("warnings") or []),
                "uninformative": bool(gap.get("uninformative")),
                "max_group": gap.get("max_group"),
                "min_group": gap.get("min_group"),
                "by": {str(g.get("attribute")): g.get("by_group") or {}},
            }
        )
    return out


def cells(by: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(attribute, value, figure)`` for every cell of a metric's ``by`` breakdown."""
    out = []
    for attr, groups in (by or {}).items():
        if not isinstance(groups, dict):
            continue
        for value, fig in groups.items():
            if isinstance(fig, dict) and "estimate" in fig:
                out.append((str(attr), str(value), fig))
    return out


def gate_results(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Every gate result of a summary: per suite, then policy gates that matched no suite."""
    out = [g for s in (summary.get("suites") or {}).values() for g in (s.get("gates") or [])]
    return out + list((summary.get("gates") or {}).get("unmatched") or [])


def verdict(r: dict[str, Any]) -> str:
    """PASS / FAIL / INCONCLUSIVE / ERROR (the shared contract; old summaries fall back on passed)."""
    from audit.gates.evaluate import verdict_of

    return verdict_of(r)


def fmt(v: Any, digits: int = 4) -> str:
    f = finite(v)
    if f is None:
        return "n/a"
    if f == int(f) and abs(f) < 1e6:
        return str(int(f))
    return f"{f:.{digits}g}"


def est_ci(fig: dict[str, Any]) -> str:
    """``0.21 [0.18, 0.25]``"""
    return f"{fmt(fig.get('estimate'))} [{fmt(fig.get('ci_low'))}, {fmt(fig.get('ci_high'))}]"


def figure_text(fig: dict[str, Any], level: float) -> str:
    """``0.21 [0.18, 0.25] (95% CI, n=120)``"""
    n = fig.get("n")
    tail = f", n={n}" if n is not None else ""
    return f"{est_ci(fig)} ({level_text(level)} CI{tail})"


def ci_level(summary: dict[str, Any]) -> float:
    lvl = finite((summary.get("stats") or {}).get("ci_level"))
    return lvl if lvl is not None else 0.95


def safe_name(text: str) -> str:
    """A file-name-safe form of a suite id."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.")
    return s or "suite"


def producer() -> str:
    return f"lm-audit {__version__}"
