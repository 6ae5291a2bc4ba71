"""Gate text for the command line: one line per gate, the thin-data warning and the closing tally."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from audit.gates.evaluate import MIN_CLUSTERS_WARN, gate_line, verdict_of
from audit.summary.read import all_gate_results


def print_gates(summary: dict[str, Any], echo: Callable[[str], None] = print) -> None:
    if (summary.get("model") or {}).get("random_weights"):
        echo("note: this run used a RANDOM-WEIGHTS model; its figures say nothing about a real model")
    results = all_gate_results(summary)
    if not results:
        echo("gates: none defined (suite defaults or --policy)")
        return
    for r in results:
        echo(gate_line(r))
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
    counts = ", ".join(f"{verdicts.count(v)} {v.lower()}" for v in ("PASS", "FAIL", "INCONCLUSIVE", "ERROR"))
    oi = g.get("on_inconclusive", "fail")
    how = f"; INCONCLUSIVE counts as {'failed' if oi == 'fail' else 'passed'} (on_inconclusive: {oi})"
    echo(
        f"gates: {g['n_total'] - g['n_failed']}/{g['n_total']} passed ({counts})"
        + (how if "INCONCLUSIVE" in verdicts else "")
        + ("" if g["passed"] else " -> FAILED")
    )
