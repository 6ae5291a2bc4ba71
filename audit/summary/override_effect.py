"""What reviewer overrides did to a run: ``summary["overrides"]`` (``describe``: every line with its
status, the record's original values and its suite's figures before and after) and
``summary["overrides_effect"]`` (``override_effect``).

``{"n_lines", "n_applied", "changed_gates": [{"suite", "gate", "before", "after"}], "trail", "head"}``:
how many lines ``overrides.jsonl`` holds, how many apply to a record of this run, every gate whose
verdict differs from the run without overrides, where the trail is, and the hash chain's head (the
``prev`` the next line must carry: a later rewrite of the last line shows against it). Each changed
gate result also carries ``changed_by_overrides: {"before", "after"}``. Every surface that prints a
verdict (gate lines and the tally, JUnit, the dashboard, compare) says so with
``audit.summary.read.overrides_note``; the gate lines, JUnit, SARIF, the job summary and both reports
mark each changed gate with ``audit.gates.lines.override_mark``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audit.gates.evaluate import verdict_of
from audit.store.override_integrity import chain_head
from audit.store.overrides import EXCLUDE, OVERRIDES, Override, effective, field_of, label_targets
from audit.summary.read import all_gate_results


def _gate_id(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r.get("suite"), r.get("metric"), r.get("op"), r.get("threshold"))


def gate_name(r: dict[str, Any]) -> str:
    return f"{r.get('suite') or 'policy'}: {r.get('metric')} {r.get('op')} {r.get('threshold')}"


def override_effect(
    review: Sequence[Any],
    records: Sequence[Any],
    before: dict[str, Any],
    after: dict[str, Any],
    run_dir: Path,
) -> dict[str, Any]:
    """The effect block; marks each gate of ``after`` whose verdict the overrides changed."""
    keys = {r["key"] if isinstance(r, dict) else r.key for r in records}
    applied = [ov for ov in effective(review) if ov.key in keys]
    was = {_gate_id(r): verdict_of(r) for r in all_gate_results(before)}
    changed = []
    for r in all_gate_results(after):
        old, new = was.get(_gate_id(r)), verdict_of(r)
        if old is not None and old != new:
            r["changed_by_overrides"] = {"before": old, "after": new}
            changed.append({"suite": r.get("suite"), "gate": gate_name(r), "before": old, "after": new})
    trail = Path(run_dir) / OVERRIDES
    return {
        "n_lines": len(review),
        "n_applied": len(applied),
        "changed_gates": changed,
        "trail": str(trail),
        "head": chain_head(trail.read_bytes()) if trail.is_file() else None,
    }


# --------------------------------------------------------------------------- before / after


def _figures(suite: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every figure of one suite summary by its gate name."""
    out: dict[str, dict[str, Any]] = {}
    for m in suite.get("metrics") or []:
        if not isinstance(m, dict):
            continue
        out[str(m.get("name"))] = m
        for attr, cells in (m.get("by") or {}).items():
            for v, c in (cells or {}).items():
                if isinstance(c, dict):
                    out[f"{m.get('name')}[{attr}={v}]"] = c
    for g in suite.get("groups") or []:
        if isinstance(g, dict) and isinstance(g.get("gap"), dict):
            out[f"gap({g.get('score')}, {g.get('attribute')})"] = g["gap"]
    return out


def _short(d: dict[str, Any] | None) -> dict[str, Any] | None:
    if not d:
        return None
    return {k: d.get(k) for k in ("estimate", "ci_low", "ci_high", "n")}


def _differs(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    if (a is None) != (b is None):
        return True
    for k in ("estimate", "ci_low", "ci_high", "n"):
        x, y = (a or {}).get(k), (b or {}).get(k)
        if isinstance(x, int | float) and isinstance(y, int | float):
            if abs(float(x) - float(y)) > 1e-12:
                return True
        elif x != y:
            return True
    return False


def _verdict(r: dict[str, Any]) -> str:
    return str(verdict_of(r))


def changes(before: dict[str, Any], after: dict[str, Any], suite: str) -> list[dict[str, Any]]:
    """The figures and gates of ``suite`` whose value differs between two summaries."""
    sb = (before.get("suites") or {}).get(suite) or {}
    sa = (after.get("suites") or {}).get(suite) or {}
    fb, fa = _figures(sb), _figures(sa)
    out = []
    for name in dict.fromkeys([*fb, *fa]):
        if _differs(fb.get(name), fa.get(name)):
            out.append({"figure": name, "before": _short(fb.get(name)), "after": _short(fa.get(name))})
    gb = {(g.get("metric"), g.get("op"), g.get("threshold")): g for g in sb.get("gates") or []}
    for g in sa.get("gates") or []:
        old = gb.get((g.get("metric"), g.get("op"), g.get("threshold")))
        vb, va = (_verdict(old) if old else None), _verdict(g)
        if old is None or vb != va or _differs(old, g):
            out.append(
                {
                    "gate": f"{g.get('metric')} {g.get('op')} {g.get('threshold')}",
                    "figure": g.get("metric"),
                    "before": {**(_short(old) or {}), "verdict": vb},
                    "after": {**(_short(g) or {}), "verdict": va},
                }
            )
    return out


def describe(
    overrides: Sequence[Override], records: Sequence[Any], before: dict[str, Any], after: dict[str, Any]
) -> list[dict[str, Any]]:
    """``summary["overrides"]``: every line with its status, the record's original values, and the
    figures of its suite before and after all of that suite's overrides."""
    by_key = {field_of(r, "key"): r for r in records}
    active = {id(ov) for ov in effective(overrides)}
    superseded: set[int] = set()
    seen: dict[tuple[str, str], Override] = {}
    for ov in overrides:
        if (ov.key, ov.target) in seen:
            superseded.add(id(seen[(ov.key, ov.target)]))
        seen[(ov.key, ov.target)] = ov
    per_suite: dict[str, list[dict[str, Any]]] = {}
    out = []
    for ov in overrides:
        rec = by_key.get(ov.key)
        entry: dict[str, Any] = {**ov.to_dict(), "line": ov.line}
        if rec is None:
            entry.update(suite=None, status="no such record in this run (kept for a resumed run)")
            entry["figures"] = []
            out.append(entry)
            continue
        suite = field_of(rec, "suite")
        scores = field_of(rec, "scores") or {}
        if ov.score is not None:
            entry["original"] = {ov.score: scores.get(ov.score)}
        elif ov.label != EXCLUDE:
            entry["original"] = {k: scores.get(k) for k in label_targets(ov.label or "", scores)}
        if id(ov) in active:
            status = "applied"
        elif id(ov) in superseded:
            status = "superseded by a later line"
        else:
            status = "withdrawn"
        if suite not in per_suite:
            per_suite[suite] = changes(before, after, suite)
        entry.update(suite=suite, status=status, figures=per_suite[suite])
        out.append(entry)
    return out
