"""summary.json as tables for the pages: metrics, per-group figures, gaps, tests, gates.

Pure reshaping of figures computed in ``audit/`` (nothing is estimated here); odd shapes in a
summary (a failed metric, a wrong type) become empty cells, never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pandas as pd

from audit.gates.evaluate import POINT_ESTIMATE_NOTE
from dashboard.loading import Run


def as_list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def as_number(x: Any) -> float | None:
    if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


def number(x: Any) -> float | None:
    """A JSON value as a float, or None when it is not a number."""
    return as_number(x)


def text(x: Any) -> str:
    return str(x)


def text_or_blank(x: Any) -> str:
    return str(x or "")


def dicts(x: Any) -> list[dict[str, Any]]:
    """The objects of a JSON list (anything else in it is skipped)."""
    return [e for e in as_list(x) if isinstance(e, dict)]


Column = tuple[str, str, Callable[[Any], Any]]
"""(table column, summary key, how the value is shown): one column of a table over summary entries."""

ESTIMATE_COLUMNS: list[Column] = [
    ("estimate", "estimate", as_number), ("ci_low", "ci_low", as_number), ("ci_high", "ci_high", as_number)
]
DELTA_COLUMNS: list[Column] = [
    ("delta (B - A)", "delta", as_number), ("delta ci_low", "ci_low", as_number),
    ("delta ci_high", "ci_high", as_number), ("p", "p_value", as_number),
]
ESTIMATE_N: list[Column] = [*ESTIMATE_COLUMNS, ("n", "n", as_number)]


def pick(entry: dict[str, Any], columns: Sequence[Column]) -> dict[str, Any]:
    """One table row: every column's value read from a summary entry and shown as the column says."""
    return {name: show(entry.get(key)) for name, key, show in columns}


def names(columns: Sequence[Column]) -> list[str]:
    return [name for name, _, _ in columns]


def suite_metrics(run: Run, suites: list[str] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(suite, metric entry) of every metric of the run's suites (of ``suites`` only, when given)."""
    for sid, s in run.suites_summary.items():
        if suites is None or sid in suites:
            yield from ((sid, m) for m in dicts(s.get("metrics") if isinstance(s, dict) else None))


def metrics_frame(run: Run, suites: list[str] | None = None) -> pd.DataFrame:
    """One row per suite metric: estimate, CI, n, method, protocol."""
    rows = []
    for sid, m in suite_metrics(run, suites):
        rows.append(
            {
                "suite": sid,
                "metric": str(m.get("name") or m.get("metric")),
                "kind": str(m.get("metric") or ""),
                "score": str(m.get("score") or ""),
                "estimate": as_number(m.get("estimate")),
                "ci_low": as_number(m.get("ci_low")),
                "ci_high": as_number(m.get("ci_high")),
                "n": as_number(m.get("n")),
                "std": as_number(m.get("std", (m.get("extra") or {}).get("std") if isinstance(m.get("extra"), dict) else None)),
                "higher is": str(m.get("higher_is") or ""),
                "ideal": as_number(m.get("ideal")),
                "scale": str(m.get("scale") or ""),
                "method": str(m.get("method") or ""),
                "error": str(m.get("error") or ""),
                "protocol": str(m.get("protocol") or run.protocol_text(sid)),
            }
        )
    cols = [
        "suite", "metric", "kind", "score", "estimate", "ci_low", "ci_high", "n", "std", "higher is", "ideal",
        "scale", "method", "error", "protocol",
    ]
    return pd.DataFrame(rows, columns=cols)


def metric_by_frame(run: Run, suites: list[str] | None = None) -> pd.DataFrame:
    """Every metric disaggregated by attribute value (the ``by`` blocks of summary metrics)."""
    rows = []
    for sid, m in suite_metrics(run, suites):
        if not isinstance(m.get("by"), dict):
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
                        **pick(v, ESTIMATE_N),
                    }
                )
    cols = ["suite", "metric", "kind", "attribute", "value", "estimate", "ci_low", "ci_high", "n"]
    return pd.DataFrame(rows, columns=cols)


