"""Comparing two runs (e.g. two model versions on the same suites).

For every figure both runs hold — each suite metric (and part) and each group gap
``gap(score, attribute)`` — A, B and the delta B − A are all computed on the clusters (prompts or
counterfactual sets) both runs hold, and ``n_shared`` says how many; items only one run holds are
counted in ``coverage`` and a warning, never dropped silently. The tests (``audit.compare.paired``):

- 0/1 outcomes (refusal, factual, stereotype preferred, any 0/1 score): Newcombe's hybrid score
  interval on the paired difference of proportions (valid at 0 and 1), exact McNemar as a cross-check;
- continuous figures: paired cluster bootstrap CI (t on a handful of clusters);
- interval and p-value from one method at one level, 1 - alpha, so they always agree; the verdict
  reads that interval (``decided_by``), from the figure's direction (higher better, lower better,
  or closest to an ideal such as 50 for pct_stereotype): ``better``, ``worse`` or ``no significant
  change``; ``uninformative`` when the score is constant in either run (never ranked, and a
  threshold on it fails: no signal is not a pass).

Runs with no shared prompts fall back to independent bootstraps (no test). A regression fails
when it exceeds a threshold given with ``--max-regression`` or in the policy's
``compare.max_regression``; with no threshold, compare only reports. A damaged or empty run
raises ``DamagedRunError``. See docs/statistics.md, "Comparing models".
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from audit.compare.figures import (
    item_coverage,
    load_runs,
    metric_specs,
    override_notes,
    protocol_text,
    protocol_warning,
    scorer_warnings,
    suite_figures,
)
from audit.compare.paired import estimate_on, few_clusters_warning, figure_badness, paired, unpaired, verdict
from audit.core.errors import UsageError
from audit.core.score_directions import scorer_directions
from audit.gates.evaluate import CompareSettings, StatsSettings
from audit.report.format import level_text, md_cell, num, pval


def _threshold_for(suite: str, figure: str, thresholds: dict[str, float]) -> float | None:
    for key in (f"{suite}/{figure}", f"{suite}:{figure}", figure, "*"):
        if key in thresholds:
            return thresholds[key]
    return None


def judge(res: dict[str, Any], threshold: float | None, bound: str) -> bool | None:
    """True when the figure regressed beyond the threshold (None: no threshold)."""
    if threshold is None:
        return None
    w = res.get("worsening")
    if w is None:
        return False
    if bound == "estimate":
        return w > threshold
    if bound == "conservative":
        hi = res.get("worsening_ci_high")
        return hi is not None and hi > threshold
    return res["verdict"] == "worse" and w > threshold


def compare_runs(
    run_a: Path,
    run_b: Path,
    stats: StatsSettings | None = None,
    settings: CompareSettings | None = None,
    max_regression: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Deltas B − A per figure with paired tests, verdicts and (optional) regression thresholds."""
    settings = settings or CompareSettings()
    # one level for intervals, p-values and verdicts: 1 - alpha
    stats = (stats or StatsSettings()).model_copy(update={"ci_level": 1 - settings.alpha})
    thresholds = {**settings.max_regression, **(max_regression or {})}
    runs = load_runs([Path(run_a), Path(run_b)])
    ra, rb = runs
    shared_suites = [s for s in rb.manifest.get("suites", {}) if s in ra.manifest.get("suites", {})]
    if not shared_suites:
        raise UsageError(f"{run_a} and {run_b} share no suite; nothing to compare")
    suites: dict[str, Any] = {}
    n_regressed = 0
    n_figures = 0
    for sid in shared_suites:
        specs = metric_specs([rb, ra], sid)
        groups_of: dict[str, list[str]] = {}
        fig_b = suite_figures(
            rb.records.get(sid, []), rb.manifest["suites"][sid], specs, groups_of, scorer_directions(rb.manifest)
        )
        fig_a = suite_figures(
            ra.records.get(sid, []), ra.manifest["suites"][sid], specs, groups_of, scorer_directions(ra.manifest)
        )
        warnings = [w for w in [protocol_warning(runs, sid)] if w]
        cov = item_coverage(runs, sid)
        if cov["n_items_not_shared"]:
            only = {g["runs"][0]: g["n_items"] for g in cov["not_shared"] if len(g["runs"]) == 1}
            warnings.append(
                f"{cov['n_shared_items']} items shared; {only.get(ra.label, 0)} only in A, "
                f"{only.get(rb.label, 0)} only in B: A, B and the deltas use the shared ones"
            )
        results = []
        for name, fb in fig_b.items():
            if name not in fig_a:
                continue
            fa = fig_a[name]
            seed = stats.seed + zlib.crc32(f"{sid}/{name}".encode())
            pa, pb = fa.present(), fb.present()
            shared = sorted(pa & pb)
            res: dict[str, Any] = {
                "figure": name,
                "kind": "binary" if fa.binary and fb.binary else ("gap" if fb.kind == "gap" else "continuous"),
                "higher_is": fb.higher_is,
                "ideal": fb.ideal,
                "n_a": len(pa),
                "n_b": len(pb),
                "a_all": estimate_on(fa, fa.rows(sorted(pa)), stats, seed + 3)["estimate"],
                "b_all": estimate_on(fb, fb.rows(sorted(pb)), stats, seed + 4)["estimate"],
            }
            res.update(paired(fa, fb, shared, stats, seed) if shared else unpaired(fa, fb, stats, seed))
            res["verdict"] = verdict(res, figure_badness(fb) is not None, settings.alpha)
            few = few_clusters_warning(len(shared), stats.permutations)
            res["warnings"] = [few] if few else []
            thr = _threshold_for(sid, name, thresholds)
            res["max_regression"] = thr
            res["regressed"] = judge(res, thr, settings.bound)
            flat = [lab for lab, f in ((ra.label, fa), (rb.label, fb)) if f.uninformative]
            if flat:  # no signal is never "no significant change", and never passes a threshold
                res.update(uninformative=flat, verdict="uninformative", regressed=True if thr is not None else None)
                res["warnings"].append(f"uninformative in {', '.join(flat)}: the score is constant (e.g. a "
                                       "random-weights model), so this delta says nothing")
            n_regressed += bool(res["regressed"])
            results.append(res)
        n_figures += len(results)
        suites[sid] = {
            "protocol_a": protocol_text(ra, sid),
            "protocol_b": protocol_text(rb, sid),
            "warnings": warnings,
            "coverage": cov,
            "figures": results,
        }
    unknown = [
        k
        for k in thresholds
        if k != "*"
        and not any(
            k in (r["figure"], f"{sid}/{r['figure']}", f"{sid}:{r['figure']}")
            for sid, s in suites.items()
            for r in s["figures"]
        )
    ]
    return {
        "schema_version": 1,
        "run_a": ra.info,
        "run_b": rb.info,
        "alpha": settings.alpha,
        "bound": settings.bound,
        "stats": stats.model_dump(),
        "warnings": scorer_warnings(runs) + override_notes(runs),
        "suites": suites,
        "unknown_thresholds": unknown,
        "thresholds_set": bool(thresholds),
        "n_figures": n_figures,
        "passed": n_regressed == 0 and not unknown,
        "n_regressed": n_regressed,
    }


