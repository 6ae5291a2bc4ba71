"""SARIF 2.1.0 of a run's gates, for code-scanning annotations (``lm-audit gate --sarif FILE``).

One ``result`` per gate that did not pass: FAIL and ERROR are ``level: error``; INCONCLUSIVE is
``error`` when it counts as failed (``on_inconclusive: fail``) and ``warning`` otherwise. A damaged
run adds a ``run-integrity`` result on its ``records.jsonl``. PASS gates give no result: SARIF lists
findings, and a passing gate is none, except one that passes only because reviewer overrides
changed its verdict (``level: note``: the review trail shows where the alert would have been).
Each result's location is the suite file the gate belongs to, with the line of the gate when that
file declares it; a gate from ``--policy`` also points at the policy file (``relatedLocations``),
and one that matched no suite is located in the policy file. Paths under ``root`` (the working
directory by default: the checkout, in CI) are written relative to it, as code scanning expects;
others as ``file://`` URIs. The message is the line ``lm-audit gate`` prints; ``properties`` carry
the verdict, the figure with its CI, the bound judged and the protocol. A verdict reviewer
overrides changed (the summary's ``changed_by_overrides``) says so at the end of the message and
in ``changedByOverrides`` / ``verdictWithoutOverrides``. Rule ids (``gate/<suite>/<figure> <op>
<threshold>``) stay the same from run to run, so code scanning can track a gate's alert.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import quote

from audit import __version__
from audit.core.errors import UsageError
from audit.gates.evaluate import verdict_of
from audit.gates.lines import gate_line, override_mark, verdict_before_overrides
from audit.summary.read import all_gate_results

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "lm-audit"
PROPERTY_KEYS = ("suite", "metric", "op", "threshold", "bound", "value", "estimate", "ci_low", "ci_high",
                 "n_clusters", "protocol", "source", "error")


def artifact_uri(path: str | Path, root: Path | None = None) -> str:
    """``path`` as a SARIF artifact URI: relative (POSIX, percent-encoded) when inside ``root``
    (default: the working directory), else an absolute ``file://`` URI."""
    base = (root or Path.cwd()).resolve()
    p = Path(path)
    full = (p if p.is_absolute() else base / p).resolve()
    if full.is_relative_to(base):
        return quote(full.relative_to(base).as_posix())
    return full.as_uri()


def declared_line(path: str | Path | None, gate: dict[str, Any]) -> int | None:
    """The 1-based line of ``gate`` (same metric, op and threshold) in the top-level ``gates:`` list
    of a suite or policy YAML file; None when the file is unreadable or does not declare it."""
    if not path:
        return None
    import yaml

    from audit.suites.yamlsafe import read_yaml

    try:
        _data, root = read_yaml(Path(path))
    except (UsageError, OSError):
        return None
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if getattr(key, "value", None) == "gates" and isinstance(value, yaml.SequenceNode):
            for node in value.value:
                if isinstance(node, yaml.MappingNode) and _same_gate(node, gate):
                    return int(node.start_mark.line) + 1
    return None


