"""Two or more runs side by side: per figure, every run on the clusters all of them hold, ranks,
pairwise paired tests with Holm's correction, and significance-group letters."""

from __future__ import annotations

import math
import string
import zlib
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from audit.compare.figures import (
    Figure,
    RunData,
    item_coverage,
    load_runs,
    metric_specs,
    override_notes,
    protocol_warning,
    scorer_warnings,
    suite_figures,
)
from audit.compare.paired import estimate_on, few_clusters_warning, figure_badness, paired
from audit.core.errors import UsageError
from audit.core.score_directions import scorer_directions
from audit.gates.evaluate import CompareSettings, StatsSettings
from audit.stats.resampling import holm

_LETTERS = string.ascii_lowercase + string.ascii_uppercase


def letter_groups(order: Sequence[str], significant: set[frozenset[str]]) -> dict[str, str]:
    """Compact letter display (Piepho 2004, insert-and-absorb): runs that share a letter are not
    significantly different; every significantly different pair shares none. ``order`` is the
    ranking (best first): letters are assigned in that order, so the best group is ``a``."""
    groups: list[set[str]] = [set(order)] if order else []
    for pair in significant:
        i, j = tuple(pair)
        split: list[set[str]] = []
        for g in groups:
            split.extend([g - {i}, g - {j}] if i in g and j in g else [g])
        unique: list[set[str]] = []
        for g in split:
            if g and g not in unique:
                unique.append(g)
        groups = [g for g in unique if not any(g < h for h in unique)]
    pos = {r: i for i, r in enumerate(order)}
    groups.sort(key=lambda g: sorted(pos[r] for r in g))
    out = {r: "" for r in order}
    for li, g in enumerate(groups):
        letter = _LETTERS[li] if li < len(_LETTERS) else f"<{li}>"
        for r in sorted(g, key=pos.__getitem__):
            out[r] += letter
    return out


def _ranks(labels: list[str], badness: list[float | None]) -> dict[str, int | None]:
    """1 = best; ties share the better rank; None where the figure has no value."""
    vals = {lab: b for lab, b in zip(labels, badness, strict=True) if b is not None and math.isfinite(b)}
    out: dict[str, int | None] = dict.fromkeys(labels)
    for lab, b in vals.items():
        out[lab] = 1 + sum(1 for other in vals.values() if other < b - 1e-12)
    return out


def compare_figure_many(
    runs: Sequence[RunData], figs: Sequence[Figure], stats: StatsSettings, alpha: float, seed: int
) -> dict[str, Any]:
    """One figure across runs (``figs[i]`` belongs to ``runs[i]``), on the clusters all runs hold."""
    present = [f.present() for f in figs]
    shared = sorted(set.intersection(*present))
    f0 = figs[0]
    res: dict[str, Any] = {
        "figure": f0.name,
        "kind": "binary" if all(f.binary for f in figs) else ("gap" if f0.kind == "gap" else "continuous"),
        "higher_is": f0.higher_is,
        "ideal": f0.ideal,
        "n_shared": len(shared),
        "n_clusters": {r.label: len(p) for r, p in zip(runs, present, strict=True)},
        "warnings": [],
    }
    if not shared:
        res["warnings"].append("no cluster (prompt or counterfactual set) is held by every run: not compared")
    few = few_clusters_warning(len(shared), stats.permutations)
    if few:
        res["warnings"].append(few)
    bad = figure_badness(f0)
    flat = [r.label for r, f in zip(runs, figs, strict=True) if f.uninformative]
    if flat:
        res["warnings"].append(f"uninformative in {', '.join(flat)}: the score is constant (e.g. a random-weights "
                               "model); not ranked and in no significance group")
    models = []
    for i, (run, fig) in enumerate(zip(runs, figs, strict=True)):
        est = estimate_on(fig, fig.rows(shared), stats, seed + 7 * i)
        b = None
        if bad is not None and shared and not fig.uninformative:
            b = float(bad(fig.rows(shared).sum(0)))
        models.append({"run": run.label, "model": run.info.get("model"), **est, "_bad": b,
                       "uninformative": fig.uninformative})
    labels = [m["run"] for m in models]
    ranks = _ranks(labels, [m["_bad"] for m in models]) if bad is not None else dict.fromkeys(labels)
    pairs = []
    if shared:
        for (i, ra), (j, rb) in combinations(enumerate(runs), 2):
            r = paired(figs[i], figs[j], shared, stats, seed + 1000 + 31 * i + j)
            r["est_a"], r["est_b"] = r.pop("a"), r.pop("b")
            pairs.append({"a": ra.label, "b": rb.label, **r})
    p_for = [p["p_worse"] if bad is not None else p["p_value"] for p in pairs]
    for p, adj in zip(pairs, holm(p_for), strict=True):
        p["p_holm"] = adj
        p["significant"] = adj is not None and adj < alpha and not ({p["a"], p["b"]} & set(flat))
    significant = {frozenset((p["a"], p["b"])) for p in pairs if p["significant"]}

    def sort_key(m: dict[str, Any]) -> tuple[float, float]:
        rank = ranks[m["run"]]
        est = m["estimate"] if m["estimate"] is not None else -math.inf
        return (rank if rank is not None else math.inf, -est)

    models.sort(key=sort_key)
    order = [m["run"] for m in models if m["estimate"] is not None and not m["uninformative"]]
    letters = letter_groups(order, significant) if shared else {}
    for m in models:
        m.pop("_bad")
        m["rank"] = ranks[m["run"]]
        m["letters"] = letters.get(m["run"], "")
    res["models"] = models
    res["pairwise"] = pairs
    return res