def verdict_of(g: dict[str, Any]) -> str:
    """PASS / FAIL / INCONCLUSIVE / ERROR of a gate result (``audit.gates.evaluate.verdict_of`` when present)."""
    try:
        from audit.gates.evaluate import verdict_of as audit_verdict  # type: ignore[attr-defined]

        return str(audit_verdict(g))
    except Exception:  # older audit, or an odd shape
        pass
    v = g.get("verdict")
    if v in ("PASS", "FAIL", "INCONCLUSIVE", "ERROR"):
        return str(v)
    if g.get("error"):
        return "ERROR"
    return "PASS" if g.get("passed") is True else ("FAIL" if g.get("passed") is False else "?")


def gates_frame(run: Run) -> pd.DataFrame:
    rows = []
    for sid, s in run.suites_summary.items():
        for i, g in enumerate(as_list(s.get("gates") if isinstance(s, dict) else None)):
            if not isinstance(g, dict):
                continue
            needed = g.get("needed") if isinstance(g.get("needed"), dict) else {}
            rows.append(
                {
                    "result": verdict_of(g),
                    "suite": sid,
                    "gate": f"{g.get('metric')} {g.get('op', '')} {g.get('threshold', '')}".strip(),
                    "judged on": str(g.get("bound") or "") + (
                        f" ({POINT_ESTIMATE_NOTE})" if g.get("bound") == "estimate" else ""),
                    "value": as_number(g.get("value")),
                    "estimate": as_number(g.get("estimate")),
                    "ci_low": as_number(g.get("ci_low")),
                    "ci_high": as_number(g.get("ci_high")),
                    "error": str(g.get("error") or ""),
                    "needed": str(needed.get("text") or ""),
                    "figure": str(g.get("metric") or ""),
                    "index": i,
                }
            )
    cols = ["result", "suite", "gate", "judged on", "value", "estimate", "ci_low", "ci_high", "error", "needed",
            "figure", "index"]
    frame = pd.DataFrame(rows, columns=cols)
    order = frame["result"].map({"FAIL": 0, "ERROR": 1, "INCONCLUSIVE": 2, "?": 3, "PASS": 4})
    return frame.iloc[order.argsort(kind="stable")].reset_index(drop=True)  # failures first


SCORE_ATTRIBUTE: list[Column] = [("score", "score", text), ("attribute", "attribute", text)]


def groups_frame(run: Run, suite: str) -> pd.DataFrame:
    """Per-group estimates with CIs for every (score, attribute) of a suite, plus overall."""
    rows = []
    for g in as_list(run.suite_summary(suite).get("groups")):
        if not isinstance(g, dict) or not isinstance(g.get("by_group"), dict):
            continue
        for group, v in g["by_group"].items():
            if isinstance(v, dict):
                rows.append(
                    {
                        **pick(g, SCORE_ATTRIBUTE),
                        "group": str(group),
                        **pick(v, ESTIMATE_N),
                    }
                )
    return pd.DataFrame(rows, columns=["score", "attribute", "group", "estimate", "ci_low", "ci_high", "n"])


GAP_COLUMNS: list[Column] = [
    ("gap (max - min)", "estimate", as_number), ("gap ci_low", "ci_low", as_number),
    ("gap ci_high", "ci_high", as_number), ("p", "p_value", as_number), ("max group", "max_group", text_or_blank),
    ("min group", "min_group", text_or_blank), ("test", "test", text_or_blank), ("method", "method", text_or_blank),
]


