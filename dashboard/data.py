"""Loading and aggregation for the dashboard: cached, read-only, and confined to the reports folder.

Security rules:
- the only run folders ever opened are the ones listed under the configured reports folder
  (``list_runs``); a run id from the URL or a widget is looked up in that listing, never joined
  onto a path (``run_path``);
- nothing here writes: records are parsed read-only (a torn last line of a running audit is
  skipped, not repaired, so the dashboard never races the writer).

Speed: loaders are ``st.cache_data`` functions keyed by the files' (mtime, size), so a page rerun
costs a dictionary lookup and a run that is still being written is reloaded when it changes.
Aggregations (histograms, group means) run in pandas before anything is plotted.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

REPORTS_ENV = "LM_AUDIT_REPORTS"
MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
SUMMARY = "summary.json"
ATTR = "a:"  # column prefix of record attributes in the records frame
SCORE = "s:"  # column prefix of record scores
BASE_COLUMNS = ["key", "suite", "item_id", "template_id", "sample", "prompt", "completion"]

KINDS = ("toxicity", "bias", "stereotypes", "factuality", "misuse")
TOXICITY_METRICS = {"expected_max_toxicity", "toxicity_probability"}  # the RealToxicityPrompts protocol
STEREOTYPE_METRICS = {"pct_stereotype", "stereoset"}

# Which direction is better, for score keys and metric kinds ("higher", "lower", or "fifty").
SCORE_DIRECTION = {
    "toxicity": "lower",
    "sentiment": "higher",
    "sentiment_negative": "lower",
    "sentiment_positive": "higher",
    "regard": "higher",
    "factual": "higher",
    "factual_exact": "higher",
    "factual_contains": "higher",
    "factual_semantic": "higher",
    "refusal": "higher",
}
METRIC_DIRECTION = {
    "expected_max_toxicity": "lower",
    "toxicity_probability": "lower",
    "toxic_fraction": "lower",
    "pct_stereotype": "fifty",
    "accuracy": "higher",
    "refusal_rate": "higher",
}


# --------------------------------------------------------------------------- the reports folder


def reports_dir() -> Path:
    """The reports folder: ``--reports DIR`` after ``--`` on the streamlit command line, else the
    ``LM_AUDIT_REPORTS`` environment variable, else ``./reports``."""
    argv = sys.argv[1:]
    for i, arg in enumerate(argv):
        if arg == "--reports" and i + 1 < len(argv):
            return Path(argv[i + 1]).resolve()
        if arg.startswith("--reports="):
            return Path(arg.split("=", 1)[1]).resolve()
    return Path(os.environ.get(REPORTS_ENV) or "reports").resolve()


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st_ = path.stat()
    except OSError:
        return (0, -1)
    return (st_.st_mtime_ns, st_.st_size)


def _valid_run_name(name: str) -> bool:
    from audit.store import RUN_ID_RE

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
        if d.resolve().parent != root:
            continue
        if (d / MANIFEST).is_file():
            out.append(d)
    return out


def list_runs(reports: Path) -> list[RunEntry]:
    """Every run under ``reports``, newest first (cached until a manifest or summary changes)."""
    folders = _run_folders(reports)
    stamps = tuple((d.name, _stamp(d / MANIFEST), _stamp(d / SUMMARY)) for d in folders)
    return _list_runs_cached(str(reports.resolve()), stamps)


@st.cache_data(max_entries=8, show_spinner=False)
def _list_runs_cached(reports: str, stamps: tuple[Any, ...]) -> list[RunEntry]:
    runs = []
    for name, _m, _s in stamps:
        d = Path(reports) / name
        runs.append(_entry(d))
    runs.sort(key=lambda r: (r.created, r.run_id), reverse=True)
    return runs


def _entry(d: Path) -> RunEntry:
    error = None
    try:
        manifest = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        manifest, error = {}, f"unreadable manifest: {exc}"
    summary = _read_json(d / SUMMARY)
    gates = (summary or {}).get("gates") if isinstance(summary, dict) else None
    gates = gates if isinstance(gates, dict) else {}
    model = manifest.get("model") if isinstance(manifest.get("model"), dict) else {}
    suites = manifest.get("suites") if isinstance(manifest.get("suites"), dict) else {}
    return RunEntry(
        run_id=d.name,
        path=str(d),
        model=str(model.get("name", "?")),
        backend=str(model.get("backend", "")),
        random_weights=bool(model.get("random_weights", False)),
        suites=tuple(str(s) for s in suites),
        created=str(manifest.get("created") or ""),
        status=str(manifest.get("status") or "?"),
        has_summary=summary is not None,
        gates_passed=gates.get("passed") if isinstance(gates.get("passed"), bool) else None,
        gates_failed=int(gates.get("n_failed") or 0),
        gates_total=int(gates.get("n_total") or 0),
        error=error,
    )


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
            gates = f"{'PASS' if r.gates_passed else 'FAIL'} ({r.gates_total - r.gates_failed}/{r.gates_total} passed)"
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
            }
        )
    return pd.DataFrame(rows, columns=["run", "model", "suites", "created", "status", "gates"])


# --------------------------------------------------------------------------- one run


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def load_manifest(run_dir: Path) -> dict[str, Any]:
    return _manifest_cached(str(run_dir), _stamp(run_dir / MANIFEST))


@st.cache_data(max_entries=16, show_spinner=False)
def _manifest_cached(run_dir: str, stamp: tuple[int, int]) -> dict[str, Any]:
    from audit.store import read_manifest

    try:
        data = read_manifest(run_dir)
    except Exception:
        return {}
    return data if isinstance(data, dict) else {}


def load_summary(run_dir: Path) -> dict[str, Any] | None:
    """``summary.json`` as a dict, or ``None`` when missing or unreadable."""
    return _summary_cached(str(run_dir), _stamp(run_dir / SUMMARY))


@st.cache_data(max_entries=16, show_spinner=False)
def _summary_cached(run_dir: str, stamp: tuple[int, int]) -> dict[str, Any] | None:
    data = _read_json(Path(run_dir) / SUMMARY)
    return data if isinstance(data, dict) else None


def load_records(run_dir: Path) -> pd.DataFrame:
    """Every complete record of a run as one flat frame: the base columns, ``a:<attribute>`` and
    ``s:<score>`` columns. Cached by the records file's (mtime, size)."""
    return _records_cached(str(run_dir / RECORDS), _stamp(run_dir / RECORDS))