def compare_many(
    run_dirs: Sequence[Path | str],
    stats: StatsSettings | None = None,
    settings: CompareSettings | None = None,
) -> dict[str, Any]:
    """Compare two or more runs, figure by figure, on the items they all hold.

    Plain data for ``lm-audit compare`` (3+ runs), ``lm-audit run --model A --model B`` and the
    dashboard's models page::

        {"schema_version": 1, "kind": "compare-many", "alpha": 0.05, "ci_level": 0.95,
         "stats": {...StatsSettings...},
         "runs": [{"label", "path", "run_id", "model", "random_weights", "seed", "selection_seed",
                   "n_records"}],                       # labels are unique (run_id, "#2" if repeated)
         "warnings": [str],                             # scorer versions/fingerprints that differ
         "n_figures": int,
         "suites": {suite_id: {
             "protocols": {label: str}, "warnings": [str],
             "coverage": {"n_items": {label: int}, "n_shared_items": int, "n_items_not_shared": int,
                          "not_shared": [{"runs": [label], "n_items": int, "examples": [item_id]}]},
             "figures": [{
                 "figure": str, "kind": "binary" | "continuous" | "gap",
                 "higher_is": "better" | "worse" | "neutral", "ideal": float | None,
                 "n_shared": int,                       # clusters held by every run: all numbers use them
                 "n_clusters": {label: int}, "warnings": [str],
                 "models": [{"run": label, "model": str, "estimate", "ci_low", "ci_high", "n", "method",
                             "rank": int | None,        # 1 = best; None: no direction, or uninformative
                             "uninformative": bool,     # the score is constant in that run: never ranked
                             "letters": str}],          # ranked order; a shared letter = not significantly different
                 "pairwise": [{"a": label, "b": label, "est_a", "est_b", "delta", ...}]}]}}}

    Each ``pairwise`` entry is B − A for one pair of runs (``a``, ``b`` are run labels; the
    estimates on the shared clusters are ``est_a``, ``est_b``): ``delta``, ``ci_low``, ``ci_high``,
    ``p_value`` (delta = 0, from the same method and level as the CI: 1 - alpha), ``p_worse`` ("B is
    worse", which the ranking letters use; equals ``p_value`` unless the figure has an ideal such as
    50), ``p_holm`` (Holm over the figure's pairs), ``significant`` (p_holm < alpha; never for an
    uninformative run), ``test`` (the interval's method), ``decided_by``, ``exact_test`` (exact
    McNemar or permutation: a cross-check), ``method``, ``worsening`` (+ CI), ``discordant``
    ({"a_only", "b_only"} for paired 0/1 outcomes, else None), ``n_shared``.

    Raises ``UsageError`` for fewer than two runs or no shared suite, and ``DamagedRunError`` (a
    ``UsageError``) for a damaged or empty run.
    """
    settings = settings or CompareSettings()
    # one level for intervals, p-values and significance letters: 1 - alpha
    stats = (stats or StatsSettings()).model_copy(update={"ci_level": 1 - settings.alpha})
    if len(run_dirs) < 2:
        raise UsageError("compare needs at least two runs")
    runs = load_runs([Path(p) for p in run_dirs])
    suite_ids = [s for s in runs[0].manifest.get("suites", {}) if all(s in r.manifest.get("suites", {}) for r in runs)]
    if not suite_ids:
        raise UsageError(f"the runs {', '.join(r.label for r in runs)} share no suite; nothing to compare")
    from audit.compare.figures import protocol_text

    suites: dict[str, Any] = {}
    n_figures = 0
    for sid in suite_ids:
        specs = metric_specs(runs, sid)
        groups_of: dict[str, list[str]] = {}
        per_run = [
            suite_figures(r.records.get(sid, []), r.manifest["suites"][sid], specs, groups_of, scorer_directions(r.manifest))
            for r in runs
        ]
        names = [n for n in per_run[0] if all(n in f for f in per_run[1:])]
        warnings = [w for w in [protocol_warning(runs, sid)] if w]
        cov = item_coverage(runs, sid)
        if cov["n_items_not_shared"]:
            warnings.append(
                f"{cov['n_items_not_shared']} items are not held by every run and are left out of every "
                f"figure ({cov['n_shared_items']} shared); see coverage"
            )
        figures = []
        for name in names:
            seed = stats.seed + zlib.crc32(f"{sid}/{name}".encode())
            figures.append(compare_figure_many(runs, [f[name] for f in per_run], stats, settings.alpha, seed))
        n_figures += len(figures)
        suites[sid] = {
            "protocols": {r.label: protocol_text(r, sid) for r in runs},
            "warnings": warnings,
            "coverage": cov,
            "figures": figures,
        }
    return {
        "schema_version": 1,
        "kind": "compare-many",
        "alpha": settings.alpha,
        "ci_level": stats.ci_level,
        "stats": stats.model_dump(),
        "runs": [r.info for r in runs],
        "warnings": scorer_warnings(runs) + override_notes(runs),
        "n_figures": n_figures,
        "suites": suites,
    }