def gaps_frame(run: Run, suite: str) -> pd.DataFrame:
    """Per (score, attribute): the gap (max - min group) with its CI and p-value, the groups."""
    rows = []
    for g in dicts(run.suite_summary(suite).get("groups")):
        gap = g.get("gap") if isinstance(g.get("gap"), dict) else {}
        overall = g.get("overall") if isinstance(g.get("overall"), dict) else {}
        mog = g.get("mean_of_groups") if isinstance(g.get("mean_of_groups"), dict) else {}
        rows.append(
            {
                **pick(g, SCORE_ATTRIBUTE),
                **pick(gap, GAP_COLUMNS),
                "mean of groups": as_number(mog.get("estimate")),
                "overall (pooled)": as_number(overall.get("estimate")),
            }
        )
    cols = [*names(SCORE_ATTRIBUTE), *names(GAP_COLUMNS)]
    cols[-2:-2] = ["mean of groups", "overall (pooled)"]
    return pd.DataFrame(rows, columns=cols)


TEST_COLUMNS: list[Column] = [
    *SCORE_ATTRIBUTE, ("group a", "group_a", text), ("group b", "group_b", text), ("pairs", "n_pairs", as_number),
    ("mean diff (a - b)", "mean_diff", as_number), ("effect size", "effect_size", as_number),
    ("effect kind", "effect_size_kind", text_or_blank), ("p", "p_value", as_number), ("p (Holm)", "p_holm", as_number),
    ("method", "method", text_or_blank),
]


def tests_frame(run: Run, suite: str) -> pd.DataFrame:
    rows = []
    for t in dicts(run.suite_summary(suite).get("tests")):
        p_holm = as_number(t.get("p_holm"))
        rows.append({**pick(t, TEST_COLUMNS), "significant (Holm, 0.05)": None if p_holm is None else p_holm < 0.05})
    cols = names(TEST_COLUMNS)
    cols.insert(-1, "significant (Holm, 0.05)")
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
                "fpr": as_number(r.get("fpr")),
                "mean score": as_number(r.get("mean")),
                "fpr (neutralized)": as_number(n.get("fpr")),
                "mean score (neutralized)": as_number(n.get("mean")),
                "n": as_number(r.get("n") if r else n.get("n")),
            }
        )
    cols = ["group", "fpr", "mean score", "fpr (neutralized)", "mean score (neutralized)", "n"]
    return pd.DataFrame(rows, columns=cols)


VALIDITY_COLUMNS = ["scorer", "reference", "figure", "variant", "n", "estimate", "ci_low", "ci_high", "method", "source"]
SCORER_COLUMNS = ["scorer", "version", "fingerprint", "caveat"]


def validity_frames(run: Run, suite: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The validity card (summary ``scorer_validity``) of the scorers ``suite`` used: one row per
    agreement figure with its CI, and one row per scorer (version, fingerprint, caveat)."""
    card = (run.summary or {}).get("scorer_validity")
    card = card if isinstance(card, dict) else {}
    used = [str(n) for n in as_list(run.suite_manifest(suite).get("scorers"))]
    rows, scorers = [], []
    for name in used:
        e = card.get(name)
        if not isinstance(e, dict):
            continue
        scorers.append({"scorer": name, "version": str(e.get("version", "")), "fingerprint": str(e.get("fingerprint", "")),
                        "caveat": str(e.get("error") or e.get("caveat") or "")})
        for a in as_list(e.get("agreement")):
            if isinstance(a, dict):
                rows.append({
                    "scorer": name, "reference": str(a.get("reference", "")), "figure": str(a.get("metric", "")),
                    "variant": "; ".join(str(a[k]) for k in ("variant", "protocol") if a.get(k)),
                    "n": as_number(a.get("n")), "estimate": as_number(a.get("estimate")), "ci_low": as_number(a.get("ci_low")),
                    "ci_high": as_number(a.get("ci_high")), "method": str(a.get("method", "")), "source": str(a.get("source", "")),
                })
    return pd.DataFrame(rows, columns=VALIDITY_COLUMNS), pd.DataFrame(scorers, columns=SCORER_COLUMNS)