def result_word(result: dict[str, Any]) -> str:
    """The last line of a comparison: PASS/FAIL only when thresholds were set."""
    if not result.get("thresholds_set", True):
        return f"compare: {result.get('n_figures', 0)} figures, no thresholds set"
    return f"compare: {'PASS' if result['passed'] else 'FAIL'} ({result['n_regressed']} regressed)"


def _discordant(r: dict[str, Any]) -> str:
    d = r.get("discordant")
    return f" ({d['a_only']} A-only, {d['b_only']} B-only)" if d else ""


def _distance(r: dict[str, Any]) -> str:
    """For figures with an ideal (pct_stereotype: 50), the change in distance from it, which the
    verdict tests."""
    if r.get("ideal") is None or r.get("higher_is") != "neutral":
        return ""
    return (f"; distance from {num(r['ideal'], 0)} {num(r['worsening'])} [{num(r['worsening_ci_low'])}, "
            f"{num(r['worsening_ci_high'])}], p={pval(r['p_worse'])}")


def render_compare_markdown(result: dict[str, Any]) -> str:
    a, b = result["run_a"], result["run_b"]
    lines = [
        f"# lm-audit compare: {md_cell(a['run_id'])} (A) → {md_cell(b['run_id'])} (B)",
        "",
        f"A: `{md_cell(a['model'])}`; B: `{md_cell(b['model'])}`. A, B and delta = B − A are all on the "
        f"prompts both runs hold (n shared). {level_text(result['stats']['ci_level'])} CIs, and each "
        f"p-value from the same interval (p < {result['alpha']} exactly when the CI excludes 0): 0/1 "
        f"outcomes: Newcombe hybrid score interval; other figures: paired cluster bootstrap (t on fewer "
        f"than 10 clusters). The verdict reads that interval (the worsening's, for figures with an "
        f"ideal); the exact McNemar or permutation test is a cross-check in compare.json only.",
        "",
    ]
    lines += [f"> warning: {md_cell(w)}" for w in result.get("warnings", [])]
    for sid, s in result["suites"].items():
        lines += [f"## {md_cell(sid)}", "", f"Protocol: {md_cell(s['protocol_b'])}", ""]
        lines += [f"> warning: {md_cell(w)}" for w in s["warnings"]]
        for g in s.get("coverage", {}).get("not_shared", []):
            lines.append(
                f"> items only in {md_cell(', '.join(g['runs']))}: {g['n_items']} "
                f"(e.g. {md_cell(', '.join(g['examples']))})"
            )
        lines += [
            "",
            "| figure | A | B | n shared | delta [CI] | p | test | verdict | max regression | result |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in s["figures"]:
            word = {True: "**REGRESSED**", False: "ok", None: ""}[r["regressed"]]
            lines.append(
                f"| {md_cell(r['figure'])} | {num(r['a'])} | {num(r['b'])} | {r['n_shared']} | {num(r['delta'])} "
                f"[{num(r['ci_low'])}, {num(r['ci_high'])}] | {pval(r['p_value'])} | {md_cell(r['test'] or '-')}"
                f"{_discordant(r)}{_distance(r)} | {r['verdict']} | {num(r['max_regression'])} | {word} |"
            )
        lines.append("")
    for k in result.get("unknown_thresholds", []):
        lines.append(f"error: threshold for unknown figure '{md_cell(k)}'")
    lines.append(result_word(result))
    return "\n".join(lines) + "\n"


def compare_lines(result: dict[str, Any]) -> list[str]:
    out = [f"warning: {w}" for w in result.get("warnings", [])]
    for sid, s in result["suites"].items():
        for w in s["warnings"]:
            out.append(f"warning {sid}: {w}")
        for r in s["figures"]:
            word = "REGRESSED" if r["regressed"] else ("ok" if r["regressed"] is False else "-")
            out.append(
                f"{word:9} {sid}  {r['figure']}: A {num(r['a'])} -> B {num(r['b'])} (n_shared={r['n_shared']}), "
                f"delta {num(r['delta'])} [{num(r['ci_low'])}, {num(r['ci_high'])}], "
                f"p={pval(r['p_value'])} ({r['test'] or 'no test'}{_discordant(r)}){_distance(r)}: {r['verdict']}"
                + (f" (decided by {r['decided_by']})" if r.get("decided_by") and r["verdict"] != "uninformative" else "")
            )
            out += [f"          warning: {w}" for w in r.get("warnings", [])]
    for k in result.get("unknown_thresholds", []):
        out.append(f"ERROR     --max-regression names '{k}', which is not a figure of both runs")
    out.append(result_word(result))
    return out
