"""Filter benchmark: what the gated filter adds to a generation.

1. Per text, without a model: ``GatedGenerator.moderate`` on benign texts of about 20, 200 and
   2,000 words (normalization, windows, scoring), p50 and p95; plus normalization alone.
2. Per generation, on a real model, one prompt at a time (as a chat app calls it): the model's
   time and the filter's added time (input + output checks, regenerations' checks), p50 and p95,
   and their ratio. Generation time includes regenerations, filter time their checks.
3. Streaming: time to the first released text and the share of forward passes saved when a
   check fails early (a completion is made to fail after 8 tokens by a test scorer).

Usage (offline, about 1-2 minutes on 2 CPU cores with smollm2-135m):

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python bench/bench_filter.py

Options: ``--model smollm2-135m --policy default --generations 24 --tokens 32 --json FILE``.
Speed belongs here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.core.types import GenParams
from audit.guard import Check, GatedGenerator, Policy, load_policy
from audit.guard.evaluate import _percentile, load_eval_texts
from audit.guard.normalize import normalize
from audit.scorers.base import Scorer, ScoreSpec


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values) * 1000, 3),
        "p95_ms": round(_percentile(values, 0.95) * 1000, 3),
    }


def bench_texts(policy: Policy, repeat: int = 30) -> dict[str, Any]:
    benign = load_eval_texts()["benign"]
    sentence_pool = " ".join(benign).split()
    sizes = {"20_words": 20, "200_words": 200, "2000_words": 2000}
    gate = GatedGenerator(None, policy)
    gate.moderate("warm up")  # loads the scorer
    out: dict[str, Any] = {}
    for label, n in sizes.items():
        words = (sentence_pool * (n // len(sentence_pool) + 1))[:n]
        text = " ".join(words)
        times, norm_times = [], []
        for _ in range(repeat if n < 2000 else max(5, repeat // 5)):
            t0 = time.perf_counter()
            gate.moderate(text)
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            normalize(text)
            norm_times.append(time.perf_counter() - t0)
        out[label] = {"moderate": _stats(times), "normalize_only": _stats(norm_times)}
    gate.close()
    return out


def bench_generation(policy: Policy, model: Any, n: int, tokens: int) -> dict[str, Any]:
    prompts = load_eval_texts()["latency_prompts"]
    prompts = (prompts * (n // len(prompts) + 1))[:n]
    chat = bool(getattr(model, "has_chat_template", False))
    params = GenParams(max_new_tokens=tokens, temperature=0.7, top_p=0.9, chat=chat)
    gate = GatedGenerator(model, policy, params=params)
    gate.generate("warm up")
    gen, filt, ratio, actions = [], [], [], []
    for i, prompt in enumerate(prompts):
        result = gate.generate(prompt, key=f"bench/{i}")
        lat = result.decision.latency
        gen.append(lat["generate_s"])
        filt.append(lat["filter_s"])
        ratio.append(lat["filter_s"] / lat["generate_s"] if lat["generate_s"] else 0.0)
        actions.append(result.decision.action)
    gate.close()
    return {
        "n_generations": n,
        "max_new_tokens": tokens,
        "generate": _stats(gen),
        "filter": _stats(filt),
        "filter_over_generate": {
            "p50": round(statistics.median(ratio), 4),
            "p95": round(_percentile(ratio, 0.95), 4),
        },
        "actions": {a: actions.count(a) for a in sorted(set(actions))},
    }


class _FailsAfter(Scorer):
    """Flags any text longer than ``n`` characters: forces an early stop in the stream."""

    name = "fails-after"
    outputs = (ScoreSpec("flag", 0, 1, "worse", "test flag"),)

    def __init__(self, n: int) -> None:
        self.n = n

    def score(self, texts, refs=None):  # type: ignore[no-untyped-def]
        return [{"flag": float(len(t) > self.n)} for t in texts]


def bench_stream(policy: Policy, model: Any, tokens: int) -> dict[str, Any]:
    chat = bool(getattr(model, "has_chat_template", False))
    params = GenParams(max_new_tokens=tokens, temperature=0.7, top_p=0.9, chat=chat)
    gate = GatedGenerator(model, policy, params=params)
    t0 = time.perf_counter()
    first = None
    for event in gate.stream("Write one sentence about the ocean."):
        if first is None and event.delta:
            first = time.perf_counter() - t0
    full = time.perf_counter() - t0
    gate.close()
    failing = Policy(stream_check_every=4, output_checks=[Check(scorer=_FailsAfter(30), threshold=0.5)])
    gate = GatedGenerator(model, failing, params=params)
    t0 = time.perf_counter()
    events = list(gate.stream("Write a long story about the ocean."))
    stopped = time.perf_counter() - t0
    gate.close()
    used = events[-1].decision.attempts[0]["n_tokens"]
    return {
        "time_to_first_text_s": round(first or full, 4),
        "full_stream_s": round(full, 4),
        "early_stop": {
            "stopped_early": events[-1].decision.stopped_early,
            "tokens_generated": used,
            "max_new_tokens": tokens,
            "time_s": round(stopped, 4),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--policy", default=None, help="filter policy (default: built-in)")
    ap.add_argument("--generations", type=int, default=24)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    args = ap.parse_args()

    from audit.models.registry import load_model

    policy = load_policy(args.policy)
    report: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "policy": policy.name,
        "model": args.model,
    }
    report["per_text"] = bench_texts(policy)
    model = load_model(args.model)
    report["per_generation"] = bench_generation(policy, model, args.generations, args.tokens)
    report["stream"] = bench_stream(policy, model, max(args.tokens, 48))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
