"""JUnit XML for CI systems (GitHub Actions, GitLab, Jenkins): one testcase per gate, or per
compared figure.

Gates (``lm-audit run|gate ... --junit FILE``): one ``<testsuite>`` per audit suite (policy gates
that matched no suite go in ``policy``), one ``<testcase>`` per gate named ``figure op threshold``.
PASS is a passing testcase; FAIL is ``<failure>``; ERROR (the figure could not be computed) is
``<error>``; INCONCLUSIVE (the CI straddles the threshold) is ``<failure>`` under the policy's
``on_inconclusive: fail`` and ``<skipped>`` under ``pass`` or ``warn``. Every message holds the
verdict, the figure with its CI, the bound judged and the protocol. A damaged or empty run adds an
``<error>`` testcase ``run integrity``, and a run whose status is not ``complete`` (running,
interrupted, failed) an ``<error>`` testcase ``run status`` (such runs never pass).

Comparisons (``lm-audit compare ... --junit FILE``): one testcase per figure and pair of runs;
REGRESSED beyond a threshold is ``<failure>``, a threshold naming no figure is ``<error>``, the
rest pass with the delta, its CI and the verdict in ``<system-out>``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from audit.export.common import ci_level, est_ci, figure_text, fmt, gate_results, verdict
from audit.gates.lines import judged_text, override_mark
from audit.summary.read import overrides_note

_BAD_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(s: Any) -> str:
    """Text XML 1.0 can hold (control characters and lone surrogates become U+FFFD)."""
    return _BAD_XML.sub("\ufffd", "" if s is None else str(s))


def threshold_text(t: Any) -> str:
    """A gate threshold as written (no rounding: it names the testcase)."""
    return f"{t:.10g}" if isinstance(t, int | float) and not isinstance(t, bool) else str(t)


def gate_message(r: dict[str, Any], level: float = 0.95) -> str:
    v = verdict(r)
    head = f"{v} {r.get('suite') or '-'}: {r.get('metric')} {r.get('op')} {threshold_text(r.get('threshold'))}"
    if r.get("error"):
        body = f"could not be assessed: {r['error']}"
    else:
        body = f"{figure_text(r, level)}, {judged_text(r)}"
    needed = r.get("needed") if isinstance(r.get("needed"), dict) else None
    extra = [f"{needed['text']}"] if needed and needed.get("text") else []
    extra += [f"warning: {w}" for w in r.get("warnings") or []]
    if r.get("protocol"):
        extra.append(f"protocol: {r['protocol']}")
    if override_mark(r):  # the summary's changed_by_overrides
        extra.append(override_mark(r))
    return "; ".join([f"{head}: {body}", *extra])


class _Suite:
    def __init__(self, name: str, timestamp: str | None) -> None:
        self.el = ET.Element("testsuite", name=name)
        if timestamp:
            self.el.set("timestamp", timestamp.replace("Z", ""))
        self.counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}

    def case(self, classname: str, name: str, outcome: str, message: str, detail: str = "",
             kind: str | None = None) -> None:
        """``outcome``: pass, failure, error or skipped; ``kind``: the failure's type (the verdict)."""
        tc = ET.SubElement(self.el, "testcase", classname=xml_text(classname), name=xml_text(name), time="0")
        self.counts["tests"] += 1
        if outcome != "pass":
            child = ET.SubElement(tc, outcome, message=xml_text(message))
            if outcome != "skipped":
                child.set("type", kind or outcome.upper())
                child.text = xml_text(detail or message)
            self.counts[{"failure": "failures", "error": "errors", "skipped": "skipped"}[outcome]] += 1
        if outcome in ("pass", "skipped"):
            ET.SubElement(tc, "system-out").text = xml_text(detail or message)

    def finish(self) -> ET.Element:
        for k, v in self.counts.items():
            self.el.set(k, str(v))
        self.el.set("time", "0")
        return self.el


def _document(name: str, suites: list[_Suite], properties: dict[str, Any]) -> str:
    root = ET.Element("testsuites", name=xml_text(name))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for s in suites:
        if properties:
            props = ET.Element("properties")
            for k, v in properties.items():
                if v is not None:
                    ET.SubElement(props, "property", name=k, value=xml_text(v))
            s.el.insert(0, props)
        root.append(s.finish())
        for k in totals:
            totals[k] += s.counts[k]
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def gates_junit(summary: dict[str, Any]) -> str:
    """JUnit XML of a summary's gates."""
    level = ci_level(summary)
    on_inc = str((summary.get("gates") or {}).get("on_inconclusive") or "fail")
    created = summary.get("created")
    suites: dict[str, _Suite] = {}
    damaged = summary.get("damaged")
    if damaged:
        s = suites.setdefault("run", _Suite("lm-audit.run", created))
        msg = f"ERROR damaged run: {damaged.get('reason') or 'unreadable or missing records'}"
        s.case("lm-audit.run", "run integrity", "error", msg, "\n".join([msg, *(damaged.get("unreadable") or [])]))
    if summary.get("incomplete"):  # running, interrupted (killed) or failed: never a pass
        s = suites.setdefault("run", _Suite("lm-audit.run", created))
        s.case("lm-audit.run", "run status", "error", f"ERROR {summary['incomplete']}")
    for r in gate_results(summary):
        where = r.get("suite") or "policy"
        s = suites.setdefault(where, _Suite(f"lm-audit.{where}", created))
        v = verdict(r)
        outcome = {"PASS": "pass", "FAIL": "failure", "ERROR": "error"}.get(v)
        if outcome is None:  # INCONCLUSIVE
            outcome = "failure" if on_inc == "fail" else "skipped"
        name = f"{r.get('metric')} {r.get('op')} {threshold_text(r.get('threshold'))}"
        s.case(f"lm-audit.{where}", name, outcome, gate_message(r, level), kind=v)
    model = summary.get("model") or {}
    props = {
        "run_id": summary.get("run_id"),
        "model": model.get("name"),
        "fingerprint": model.get("fingerprint"),
        "random_weights": str(bool(model.get("random_weights"))).lower(),
        "on_inconclusive": on_inc,
    }
    effect = summary.get("overrides_effect")
    if isinstance(effect, dict) and effect.get("n_lines"):  # reviewer overrides are in the figures
        changed = [c.get("gate") for c in effect.get("changed_gates") or [] if isinstance(c, dict)]
        props.update(
            overrides_applied=str(effect.get("n_applied", 0)),
            overrides_lines=str(effect.get("n_lines")),
            overrides_changed_gates="; ".join(str(c) for c in changed) or "none",
            overrides_trail=effect.get("trail"),
            overrides=overrides_note(summary),
        )
    return _document(f"lm-audit gates: {summary.get('run_id')}", list(suites.values()), props)