def _same_gate(node: Any, gate: dict[str, Any]) -> bool:
    fields = {getattr(k, "value", None): getattr(v, "value", None) for k, v in node.value}
    try:
        same_threshold = float(fields.get("threshold")) == float(gate.get("threshold"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return same_threshold and fields.get("metric") == gate.get("metric") and fields.get("op") == gate.get("op")


def _threshold(t: Any) -> str:
    return f"{t:.10g}" if isinstance(t, int | float) and not isinstance(t, bool) else str(t)


def _clean(v: Any) -> Any:
    """JSON-safe: a non-finite float becomes None."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _location(uri: str, line: int | None, text: str | None = None) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": uri}}
    if line is not None:
        physical["region"] = {"startLine": line}
    loc: dict[str, Any] = {"physicalLocation": physical}
    if text:
        loc["message"] = {"text": text}
    return loc


def level_of(r: dict[str, Any]) -> str | None:
    """SARIF level of a gate result: None for PASS (no result), ``note`` for a PASS that reviewer
    overrides made, ``warning`` for an INCONCLUSIVE gate that counts as passed, else ``error``."""
    v = verdict_of(r)
    if v == "PASS":
        return "note" if verdict_before_overrides(r) is not None else None
    if v == "INCONCLUSIVE" and r.get("passed"):
        return "warning"
    return "error"


def gates_sarif(summary: dict[str, Any], manifest: dict[str, Any], run_dir: Path,
                root: Path | None = None) -> dict[str, Any]:
    """The SARIF log (a dict) of a summary's gates; see the module docstring."""
    suites = manifest.get("suites") or {}
    policy = summary.get("policy")
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []

    def rule(rule_id: str, text: str) -> int:
        if rule_id not in rules:
            rules[rule_id] = {"id": rule_id, "shortDescription": {"text": text}}
        return list(rules).index(rule_id)

    damaged = summary.get("damaged")
    if damaged:
        results.append({
            "ruleId": "run-integrity",
            "ruleIndex": rule("run-integrity", "the run's records are complete and readable"),
            "level": "error",
            "message": {"text": f"damaged run: {damaged.get('reason') or 'unreadable or missing records'}"},
            "locations": [_location(artifact_uri(Path(run_dir) / "records.jsonl", root), None)],
        })
    for r in all_gate_results(summary):
        level = level_of(r)
        if level is None:
            continue
        gate = f"{r.get('metric')} {r.get('op')} {_threshold(r.get('threshold'))}"
        rule_id = f"gate/{r.get('suite') or 'policy'}/{gate}"
        suite_path = (suites.get(r.get("suite")) or {}).get("path") if r.get("suite") else None
        from_policy = policy if r.get("source") == "policy" and policy else None
        locations, related = [], []
        if suite_path:
            line = declared_line(suite_path, r) if r.get("source") == "suite" else None
            locations.append(_location(artifact_uri(suite_path, root), line))
            if from_policy:
                related.append({"id": 0, **_location(artifact_uri(from_policy, root), declared_line(from_policy, r),
                                                     "the gate, in the policy")})
        elif from_policy:  # matched no suite: the policy file is where it lives
            locations.append(_location(artifact_uri(from_policy, root), declared_line(from_policy, r)))
        result: dict[str, Any] = {
            "ruleId": rule_id,
            "ruleIndex": rule(rule_id, f"gate {gate}" + (f" on suite {r['suite']}" if r.get("suite") else "")),
            "level": level,
            "message": {"text": gate_line(r) + (f"; {override_mark(r)}" if override_mark(r) else "")},
            "properties": {"verdict": verdict_of(r),
                           **{k: _clean(r[k]) for k in PROPERTY_KEYS if r.get(k) is not None}},
        }
        if verdict_before_overrides(r) is not None:  # the summary's changed_by_overrides
            result["properties"].update(changedByOverrides=True,
                                        verdictWithoutOverrides=verdict_before_overrides(r))
        if locations:
            result["locations"] = locations
        if related:
            result["relatedLocations"] = related
        results.append(result)
    model = summary.get("model") or {}
    counts = {k: v for k, v in (summary.get("gates") or {}).items() if k != "unmatched"}
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {"name": TOOL_NAME, "version": __version__, "semanticVersion": __version__,
                                "rules": list(rules.values())}},
            "results": results,
            "properties": {
                "run_id": summary.get("run_id"),
                "model": model.get("name"),
                "fingerprint": model.get("fingerprint"),
                "random_weights": bool(model.get("random_weights")),
                "gates": counts,
            },
        }],
    }


def write_gates_sarif(path: Path, summary: dict[str, Any], run_dir: Path, root: Path | None = None) -> Path:
    """Write ``gates_sarif`` to ``path``; a one-line ``UsageError`` when it cannot be written."""
    from audit.store.run_store import read_manifest

    doc = gates_sarif(summary, read_manifest(Path(run_dir)), Path(run_dir), root)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=True, allow_nan=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--sarif: cannot write {path}: {exc.strerror or exc}") from None
    return path
