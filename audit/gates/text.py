"""Gate text for the command line: one line per gate, the thin-data warning and the closing tally
(``tally_line``; ``overall_verdict`` is the run's verdict every surface shows)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from audit.gates.evaluate import MIN_CLUSTERS_WARN, verdict_of
from audit.gates.lines import gate_line, override_mark
from audit.summary.read import all_gate_results, overrides_note


def print_gates(summary: dict[str, Any], echo: Callable[[str], None] = print) -> None:
    if (summary.get("model") or {}).get("random_weights"):
        echo("note: this run used a RANDOM-WEIGHTS model; its figures say nothing about a real model")
    if summary.get("incomplete"):  # a running, interrupted or failed run never passes
        echo(f"gates: FAILED: {summary['incomplete']}")
    results = all_gate_results(summary)
    if not results:
        echo("gates: none defined (suite defaults or --policy)")
        return
    for r in results:
        mark = override_mark(r)  # the summary's changed_by_overrides (audit/summary/override_effect.py)
        echo(gate_line(r) + (f"  [{mark}]" if mark else ""))
    g = summary["gates"]
    verdicts = [verdict_of(r) for r in results]
    thin = [r for r in results if isinstance(r.get("n_clusters"), int) and r["n_clusters"] < MIN_CLUSTERS_WARN]
    if thin:
        fewest = min(r["n_clusters"] for r in thin)
        echo(
            f"warning: {len(thin)} gate(s) rest on fewer than {MIN_CLUSTERS_WARN} prompts/sets (as few as "
            f"{fewest}; a small --limit?): their verdicts are unreliable; "
            "`lm-audit plan --from RUN` says how many each gate needs"
        )
    echo(tally_line(verdicts, str(g.get("on_inconclusive", "fail")), bool(g["passed"])))
    if overrides_note(summary):
        echo(str(overrides_note(summary)))


def overall_verdict(verdicts: list[str]) -> str:
    """A run's verdict over its gates, whatever ``on_inconclusive`` says (that sets the exit code
    only): FAIL when a gate fails or errs, INCONCLUSIVE when one is undecided, PASS when all pass."""
    if not verdicts:
        return "NONE"
    if "FAIL" in verdicts or "ERROR" in verdicts:
        return "FAIL"
    return "INCONCLUSIVE" if "INCONCLUSIVE" in verdicts else "PASS"


def tally_line(verdicts: list[str], on_inconclusive: str, exit_ok: bool) -> str:
    """``gates: 2 pass, 0 fail, 4 inconclusive, 0 error of 6: INCONCLUSIVE; ...``: never a "passed"
    total that counts an INCONCLUSIVE gate; the exit code's reading of INCONCLUSIVE is said apart."""
    counts = ", ".join(f"{verdicts.count(v)} {v.lower()}" for v in ("PASS", "FAIL", "INCONCLUSIVE", "ERROR"))
    line = f"gates: {counts} of {len(verdicts)}: {overall_verdict(verdicts)}"
    if "INCONCLUSIVE" in verdicts:
        line += (f"; INCONCLUSIVE is not a pass; it {'fails' if on_inconclusive == 'fail' else 'does not fail'} "
                 f"the exit code (on_inconclusive: {on_inconclusive})")
    return line + ("" if exit_ok else " -> FAILED")