def _compare_message(r: dict[str, Any], sid: str, proto: str) -> str:
    word = "REGRESSED" if r.get("regressed") else ("ok" if r.get("regressed") is False else "report only")
    thr = r.get("max_regression")
    parts = [
        f"{word} {sid}: {r.get('figure')}: A {fmt(r.get('a'))} -> B {fmt(r.get('b'))} (n_shared={r.get('n_shared')}), "
        f"delta {est_ci({'estimate': r.get('delta'), 'ci_low': r.get('ci_low'), 'ci_high': r.get('ci_high')})}, "
        f"p={fmt(r.get('p_value'))} ({r.get('test') or 'no test'}): {r.get('verdict')}",
    ]
    if thr is not None:
        parts.append(f"max regression {fmt(thr)}")
    parts += [f"warning: {w}" for w in r.get("warnings") or []]
    if proto:
        parts.append(f"protocol: {proto}")
    return "; ".join(parts)


def compare_junit(pairs: list[dict[str, Any]], many: dict[str, Any] | None = None, error: str | None = None) -> str:
    """JUnit XML of two-run comparisons (``compare_runs`` results), or of a many-run table
    (``compare_many``, report only) when there are no pairwise results; ``error``: the comparison
    could not run (a damaged or empty run)."""
    suites: list[_Suite] = []
    if error:
        s = _Suite("lm-audit.compare", None)
        s.case("lm-audit.compare", "runs readable", "error", f"ERROR {error}")
        suites.append(s)
    for res in pairs:
        a, b = res["run_a"].get("label", "A"), res["run_b"].get("label", "B")
        for sid, s_res in res.get("suites", {}).items():
            s = _Suite(f"lm-audit.compare.{sid}", None)
            cls = f"lm-audit.compare.{a}..{b}.{sid}"
            for r in s_res.get("figures", []):
                msg = _compare_message(r, sid, s_res.get("protocol_b", ""))
                s.case(cls, str(r.get("figure")), "failure" if r.get("regressed") else "pass", msg, kind="REGRESSED")
            suites.append(s)
        if res.get("unknown_thresholds"):
            s = _Suite("lm-audit.compare.thresholds", None)
            for k in res["unknown_thresholds"]:
                s.case(f"lm-audit.compare.{a}..{b}", f"--max-regression {k}", "error",
                       f"ERROR --max-regression names '{k}', which is not a figure of both runs")
            suites.append(s)
    if not pairs and many:
        for sid, s_res in many.get("suites", {}).items():
            s = _Suite(f"lm-audit.compare.{sid}", None)
            for f in s_res.get("figures", []):
                ranked = ", ".join(
                    f"{m['run']} {est_ci(m)} rank {m.get('rank')} {m.get('letters', '')}".strip()
                    for m in f.get("models", [])
                )
                s.case(f"lm-audit.compare.{sid}", str(f.get("figure")), "pass",
                       f"report only {sid}: {f.get('figure')} (n_shared={f.get('n_shared')}): {ranked}")
            suites.append(s)
    runs = [r for res in pairs for r in (res["run_a"], res["run_b"])] + list((many or {}).get("runs") or [])
    props = {  # reviewer overrides applied to a compared run's records (audit/compare/figures.py)
        f"overrides {r.get('label')}": f"{ov.get('n_applied')} applied ({ov.get('n_lines')} line(s) in {ov.get('trail')})"
        for r in runs if isinstance(ov := r.get("overrides"), dict)
    }
    return _document("lm-audit compare", suites, props)


def write_junit(path: Path, xml: str) -> Path:
    from audit.core.errors import UsageError

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(xml, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--junit: cannot write {path}: {exc.strerror or exc}") from None
    return path


def write_compare_junit(path: Path | None, pairs: list[dict[str, Any]], many: dict[str, Any] | None = None,
                        error: str | None = None) -> None:
    """The ``compare --junit FILE`` hook: nothing when no file was asked for."""
    if path is not None:
        print(f"junit: {write_junit(path, compare_junit(pairs, many, error))}")
