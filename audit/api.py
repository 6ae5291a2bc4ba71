"""A pandas API over run folders: ``load_run(dir)`` and ``load_runs(dir)``.

    >>> from audit import load_run, load_runs
    >>> run = load_run("reports/smol-bias")
    >>> run.records.groupby(["suite", "gender"])["toxicity"].mean()   # one row per record
    >>> run.metrics.query("attribute.isna()")[["suite", "figure", "estimate", "ci_low", "ci_high"]]
    >>> run.gates[["suite", "metric", "verdict", "value", "threshold"]]
    >>> runs = load_runs("reports")                                    # every run, with run_id
    >>> runs.metrics.pivot_table(index="figure", columns="run_id", values="estimate")

Frames (each with a ``run_id`` column):

- ``records``: one row per record: ``run_id, key, suite, item_id, template_id, sample, prompt,
  completion, n_tokens, overridden``, then one column per group attribute (``attribute_columns``)
  and one float column per score key (``score_columns``; NaN where a score was not computed). A
  name that clashes with a base column gets an ``attr_`` / ``score_`` prefix. Reviewer overrides
  (``overrides.jsonl``) are applied, as for every figure (``load_run(dir, reviewed=False)``: raw);
- ``metrics``: one row per figure of ``summary.json``: suite metrics overall (``attribute`` and
  ``group`` empty) and per cell of their ``by`` breakdown, and group gaps (``kind == "gap"``,
  with ``max_group``/``min_group``); ``estimate, ci_low, ci_high, n, n_clusters, ci_level, method,
  higher_is, ideal, scale, uninformative, warnings``;
- ``groups``: one row per (suite, score, attribute, group) with the group's estimate and CI and
  its difference from the overall figure (``vs_overall*``);
- ``gates``: one row per gate with ``verdict`` (PASS / FAIL / INCONCLUSIVE / ERROR), ``passed``,
  the figure, CI, bound, value, threshold, ``needed`` text and ``error``;
- ``tests``: paired tests between groups (p-values, Holm, effect sizes).

``manifest`` and ``summary`` are the run's JSON as dicts. Figures come from ``summary.json``
(computed by ``audit.summary.build``; a run without one gets a fresh, unsaved summary); frames are
built on first use and kept. ``import audit`` stays light: pandas is imported here, lazily.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audit.core.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

BASE_COLUMNS = ("run_id", "key", "suite", "item_id", "template_id", "sample", "prompt", "completion",
                "n_tokens", "overridden")
FIGURE_COLUMNS = ("estimate", "ci_low", "ci_high", "n", "n_clusters", "ci_level", "method")


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def _figure_row(fig: dict[str, Any]) -> dict[str, Any]:
    row = {k: fig.get(k) for k in FIGURE_COLUMNS}
    for k in ("estimate", "ci_low", "ci_high"):
        row[k] = _num(row[k])
    warnings = fig.get("warnings") or []
    row["warnings"] = "; ".join(str(w) for w in warnings) if isinstance(warnings, list) else str(warnings)
    return row


def _counts(df: pd.DataFrame, summary: dict[str, Any]) -> pd.DataFrame:
    """Integer counts as nullable ints; a missing CI level is the run's (summary ``stats``)."""
    import pandas as pd

    from audit.export.common import ci_level

    for c in ("n", "n_clusters"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    df["ci_level"] = pd.to_numeric(df["ci_level"], errors="coerce").fillna(ci_level(summary))
    return df


class AuditRun:
    """One run folder as pandas frames (see the module docstring)."""

    def __init__(self, run_dir: Path | str, *, reviewed: bool = True) -> None:
        from audit.store.run_store import read_manifest

        self.path = Path(run_dir)
        self.manifest: dict[str, Any] = read_manifest(self.path)
        self.reviewed = reviewed
        self.run_id = str(self.manifest.get("run_id") or self.path.name)

    def __repr__(self) -> str:
        return f"AuditRun({str(self.path)!r}, run_id={self.run_id!r})"

    # ------------------------------------------------------------------ plain data

    @cached_property
    def summary(self) -> dict[str, Any]:
        path = self.path / "summary.json"
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                raise UsageError(f"{path}: unreadable summary; rebuild it with 'lm-audit report {self.path}'") from None
            if isinstance(data, dict) and isinstance(data.get("suites"), dict):
                return data
            raise UsageError(f"{path}: not an lm-audit summary; rebuild it with 'lm-audit report {self.path}'")
        from audit.summary.build import build_summary

        return build_summary(self.path, self_audit=False)

    def _rows(self) -> tuple[list[dict[str, Any]], set[str]]:
        from dataclasses import asdict

        from audit.store import overrides as ovr
        from audit.store.run_store import read_records_checked

        records, _ = read_records_checked(self.path, self.manifest)
        review = ovr.load_overrides(self.path, records, self.manifest) if self.reviewed else []
        rows = [r if isinstance(r, dict) else asdict(r) for r in ovr.apply(records, review)]
        return rows, {ov.key for ov in ovr.effective(review)}

    # ------------------------------------------------------------------ frames

    @property
    def records(self) -> pd.DataFrame:
        return self._records[0]

    @property
    def attribute_columns(self) -> list[str]:
        """The ``records`` columns that hold group attributes."""
        return self._records[1]

    @property
    def score_columns(self) -> list[str]:
        """The ``records`` columns that hold scores."""
        return self._records[2]

    @cached_property
    def _records(self) -> tuple[pd.DataFrame, list[str], list[str]]:
        import pandas as pd

        rows, overridden = self._rows()
        attr_names = list(dict.fromkeys(k for r in rows for k in (r.get("attributes") or {})))
        score_names = list(dict.fromkeys(k for r in rows for k in (r.get("scores") or {})))
        attr_col = {a: (f"attr_{a}" if a in BASE_COLUMNS else a) for a in attr_names}
        taken = set(BASE_COLUMNS) | set(attr_col.values())
        score_col = {s: (f"score_{s}" if s in taken else s) for s in score_names}
        table: dict[str, list[Any]] = {c: [] for c in BASE_COLUMNS}
        table.update({c: [] for c in attr_col.values()})
        table.update({c: [] for c in score_col.values()})
        for r in rows:
            extra = r.get("extra") or {}
            base = {
                "run_id": self.run_id, "key": r.get("key"), "suite": r.get("suite"), "item_id": r.get("item_id"),
                "template_id": r.get("template_id"), "sample": r.get("sample"), "prompt": r.get("prompt") or "",
                "completion": r.get("completion") or "", "n_tokens": extra.get("n_tokens"),
                "overridden": r.get("key") in overridden,
            }
            for c, v in base.items():
                table[c].append(v)
            attrs, scores = r.get("attributes") or {}, r.get("scores") or {}
            for a, c in attr_col.items():
                table[c].append(attrs.get(a))
            for s, c in score_col.items():
                v = _num(scores.get(s))
                table[c].append(float("nan") if v is None else v)
        df = pd.DataFrame(table)
        df["n_tokens"] = pd.to_numeric(df["n_tokens"], errors="coerce").astype("Int64")
        df["sample"] = pd.to_numeric(df["sample"], errors="coerce").astype("Int64")
        for c in score_col.values():
            df[c] = df[c].astype("float64")
        return df, list(attr_col.values()), list(score_col.values())

    @cached_property
    def metrics(self) -> pd.DataFrame:
        import pandas as pd

        from audit.export.common import cells, suite_figures

        rows = []
        for suite, ss in (self.summary.get("suites") or {}).items():
            for f in suite_figures(ss):
                head = {"run_id": self.run_id, "suite": suite, "figure": f["figure"], "kind": f["kind"],
                        "metric": f.get("metric"), "score": f.get("score")}
                meta = {"higher_is": f.get("higher_is"), "ideal": f.get("ideal"), "scale": f.get("scale"),
                        "uninformative": f.get("uninformative", False),
                        "max_group": f.get("max_group"), "min_group": f.get("min_group")}
                rows.append({**head, "attribute": None, "group": None, **_figure_row(f), **meta})
                if f["kind"] != "metric":
                    continue
                for attr, value, cell in cells(f.get("by") or {}):
                    rows.append({**head, "attribute": attr, "group": value,
                                 **_figure_row({"ci_level": f.get("ci_level"), **cell}),
                                 **{**meta, "max_group": None, "min_group": None}})
        return _counts(pd.DataFrame(rows, columns=_METRIC_COLUMNS), self.summary)

    @cached_property
    def groups(self) -> pd.DataFrame:
        import pandas as pd

        rows = []
        for suite, ss in (self.summary.get("suites") or {}).items():
            for g in ss.get("groups") or []:
                vs = g.get("vs_overall") or {}
                for group, fig in (g.get("by_group") or {}).items():
                    d = vs.get(group) or {}
                    rows.append({
                        "run_id": self.run_id, "suite": suite, "score": g.get("score"), "attribute": g.get("attribute"),
                        "group": str(group), **_figure_row(fig), "higher_is": g.get("higher_is"),
                        "vs_overall": _num(d.get("estimate")), "vs_overall_ci_low": _num(d.get("ci_low")),
                        "vs_overall_ci_high": _num(d.get("ci_high")),
                    })
        return _counts(pd.DataFrame(rows, columns=_GROUP_COLUMNS), self.summary)

    @cached_property
    def gates(self) -> pd.DataFrame:
        import pandas as pd

        from audit.export.common import gate_results, verdict

        rows = []
        for r in gate_results(self.summary):
            needed: dict[str, Any] = r["needed"] if isinstance(r.get("needed"), dict) else {}
            rows.append({
                "run_id": self.run_id, "suite": r.get("suite"), "metric": r.get("metric"), "op": r.get("op"),
                "threshold": _num(r.get("threshold")), "bound": r.get("bound"), "value": _num(r.get("value")),
                "estimate": _num(r.get("estimate")), "ci_low": _num(r.get("ci_low")), "ci_high": _num(r.get("ci_high")),
                "verdict": verdict(r), "passed": bool(r.get("passed")), "source": r.get("source"),
                "protocol": r.get("protocol"), "n_clusters": r.get("n_clusters"), "needed": needed.get("text"),
                "needed_more": needed.get("more"), "error": r.get("error"),
                "warnings": "; ".join(str(w) for w in r.get("warnings") or []),
            })
        return pd.DataFrame(rows, columns=_GATE_COLUMNS)

    @cached_property
    def tests(self) -> pd.DataFrame:
        import pandas as pd

        rows = [{"run_id": self.run_id, "suite": suite, **t}
                for suite, ss in (self.summary.get("suites") or {}).items() for t in ss.get("tests") or []]
        return pd.DataFrame(rows)


_METRIC_COLUMNS = ["run_id", "suite", "figure", "kind", "metric", "score", "attribute", "group", *FIGURE_COLUMNS,
                   "warnings", "higher_is", "ideal", "scale", "uninformative", "max_group", "min_group"]
_GROUP_COLUMNS = ["run_id", "suite", "score", "attribute", "group", *FIGURE_COLUMNS, "warnings", "higher_is",
                  "vs_overall", "vs_overall_ci_low", "vs_overall_ci_high"]
_GATE_COLUMNS = ["run_id", "suite", "metric", "op", "threshold", "bound", "value", "estimate", "ci_low", "ci_high",
                 "verdict", "passed", "source", "protocol", "n_clusters", "needed", "needed_more", "error", "warnings"]


class AuditRuns:
    """Several runs stacked: the same frames as ``AuditRun``, concatenated (``run_id`` tells them apart)."""

    def __init__(self, runs: Sequence[AuditRun]) -> None:
        self.runs = list(runs)

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Any:
        return iter(self.runs)

    def __getitem__(self, run_id: str) -> AuditRun:
        for r in self.runs:
            if r.run_id == run_id:
                return r
        raise KeyError(run_id)

    def __repr__(self) -> str:
        return f"AuditRuns({[r.run_id for r in self.runs]!r})"

    def _stack(self, name: str) -> pd.DataFrame:
        import pandas as pd

        frames = [getattr(r, name) for r in self.runs]
        frames = [f for f in frames if not f.empty]
        if not frames:
            return getattr(self.runs[0], name) if self.runs else pd.DataFrame()
        return pd.concat(frames, ignore_index=True, sort=False)

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.runs]

    @cached_property
    def records(self) -> pd.DataFrame:
        return self._stack("records")

    @cached_property
    def metrics(self) -> pd.DataFrame:
        return self._stack("metrics")

    @cached_property
    def groups(self) -> pd.DataFrame:
        return self._stack("groups")

    @cached_property
    def gates(self) -> pd.DataFrame:
        return self._stack("gates")

    @cached_property
    def tests(self) -> pd.DataFrame:
        return self._stack("tests")

    @cached_property
    def manifests(self) -> dict[str, dict[str, Any]]:
        return {r.run_id: r.manifest for r in self.runs}


def load_run(run_dir: Path | str, *, reviewed: bool = True) -> AuditRun:
    """One run folder (holds manifest.json) as pandas frames; ``UsageError`` if it is not a run."""
    return AuditRun(run_dir, reviewed=reviewed)


def _run_dirs(where: Path) -> list[Path]:
    if (where / "manifest.json").is_file():
        return [where]
    if not where.is_dir():
        raise UsageError(f"not a folder: {where}")
    return sorted(p for p in where.iterdir() if p.is_dir() and (p / "manifest.json").is_file())


def load_runs(where: Path | str | Iterable[Path | str], *, reviewed: bool = True) -> AuditRuns:
    """Every run folder directly under ``where`` (or the given run folders), stacked."""
    dirs = _run_dirs(Path(where)) if isinstance(where, str | Path) else [Path(p) for p in where]
    return AuditRuns([AuditRun(d, reviewed=reviewed) for d in dirs])