def parse_records(path: Path) -> list[dict[str, Any]]:
    """Read ``records.jsonl`` without modifying it: complete JSON lines only, first copy of a key."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    try:
        fh = path.open("rb")
    except OSError:
        return rows
    with fh:
        for line in fh:
            if not line.endswith(b"\n"):  # a torn last line of a run still being written
                break
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("key"), str) and row["key"] not in seen:
                seen.add(row["key"])
                rows.append(row)
    return rows


def records_to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    base: dict[str, list[Any]] = {c: [] for c in BASE_COLUMNS}
    attrs: dict[str, list[Any]] = {}
    scores: dict[str, list[Any]] = {}
    for i, row in enumerate(rows):
        for c in BASE_COLUMNS:
            base[c].append(row.get(c))
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
def _records_cached(path: str, stamp: tuple[int, int]) -> pd.DataFrame:
    return records_to_frame(parse_records(Path(path)))


def attr_columns(df: pd.DataFrame) -> list[str]:
    return [c[len(ATTR) :] for c in df.columns if c.startswith(ATTR)]


def score_columns(df: pd.DataFrame) -> list[str]:
    return [c[len(SCORE) :] for c in df.columns if c.startswith(SCORE) and df[c].notna().any()]


@dataclass
class Run:
    """Everything a page needs about one run."""

    run_id: str
    path: Path
    manifest: dict[str, Any]
    summary: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)

    @property
    def records(self) -> pd.DataFrame:
        return load_records(self.path)

    @property
    def suites_summary(self) -> dict[str, Any]:
        s = (self.summary or {}).get("suites")
        return s if isinstance(s, dict) else {}

    @property
    def suites_manifest(self) -> dict[str, Any]:
        s = self.manifest.get("suites")
        return s if isinstance(s, dict) else {}

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
    manifest = load_manifest(path)
    summary = load_summary(path)
    run = Run(run_id=path.name, path=path, manifest=manifest, summary=summary)
    if summary is None:
        run.notes.append("This run has no readable summary.json: figures below are computed from the records, without confidence intervals. Rebuild it with `lm-audit report <run folder>`.")
    elif summary.get("schema_version") != 1:
        run.notes.append(f"summary.json has schema_version {summary.get('schema_version')!r} (the dashboard reads version 1): some sections may be missing.")
    return run


# --------------------------------------------------------------------------- summary tables


def _list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def number(x: Any) -> float | None:
    """A JSON value as a float, or None when it is not a number."""
    return _num(x)


def metric_kinds(run: Run, suite: str) -> set[str]:
    """Which topic pages a suite belongs on, from its metrics, scorers, task and id."""
    s = run.suite_summary(suite)
    m = run.suite_manifest(suite)
    metrics = {str(x.get("metric")) for x in _list(s.get("metrics")) if isinstance(x, dict)}
    metrics |= {str(x.get("metric")) for x in _list(m.get("metrics")) if isinstance(x, dict)}
    scorers = {str(x).split(":")[0] for x in _list(m.get("scorers"))}
    sid = suite.lower()
    kinds = set()
    if metrics & TOXICITY_METRICS or sid.startswith("toxic"):
        kinds.add("toxicity")
    if _list(s.get("tests")) or "bias" in sid or "counterfactual" in sid:
        kinds.add("bias")
    if metrics & STEREOTYPE_METRICS or "stereo" in sid or "crows" in sid or m.get("task") == "likelihood":
        kinds.add("stereotypes")
    if "accuracy" in metrics or "factuality" in scorers or "factual" in sid or "truthful" in sid:
        kinds.add("factuality")
    if "refusal_rate" in metrics or "refusal" in scorers or "misuse" in sid or "harm" in sid:
        kinds.add("misuse")
    return kinds


def suites_of_kind(run: Run, kind: str) -> list[str]:
    return [s for s in run.suite_ids if kind in metric_kinds(run, s)]


def metrics_frame(run: Run, suites: list[str] | None = None) -> pd.DataFrame:
    """One row per suite metric: estimate, CI, n, method, protocol."""
    rows = []
    for sid, s in run.suites_summary.items():
        if suites is not None and sid not in suites:
            continue
        for m in _list(s.get("metrics") if isinstance(s, dict) else None):
            if not isinstance(m, dict):
                continue
            rows.append(
                {
                    "suite": sid,
                    "metric": str(m.get("name") or m.get("metric")),
                    "kind": str(m.get("metric") or ""),
                    "score": str(m.get("score") or ""),
                    "estimate": _num(m.get("estimate")),
                    "ci_low": _num(m.get("ci_low")),
                    "ci_high": _num(m.get("ci_high")),
                    "n": _num(m.get("n")),
                    "std": _num(m.get("std", (m.get("extra") or {}).get("std") if isinstance(m.get("extra"), dict) else None)),
                    "higher is": str(m.get("higher_is") or ""),
                    "ideal": _num(m.get("ideal")),
                    "method": str(m.get("method") or ""),
                    "error": str(m.get("error") or ""),
                    "protocol": str(m.get("protocol") or run.protocol_text(sid)),
                }
            )
    cols = [
        "suite", "metric", "kind", "score", "estimate", "ci_low", "ci_high", "n", "std", "higher is", "ideal",
        "method", "error", "protocol",
    ]
    return pd.DataFrame(rows, columns=cols)


def metric_by_frame(run: Run, suites: list[str] | None = None) -> pd.DataFrame:
    """Every metric disaggregated by attribute value (the ``by`` blocks of summary metrics)."""
    rows = []
    for sid, s in run.suites_summary.items():
        if suites is not None and sid not in suites:
            continue
        for m in _list(s.get("metrics") if isinstance(s, dict) else None):
            if not isinstance(m, dict) or not isinstance(m.get("by"), dict):
                continue
            for attr, values in m["by"].items():
                if not isinstance(values, dict):
                    continue
                for value, v in values.items():
                    if not isinstance(v, dict):
                        continue
                    rows.append(
                        {
                            "suite": sid,
                            "metric": str(m.get("name") or m.get("metric")),
                            "kind": str(m.get("metric") or ""),
                            "attribute": str(attr),
                            "value": str(value),
                            "estimate": _num(v.get("estimate")),
                            "ci_low": _num(v.get("ci_low")),
                            "ci_high": _num(v.get("ci_high")),
                            "n": _num(v.get("n")),
                        }
                    )
    cols = ["suite", "metric", "kind", "attribute", "value", "estimate", "ci_low", "ci_high", "n"]
    return pd.DataFrame(rows, columns=cols)


def gates_frame(run: Run) -> pd.DataFrame:
    rows = []
    for sid, s in run.suites_summary.items():
        for g in _list(s.get("gates") if isinstance(s, dict) else None):
            if not isinstance(g, dict):
                continue
            passed = g.get("passed")
            result = "PASS" if passed is True else ("FAIL" if passed is False else "?")
            if g.get("error"):
                result = "ERROR"  # the figure could not be computed (e.g. too few prompts for a CI)
            rows.append(
                {
                    "result": result,
                    "suite": sid,
                    "gate": f"{g.get('metric')} {g.get('op', '')} {g.get('threshold', '')}".strip(),
                    "judged on": str(g.get("bound") or ""),
                    "value": _num(g.get("value")),
                    "estimate": _num(g.get("estimate")),
                    "ci_low": _num(g.get("ci_low")),
                    "ci_high": _num(g.get("ci_high")),
                    "error": str(g.get("error") or ""),
                }
            )
    cols = ["result", "suite", "gate", "judged on", "value", "estimate", "ci_low", "ci_high", "error"]
    frame = pd.DataFrame(rows, columns=cols)
    order = frame["result"].map({"FAIL": 0, "ERROR": 1, "?": 2, "PASS": 3})
    return frame.iloc[order.argsort(kind="stable")].reset_index(drop=True)  # failures first


def groups_frame(run: Run, suite: str) -> pd.DataFrame:
    """Per-group estimates with CIs for every (score, attribute) of a suite, plus overall."""
    rows = []
    for g in _list(run.suite_summary(suite).get("groups")):
        if not isinstance(g, dict) or not isinstance(g.get("by_group"), dict):
            continue
        for group, v in g["by_group"].items():
            if isinstance(v, dict):
                rows.append(
                    {
                        "score": str(g.get("score")),
                        "attribute": str(g.get("attribute")),
                        "group": str(group),
                        "estimate": _num(v.get("estimate")),
                        "ci_low": _num(v.get("ci_low")),
                        "ci_high": _num(v.get("ci_high")),
                        "n": _num(v.get("n")),
                    }
                )
    return pd.DataFrame(rows, columns=["score", "attribute", "group", "estimate", "ci_low", "ci_high", "n"])


def gaps_frame(run: Run, suite: str) -> pd.DataFrame:
    rows = []
    for g in _list(run.suite_summary(suite).get("groups")):
        if not isinstance(g, dict):
            continue
        gap = g.get("gap") if isinstance(g.get("gap"), dict) else {}
        overall = g.get("overall") if isinstance(g.get("overall"), dict) else {}
        rows.append(
            {
                "score": str(g.get("score")),
                "attribute": str(g.get("attribute")),
                "overall": _num(overall.get("estimate")),
                "gap (max - min)": _num(gap.get("estimate")),
                "gap ci_low": _num(gap.get("ci_low")),
                "gap ci_high": _num(gap.get("ci_high")),
                "max group": str(gap.get("max_group") or ""),
                "min group": str(gap.get("min_group") or ""),
            }
        )
    cols = ["score", "attribute", "overall", "gap (max - min)", "gap ci_low", "gap ci_high", "max group", "min group"]
    return pd.DataFrame(rows, columns=cols)


def tests_frame(run: Run, suite: str) -> pd.DataFrame:
    rows = []
    for t in _list(run.suite_summary(suite).get("tests")):
        if not isinstance(t, dict):
            continue
        p_holm = _num(t.get("p_holm"))
        rows.append(
            {
                "score": str(t.get("score")),
                "attribute": str(t.get("attribute")),
                "group a": str(t.get("group_a")),
                "group b": str(t.get("group_b")),
                "pairs": _num(t.get("n_pairs")),
                "mean diff (a - b)": _num(t.get("mean_diff")),
                "effect size": _num(t.get("effect_size")),
                "effect kind": str(t.get("effect_size_kind") or ""),
                "p": _num(t.get("p_value")),
                "p (Holm)": p_holm,
                "significant (Holm, 0.05)": None if p_holm is None else p_holm < 0.05,
                "method": str(t.get("method") or ""),
            }
        )
    cols = [
        "score", "attribute", "group a", "group b", "pairs", "mean diff (a - b)", "effect size", "effect kind",
        "p", "p (Holm)", "significant (Holm, 0.05)", "method",
    ]
    return pd.DataFrame(rows, columns=cols)


def scorer_audit(run: Run) -> dict[str, Any]:
    sa = (run.summary or {}).get("scorer_audit")
    return sa if isinstance(sa, dict) else {}


def scorer_audit_frame(entry: dict[str, Any]) -> pd.DataFrame:
    """Per group: FPR and mean score, raw and with identity terms neutralized."""
    raw = entry.get("groups") if isinstance(entry.get("groups"), dict) else {}
    neu = entry.get("neutralized") if isinstance(entry.get("neutralized"), dict) else {}
    rows = []
    for group in dict.fromkeys([*raw, *neu]):
        r = raw.get(group) if isinstance(raw.get(group), dict) else {}
        n = neu.get(group) if isinstance(neu.get(group), dict) else {}
        rows.append(
            {
                "group": str(group),
                "fpr": _num(r.get("fpr")),
                "mean score": _num(r.get("mean")),
                "fpr (neutralized)": _num(n.get("fpr")),
                "mean score (neutralized)": _num(n.get("mean")),
                "n": _num(r.get("n") if r else n.get("n")),
            }
        )
    cols = ["group", "fpr", "mean score", "fpr (neutralized)", "mean score (neutralized)", "n"]
    return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------- record aggregations


def histogram(values: pd.Series, bins: int = 40, lo: float | None = None, hi: float | None = None) -> pd.DataFrame:
    """Counts per bin (aggregated here, so a 100k-record run plots 40 bars, not 100k points)."""
    v = values.dropna().to_numpy(dtype=float)
    if v.size == 0:
        return pd.DataFrame(columns=["bin_left", "bin_right", "count"])
    lo = float(v.min()) if lo is None else lo
    hi = float(v.max()) if hi is None else hi
    if hi <= lo:
        hi = lo + 1e-9
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    return pd.DataFrame({"bin_left": edges[:-1], "bin_right": edges[1:], "count": counts})


def group_means(df: pd.DataFrame, score: str, attribute: str) -> pd.DataFrame:
    """Point estimates per attribute value: mean score and n (no CI; a fallback when summary.json
    lacks the section)."""
    col, acol = f"{SCORE}{score}", f"{ATTR}{attribute}"
    if col not in df or acol not in df:
        return pd.DataFrame(columns=["value", "estimate", "n"])
    sub = df[[acol, col]].dropna()
    out = sub.groupby(acol, observed=True)[col].agg(["mean", "count"]).reset_index()
    out.columns = ["value", "estimate", "n"]
    out["value"] = out["value"].astype(str)
    return out


def toxicity_by_prompt(df: pd.DataFrame, attribute: str | None, threshold: float = 0.5) -> pd.DataFrame:
    """Expected maximum toxicity (mean over prompts of the max over samples) and toxicity
    probability (share of prompts with a sample >= threshold) per attribute value, from records."""
    col = f"{SCORE}toxicity"
    if col not in df:
        return pd.DataFrame(columns=["value", "expected_max_toxicity", "toxicity_probability", "prompts"])
    keys = ["suite", "item_id"]
    acol = f"{ATTR}{attribute}" if attribute else None
    cols = [*keys, col] + ([acol] if acol and acol in df else [])
    sub = df[cols].dropna(subset=[col])
    per_prompt = sub.groupby(keys, observed=True).agg(max_tox=(col, "max"), **({"value": (acol, "first")} if acol and acol in df else {}))
    if "value" not in per_prompt:
        per_prompt["value"] = "all"
    per_prompt["hit"] = per_prompt["max_tox"] >= threshold
    out = per_prompt.groupby("value", observed=True).agg(
        expected_max_toxicity=("max_tox", "mean"), toxicity_probability=("hit", "mean"), prompts=("max_tox", "size")
    )
    out = out.reset_index()
    out["value"] = out["value"].astype(str)
    return out


def pair_differences(df: pd.DataFrame, suite: str, score: str) -> pd.DataFrame:
    """Per counterfactual set (``pair_id`` and sample): the spread of a score across its groups."""
    col, pcol, gcol = f"{SCORE}{score}", f"{ATTR}pair_id", f"{ATTR}group"
    if col not in df or pcol not in df or gcol not in df:
        return pd.DataFrame(columns=["pair_id", "sample", "spread", "groups"])
    sub = df.loc[df["suite"] == suite, [pcol, "sample", gcol, col]].dropna()
    if sub.empty:
        return pd.DataFrame(columns=["pair_id", "sample", "spread", "groups"])
    agg = sub.groupby([pcol, "sample"], observed=True)[col].agg(["max", "min", "count"]).reset_index()
    agg["spread"] = agg["max"] - agg["min"]
    agg = agg.rename(columns={pcol: "pair_id", "count": "groups"})
    return agg[["pair_id", "sample", "spread", "groups"]].sort_values("spread", ascending=False)


def filter_records(
    df: pd.DataFrame,
    suites: list[str] | None = None,
    attribute: str | None = None,
    values: list[str] | None = None,
    score: str | None = None,
    score_range: tuple[float, float] | None = None,
    text: str = "",
) -> pd.DataFrame:
    """The records matching every filter (substring text search, case-insensitive, not a regex)."""
    mask = pd.Series(True, index=df.index)
    if suites:
        mask &= df["suite"].isin(suites)
    if attribute and values and f"{ATTR}{attribute}" in df:
        mask &= df[f"{ATTR}{attribute}"].isin(values)
    if score and score_range and f"{SCORE}{score}" in df:
        s = df[f"{SCORE}{score}"]
        mask &= s.between(score_range[0], score_range[1])
    if text:
        needle = text.lower()
        mask &= df["prompt"].str.lower().str.contains(needle, regex=False) | df["completion"].str.lower().str.contains(
            needle, regex=False
        )
    return df[mask]


def score_direction(score: str) -> str:
    return SCORE_DIRECTION.get(score, "higher" if score.startswith("ll_") else "lower")


# --------------------------------------------------------------------------- comparing two runs


def _item_means(df: pd.DataFrame, suite: str, score: str) -> pd.Series:
    col = f"{SCORE}{score}"
    if col not in df:
        return pd.Series(dtype=float)
    sub = df.loc[df["suite"] == suite, ["item_id", col]].dropna()
    return sub.groupby("item_id")[col].mean()


def _verdict(delta: float | None, lo: float | None, hi: float | None, direction: str) -> str:
    if delta is None or lo is None or hi is None:
        return "no CI"
    if lo <= 0 <= hi:
        return "no significant change"
    up = delta > 0
    if direction == "higher":
        return "better" if up else "worse"
    if direction == "lower":
        return "worse" if up else "better"
    return "changed"


def compare_runs(a: Run, b: Run, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per shared (suite, metric): A, B, delta = B - A with a CI, and a verdict.

    Metrics that average a per-record score (mean, rate-like metrics over 0/1 scores, accuracy,
    refusal rate) get a paired bootstrap over the prompts both runs share. Other metrics (expected
    maximum toxicity, pct_stereotype, StereoSet) get a normal approximation from the two runs'
    own CIs, as if independent; the ``method`` column says which. ``lm-audit compare`` is the
    authoritative test; this is a reading aid.
    """
    ma, mb = metrics_frame(a), metrics_frame(b)
    if ma.empty or mb.empty:
        return pd.DataFrame()
    merged = ma.merge(mb, on=["suite", "metric"], suffixes=(" A", " B"))
    rng = np.random.default_rng(seed)
    rows = []
    ra = rb = None
    for _, r in merged.iterrows():
        kind, score = r["kind A"], r["score A"]
        ea, eb = r["estimate A"], r["estimate B"]
        delta = None if ea is None or eb is None or pd.isna(ea) or pd.isna(eb) else float(eb - ea)
        lo = hi = None
        method = ""
        if kind in {"mean", "accuracy", "refusal_rate"} and score:
            if ra is None:
                ra, rb = a.records, b.records
            ia, ib = _item_means(ra, r["suite"], score), _item_means(rb, r["suite"], score)
            shared = ia.index.intersection(ib.index)
            if len(shared) >= 2:
                d = (ib[shared] - ia[shared]).to_numpy()
                idx = rng.integers(0, len(d), size=(n_boot, len(d)))
                boots = d[idx].mean(axis=1)
                lo, hi = (float(x) for x in np.percentile(boots, [2.5, 97.5]))
                delta = float(d.mean())  # the paired delta, so the estimate sits inside its CI
                method = f"paired bootstrap over {len(shared)} shared prompts ({n_boot})"
        if lo is None and delta is not None:
            hw = []
            for side in ("A", "B"):
                l_, h_ = r[f"ci_low {side}"], r[f"ci_high {side}"]
                if l_ is not None and h_ is not None and not pd.isna(l_) and not pd.isna(h_):
                    hw.append((h_ - l_) / 2)
            if len(hw) == 2:
                half = math.sqrt(hw[0] ** 2 + hw[1] ** 2)
                lo, hi = delta - half, delta + half
                method = "normal approx. from both CIs (independent)"
        direction = METRIC_DIRECTION.get(kind) or (score_direction(score) if score else "higher")
        verdict = _verdict(delta, lo, hi, direction)
        if direction == "fifty" and delta is not None and lo is not None and not (lo <= 0 <= hi):
            verdict = "better" if _off_fifty(eb) < _off_fifty(ea) else "worse"
        rows.append(
            {
                "suite": r["suite"],
                "metric": r["metric"],
                "A": ea,
                "A ci": _ci_text(r["ci_low A"], r["ci_high A"]),
                "B": eb,
                "B ci": _ci_text(r["ci_low B"], r["ci_high B"]),
                "delta (B - A)": delta,
                "delta ci_low": lo,
                "delta ci_high": hi,
                "better is": {"fifty": "closer to 50%"}.get(direction, direction),
                "verdict": verdict,
                "method": method,
            }
        )
    return pd.DataFrame(rows)


def official_compare(a: Run, b: Run) -> tuple[dict[str, Any] | None, str]:
    """``lm-audit compare A B`` (``audit.report.compare.compare_runs``), cached; ``(None, reason)``
    when it cannot run. Only complete runs are compared this way, because its record reader
    repairs a torn tail in place and a running audit must not be touched."""
    for r in (a, b):
        if r.manifest.get("status") != "complete":
            return None, f"run {r.run_id} is {r.manifest.get('status', 'not complete')!s}, not complete"
    stamps = tuple(_stamp(r.path / name) for r in (a, b) for name in (MANIFEST, RECORDS))
    return _official_compare_cached(str(a.path), str(b.path), stamps)


@st.cache_data(max_entries=8, show_spinner="Comparing the runs (paired bootstrap and permutation tests) ...")
def _official_compare_cached(a: str, b: str, stamps: tuple[Any, ...]) -> tuple[dict[str, Any] | None, str]:
    try:
        from audit.report.compare import compare_runs as lm_audit_compare
    except ImportError as exc:
        return None, f"lm-audit compare is not available here: {exc}"
    try:
        return lm_audit_compare(Path(a), Path(b)), ""
    except Exception as exc:
        return None, f"lm-audit compare failed: {type(exc).__name__}: {exc}"


def official_compare_frame(result: dict[str, Any]) -> pd.DataFrame:
    rows = []
    suites = result.get("suites") if isinstance(result.get("suites"), dict) else {}
    for sid, s in suites.items():
        for f in _list(s.get("figures") if isinstance(s, dict) else None):
            if not isinstance(f, dict):
                continue
            rows.append(
                {
                    "suite": sid,
                    "figure": str(f.get("figure")),
                    "A": _num(f.get("a")),
                    "B": _num(f.get("b")),
                    "delta (B - A)": _num(f.get("delta")),
                    "delta ci_low": _num(f.get("ci_low")),
                    "delta ci_high": _num(f.get("ci_high")),
                    "p": _num(f.get("p_value")),
                    "higher is": str(f.get("higher_is") or ""),
                    "verdict": str(f.get("verdict") or ""),
                    "shared prompts": _num(f.get("n_shared")),
                    "method": str(f.get("method") or ""),
                }
            )
    cols = ["suite", "figure", "A", "B", "delta (B - A)", "delta ci_low", "delta ci_high", "p", "higher is",
            "verdict", "shared prompts", "method"]
    return pd.DataFrame(rows, columns=cols)


def compare_scores(a: Run, b: Run, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per shared (suite, score): mean over the prompts both runs share, B - A with a paired
    bootstrap CI over those prompts, and a verdict. Works without summary.json."""
    ra, rb = a.records, b.records
    if ra.empty or rb.empty:
        return pd.DataFrame()
    rng = np.random.default_rng(seed)
    rows = []
    for suite in sorted(set(ra["suite"].astype(str)) & set(rb["suite"].astype(str))):
        for score in sorted(set(score_columns(ra[ra["suite"] == suite])) & set(score_columns(rb[rb["suite"] == suite]))):
            ia, ib = _item_means(ra, suite, score), _item_means(rb, suite, score)
            shared = ia.index.intersection(ib.index)
            if len(shared) < 2:
                continue
            d = (ib[shared] - ia[shared]).to_numpy()
            boots = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
            lo, hi = (float(x) for x in np.percentile(boots, [2.5, 97.5]))
            delta = float(d.mean())
            direction = score_direction(score)
            rows.append(
                {
                    "suite": suite,
                    "score": score,
                    "prompts": len(shared),
                    "A mean": float(ia[shared].mean()),
                    "B mean": float(ib[shared].mean()),
                    "delta (B - A)": delta,
                    "delta ci_low": lo,
                    "delta ci_high": hi,
                    "better is": direction,
                    "verdict": _verdict(delta, lo, hi, direction),
                }
            )
    return pd.DataFrame(rows)


def _off_fifty(x: float) -> float:
    """Distance from the ideal 50% (the metric may be a share in 0..1 or a percentage)."""
    return abs(x - 0.5) if abs(x) <= 1 else abs(x - 50)


def _ci_text(lo: Any, hi: Any) -> str:
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return ""
    return f"[{lo:.3g}, {hi:.3g}]"


def ci_text(est: Any, lo: Any, hi: Any) -> str:
    if est is None or pd.isna(est):
        return "n/a"
    tail = _ci_text(lo, hi)
    return f"{est:.3g} {tail}".strip()
