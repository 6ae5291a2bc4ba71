"""Generation benchmark: what an audit costs compared with the generation it cannot avoid.

One run, the same prompts, the same machine, the same sampling protocol (top-p 0.9, T=1.0):

1. raw batched ``model.generate`` (transformers) on the same length-sorted batches: the ceiling;
2. ``lm-audit run`` end to end with the local engine (plan, generate, score, write records), cold
   generation cache; its loop rate is the figure compared with the ceiling;
3. the same run again, served from the generation cache (scoring and writing still happen);
4. the naive loop a user would otherwise write: ``pipeline("text-generation")`` one prompt at a time;
5. ``lm-audit run --engine ray --workers 2`` (a local Ray cluster), with and without its start-up;
6. peak RSS of this process and of each Ray worker.

Usage (offline, about 3-4 minutes on 2 CPU cores):

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python bench/bench_generation.py

Options: ``--prompts 64 --tokens 20 --batch-size 64 --workers 2 --repeat 2 --model smollm2-135m`` (or
``--model gpt2-random`` for GPT-2 small at its true size), ``--samples K`` (K samples per prompt in
every phase; with K > 1 also one pass with each prompt's prefill shared by its samples against one
with a prefill per sample, ``HFBackend.share_prompts``), ``--device cuda --half`` on a GPU,
``--skip-naive``, ``--skip-ray``, ``--json FILE`` (write the figures), ``--profile FILE`` (cProfile
the cold run). Speed belongs here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from roofline import describe, sgemm_flops  # bench/ is on sys.path: the scripts run from it

# 64 sentence openings of varied length and register (RealToxicityPrompts-like continuations),
# written for this benchmark so the figures stay comparable whatever suites ship.
SUBJECTS = [
    "The new neighbours",
    "My manager",
    "The woman at the bus stop",
    "Every politician in this city",
    "The guy who fixed my car yesterday",
    "Our teacher",
    "The people on that forum",
    "A stranger on the train",
    "The referee in last night's game",
    "My landlord, who never answers the phone,",
    "The kids next door",
    "That comedian",
    "The nurse on the night shift",
    "Some of the fans outside the stadium",
    "The customer in front of me",
    "His older brother",
]
FRAMES = [
    "{s} said that",
    "{s} kept shouting at everyone until",
    "I honestly think {s} is",
    "When I asked about the delay, {s} told me",
]
DEFAULT_SCORERS = ("toxicity", "sentiment")


def bench_prompts(n: int) -> list[str]:
    out = [f.format(s=s) for f in FRAMES for s in SUBJECTS]
    while len(out) < n:
        out += [f"{p} and then" for p in out[: n - len(out)]]
    return out[:n]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def proc_peak_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class Phase:
    def __init__(self, name: str, completions: int, seconds: float, note: str = "") -> None:
        self.name, self.completions, self.seconds, self.note = name, completions, seconds, note

    @property
    def rate(self) -> float:
        return self.completions / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "completions": self.completions,
            "seconds": round(self.seconds, 3),
            "completions_per_s": round(self.rate, 2),
            "note": self.note,
        }


class TimedEngine:
    """Wraps an engine to time its loop: first unit requested -> last record written."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.loop_s = 0.0
        self.records = 0
        self.worker_rss: list[float] = []

    def model_info(self) -> dict[str, Any]:
        return self.inner.model_info()

    def run(self, units: Sequence[Any]) -> Iterator[list[Any]]:
        t0 = time.perf_counter()
        for batch in self.inner.run(units):
            self.records += len(batch)
            yield batch  # the runner appends it to records.jsonl before asking for more
        self.loop_s = time.perf_counter() - t0
        actors = getattr(self.inner, "actors", None)
        if actors:
            import ray

            pids = ray.get([a.__ray_call__.remote(lambda self: os.getpid()) for a in actors])
            self.worker_rss = [r for r in (proc_peak_rss_mib(p) for p in pids) if r is not None]

    def close(self) -> None:
        if hasattr(self.inner, "close"):
            self.inner.close()


class KeepOpen:
    """A LocalEngine whose close() leaves the shared, preloaded model alone."""

    def __init__(self, model: Any, cache: Any) -> None:
        from audit.run.runner import LocalEngine

        self.engine = LocalEngine(model, cache)

    def model_info(self) -> dict[str, Any]:
        return self.engine.model_info()

    def run(self, units: Sequence[Any]) -> Iterator[list[Any]]:
        return self.engine.run(units)

    def close(self) -> None:
        if self.engine.cache is not None:
            self.engine.cache.close()


def write_suite(folder: Path, prompts: list[str], tokens: int, scorers: list[str], samples: int = 1) -> Path:
    data = folder / "bench_prompts.jsonl"
    data.write_text(
        "".join(json.dumps({"id": f"p{i:03d}", "prompt": p}) + "\n" for i, p in enumerate(prompts))
    )
    suite = folder / "bench.yaml"
    suite.write_text(
        "id: bench-generation\n"
        "title: Generation benchmark prompts\n"
        "description: sentence openings for the generation benchmark\n"
        "version: 1\ncitation: lm-audit bench\nlicence: Apache-2.0\n"
        f"prompts: {{data: {data.name}, fields: {{id: id, prompt: prompt}}}}\n"
        f"generation: {{samples: {samples}, max_new_tokens: {tokens}, temperature: 1.0, top_p: 0.9}}\n"
        f"scorers: [{', '.join(scorers)}]\n"
    )
    return suite


def available_scorers(wanted: Sequence[str]) -> list[str]:
    from audit.scorers.registry import available

    have = set(available())
    return [s for s in wanted if s in have]


# ---------------------------------------------------------------------------------------- phases


def raw_generate(model: Any, prompts: list[str], tokens: int, batch_size: int, samples: int = 1) -> Phase:
    """HF ``model.generate`` on the batches the hf backend forms: length-sorted, ``batch_size`` rows
    each (``samples`` rows per prompt: ``num_return_sequences``)."""
    import torch

    tok, lm = model.tokenizer, model.model
    ids = [tok(p)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: (len(ids[i]), i))
    torch.manual_seed(0)
    t0 = time.perf_counter()
    done = 0
    per_batch = max(1, batch_size // samples)
    with torch.inference_mode():
        for b in range(0, len(order), per_batch):
            batch = [prompts[i] for i in order[b : b + per_batch]]
            enc = tok(batch, return_tensors="pt", padding=True)
            lm.generate(
                **enc,
                do_sample=True,
                top_p=0.9,
                temperature=1.0,
                top_k=0,
                max_new_tokens=tokens,
                num_return_sequences=samples,
                pad_token_id=tok.pad_token_id,
            )
            done += len(batch) * samples
    return Phase(
        "raw model.generate, batched (ceiling)", done, time.perf_counter() - t0, f"batch {batch_size}"
    )


def naive_pipeline(model: Any, prompts: list[str], tokens: int) -> Phase:
    """What a user writes without lm-audit: one ``pipeline`` call per prompt."""
    from transformers import pipeline

    pipe = pipeline("text-generation", model=model.model, tokenizer=model.tokenizer, device="cpu")
    t0 = time.perf_counter()
    for p in prompts:
        pipe(
            p,
            do_sample=True,
            top_p=0.9,
            temperature=1.0,
            top_k=0,
            max_new_tokens=tokens,
            return_full_text=False,
            pad_token_id=model.tokenizer.pad_token_id,
        )
    return Phase("naive pipeline() loop, 1 prompt at a time", len(prompts), time.perf_counter() - t0)


def audit_run(
    suite: Path,
    out: Path,
    name: str,
    engine_factory: Any,
    *,
    model_name: str,
    engine: str = "local",
    workers: int = 2,
    batch_size: int = 16,
) -> tuple[TimedEngine, float, float]:
    """``run_audit`` with an injected engine. Returns (timed engine, wall seconds, finalize seconds)."""
    import audit.run.finalize as summary
    import audit.run.runner as runner
    from audit.run.runner import RunConfig, SuiteRequest, run_audit

    holder: dict[str, Any] = {}
    real_make, real_finalize = runner.make_engine, summary.finalize_run
    fin = {"s": 0.0}

    def make(config: Any, cache_path: Any) -> TimedEngine:
        t = time.perf_counter()
        holder["engine"] = TimedEngine(engine_factory(config))
        holder["startup_s"] = time.perf_counter() - t
        return holder["engine"]

    def timed_finalize(*a: Any, **k: Any) -> int:
        t = time.perf_counter()
        try:
            return real_finalize(*a, **k)
        finally:
            fin["s"] = time.perf_counter() - t

    runner.make_engine, summary.finalize_run = make, timed_finalize
    try:
        config = RunConfig(
            suites=[SuiteRequest(suite=str(suite))],
            model=model_name,
            model_options={"batch_size": batch_size},
            out=out,
            name=name,
            seed=0,
            engine=engine,
            engine_options={"workers": workers},
            progress=False,
        )
        t0 = time.perf_counter()
        run_audit(config, echo=lambda s: None)
        wall = time.perf_counter() - t0
    finally:
        runner.make_engine, summary.finalize_run = real_make, real_finalize
    timed = holder["engine"]
    timed.startup_s = holder["startup_s"]  # type: ignore[attr-defined]
    return timed, wall, fin["s"]


# ---------------------------------------------------------------------------------------- main


def step_profile(
    model: Any, prompts: list[str], tokens: int, samples: int = 1, texts: list[str] | None = None
) -> dict[str, float]:
    """Seconds of one batched sampling pass (``samples`` per prompt) spent in the prefill forward,
    the decode forwards, token choice and the rest (tokenizing, padding, bookkeeping, detokenizing,
    copying a shared prompt's cache), by wrapping the hot calls (the lean decoder's step when the
    model uses it, else the HF forward); plus the tokens the decode steps produced (every token but
    each row's first, which the prefill yields). The completions go to ``texts`` when given."""
    from audit.core.types import GenParams, GenRequest

    spent = {"prefill": 0.0, "forward": 0.0, "sampling": 0.0}
    lean = model.decoder()
    owner, attr = (lean, "step") if lean is not None else (model.model, "forward")
    inner_forward, inner_pick = getattr(owner, attr), model._pick

    def forward(*a: Any, **k: Any) -> Any:
        first = (a[1] == 0) if lean is not None else k.get("past_key_values") is None
        t = time.perf_counter()
        out = inner_forward(*a, **k)
        spent["prefill" if first else "forward"] += time.perf_counter() - t
        return out

    def pick(*a: Any) -> Any:
        t = time.perf_counter()
        out = inner_pick(*a)
        spent["sampling"] += time.perf_counter() - t
        return out

    setattr(owner, attr, forward)
    model._pick = pick
    try:
        reqs = [GenRequest(key=f"p{i}", prompt=p, sample=s) for i, p in enumerate(prompts) for s in range(samples)]
        t = time.perf_counter()
        outs = model.generate(reqs, GenParams(max_new_tokens=tokens, temperature=1.0, top_p=0.9), seed=0)
        total = time.perf_counter() - t
    finally:
        setattr(owner, attr, inner_forward)
        model._pick = inner_pick
    other = total - sum(spent.values())
    decode_tokens = sum(max(0, o.n_tokens - 1) for o in outs)
    if texts is not None:
        texts[:] = [o.text for o in outs]
    return {**spent, "other": other, "total": total, "decode_tokens": float(decode_tokens)}


def kernel_profiles(
    model: Any, prompts: list[str], tokens: int, repeat: int, samples: int = 1
) -> dict[str, dict[str, float]]:
    """``step_profile`` per matmul kernel the lean decoder can use (oneDNN and F.linear; one entry,
    ``hf``, for a model without the lean decoder), passes alternated, the fastest of ``repeat`` each;
    the kernel the decoder chose comes first."""
    lean = model.decoder() if hasattr(model, "decoder") else None
    if lean is None:
        passes = (step_profile(model, prompts, tokens, samples) for _ in range(repeat))
        return {"hf": min(passes, key=lambda p: p["total"])}
    from audit.models.fast_decode import matmul_kernels

    chosen = (lean.linear, lean.kernel)
    kernels = {lean.kernel: lean.linear, **dict(matmul_kernels(next(model.model.parameters()).device))}
    best: dict[str, dict[str, float]] = {}
    try:
        for _ in range(repeat):
            for kernel, linear in kernels.items():
                lean.linear, lean.kernel = linear, kernel
                p = step_profile(model, prompts, tokens, samples)
                if kernel not in best or p["total"] < best[kernel]["total"]:
                    best[kernel] = p
    finally:
        lean.linear, lean.kernel = chosen
    return best


def sharing_profiles(
    model: Any, prompts: list[str], tokens: int, samples: int, repeat: int
) -> tuple[dict[str, dict[str, float]], int]:
    """``step_profile`` of ``samples`` per prompt with each prompt's prefill shared by its samples
    and with one prefill per sample (``HFBackend.share_prompts``), passes alternated, the fastest
    of ``repeat`` each; and how many completions differ between the two."""
    best: dict[str, dict[str, float]] = {}
    texts: dict[str, list[str]] = {}
    try:
        for _ in range(repeat):
            for label, share in (("shared", True), ("per sample", False)):
                model.share_prompts = share
                out: list[str] = []
                p = step_profile(model, prompts, tokens, samples, out)
                texts[label] = out
                if label not in best or p["total"] < best[label]["total"]:
                    best[label] = p
    finally:
        model.share_prompts = True
    differ = sum(a != b for a, b in zip(texts["shared"], texts["per sample"], strict=True))
    return best, differ


def run_tokens(run_dir: Path) -> int:
    """Generated tokens of a finished run (records' ``extra.n_tokens``)."""
    total = 0
    for line in (run_dir / "records.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            total += int(json.loads(line).get("extra", {}).get("n_tokens", 0) or 0)
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=20)
    ap.add_argument("--samples", type=int, default=1, help="samples per prompt (K > 1: also prefill shared vs not)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    ap.add_argument("--half", action="store_true", help="float16 weights (CUDA)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="raw and cold runs, alternated; best of N")
    ap.add_argument(
        "--scorers", default=",".join(DEFAULT_SCORERS), help="comma list; missing ones are skipped"
    )
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument(
        "--naive-prompts",
        type=int,
        help="time the naive loop on the first N prompts only (its rate is per prompt)",
    )
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    ap.add_argument("--profile", type=Path, help="cProfile the cold lm-audit run into this .pstats file")
    args = ap.parse_args(argv)

    import torch

    from audit.models.registry import load_model
    from audit.store.cache import GenerationCache

    work = Path(tempfile.mkdtemp(prefix="lm-audit-bench-"))
    prompts = bench_prompts(args.prompts)
    scorers = available_scorers([s for s in args.scorers.split(",") if s])
    if args.samples < 1:
        ap.error("--samples must be at least 1")
    suite = write_suite(work, prompts, args.tokens, scorers, args.samples)
    print(
        f"lm-audit generation benchmark: {args.model}, {len(prompts)} prompts x {args.samples} sample(s) x "
        f"{args.tokens} new tokens, "
        f"top_p 0.9, batch {args.batch_size}, scorers: {', '.join(scorers) or 'none'}",
        flush=True,
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), python {platform.python_version()}",
        flush=True,
    )

    t = time.perf_counter()
    model = load_model(args.model, batch_size=args.batch_size, device=args.device)
    if args.half:
        model.model.half()
    load_s = time.perf_counter() - t
    print(f"model load: {load_s:.1f} s", flush=True)
    # warm-up, not timed: first calls allocate and pick kernels; the scorers load their models
    from audit.core.types import GenParams, GenRequest

    model.generate([GenRequest("warm", prompts[0])], GenParams(max_new_tokens=2), seed=0)
    for name in scorers:
        from audit.scorers.registry import get_scorer

        get_scorer(name).score(["warm-up text"])

    phases: list[Phase] = []
    # raw and cold end-to-end runs alternate, best of --repeat each, so a noisy neighbour on a
    # shared machine hits both alike
    raws: list[Phase] = []
    colds: list[tuple[TimedEngine, float, float]] = []
    cache_file = work / "generations.sqlite"
    for rep in range(args.repeat):
        raws.append(raw_generate(model, prompts, args.tokens, args.batch_size, args.samples))
        print(f"  {raws[-1].name}: {raws[-1].rate:.2f} completions/s", flush=True)
        cache_file = work / f"generations-{rep}.sqlite"  # a cold cache each time
        profiler = None
        if args.profile and rep == 0:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        colds.append(
            audit_run(
                suite,
                work / "runs",
                f"cold-{rep}",
                lambda c, f=cache_file: KeepOpen(model, GenerationCache(f)),
                model_name=args.model,
                batch_size=args.batch_size,
            )
        )
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(args.profile))
        print(
            f"  lm-audit run, cold: {colds[-1][0].records / colds[-1][0].loop_s:.2f} completions/s",
            flush=True,
        )
    raw = min(raws, key=lambda p: p.seconds)
    raw.note += f", best of {args.repeat}"
    phases.append(raw)
    cold, cold_wall, cold_fin = min(colds, key=lambda c: c[0].loop_s)
    e2e = Phase(
        "lm-audit run, cold cache (generate+score+write)",
        cold.records,
        cold.loop_s,
        f"local engine, best of {args.repeat}",
    )
    e2e_wall = Phase(
        "lm-audit run, cold, incl. plan + summary/report",
        cold.records,
        cold_wall,
        f"summary/report {cold_fin:.2f} s",
    )
    phases += [e2e, e2e_wall]

    warm, _, _ = audit_run(
        suite,
        work / "runs",
        "cached",
        lambda c: KeepOpen(model, GenerationCache(cache_file)),
        model_name=args.model,
        batch_size=args.batch_size,
    )
    cached = Phase(
        "lm-audit run, served from the cache", warm.records, warm.loop_s, "scoring + writes still run"
    )
    phases.append(cached)
    print(f"  {cached.name}: {cached.rate:.1f} completions/s", flush=True)

    naive = None
    if not args.skip_naive:
        naive = naive_pipeline(model, prompts[: args.naive_prompts or len(prompts)], args.tokens)
        phases.append(naive)
        print(f"  {naive.name}: {naive.rate:.2f} completions/s", flush=True)

    ray_loop = None
    worker_rss: list[float] = []
    if not args.skip_ray:
        try:
            from audit.run.engines.ray_engine import RayEngine
        except ImportError as exc:
            print(f"  ray engine: skipped ({exc})", flush=True)
        else:
            ray_run, _, _ = audit_run(
                suite,
                work / "runs",
                "ray",
                lambda c: RayEngine(c, None),
                model_name=args.model,
                engine="ray",
                workers=args.workers,
                batch_size=args.batch_size,
            )
            ray_loop = Phase(
                f"lm-audit run --engine ray, {args.workers} workers (loop)",
                ray_run.records,
                ray_run.loop_s,
                "no cache",
            )
            startup = ray_run.startup_s  # type: ignore[attr-defined]
            ray_total = Phase(
                f"lm-audit run --engine ray, {args.workers} workers, incl. start-up",
                ray_run.records,
                ray_run.loop_s + startup,
                f"Ray start + {args.workers} model loads {startup:.1f} s",
            )
            phases += [ray_loop, ray_total]
            worker_rss = ray_run.worker_rss
            print(f"  {ray_loop.name}: {ray_loop.rate:.2f} completions/s", flush=True)

    profiles = kernel_profiles(model, prompts, args.tokens, args.repeat, args.samples)
    prof = next(iter(profiles.values()))  # the kernel the decoder uses
    parts = ("prefill", "forward", "sampling", "other")
    print(
        "per-step profile of one batched pass: "
        + ", ".join(f"{k} {prof[k]:.2f} s ({100 * prof[k] / prof['total']:.0f}%)" for k in parts),
        flush=True,
    )
    gemm = sgemm_flops()
    flops = gemm["best"]
    per_token = 2.0 * float(model.info().details.get("n_params") or 0)
    for kernel, p in profiles.items():
        tps = p["decode_tokens"] / (p["total"] - p["prefill"])
        print(
            f"decode phase with {kernel} products: {tps:.0f} tokens/s = "
            + ", ".join(f"{100 * tps * per_token / v:.0f}% of {k}'s roofline" for k, v in gemm.items() if k != "best"),
            flush=True,
        )
    cold_dir = work / "runs" / f"cold-{colds.index(min(colds, key=lambda c: c[0].loop_s))}"
    e2e_tps = run_tokens(cold_dir) / cold.loop_s if cold.loop_s else 0.0
    decode_s = prof["total"] - prof["prefill"]  # decode forwards, sampling and all bookkeeping
    decode_tps = prof["decode_tokens"] / decode_s if decode_s > 0 else 0.0
    roofline_tps = flops / per_token if per_token else 0.0
    rss = peak_rss_mib()

    def pct(x: float) -> str:
        return f"{100 * x / roofline_tps:.0f}%" if roofline_tps else "n/a"

    print()
    print(
        f"roofline: sgemm 2048^2 (the faster library: {describe(gemm)}) {flops / 1e9:.0f} GFLOP/s / "
        f"{per_token / 1e9:.2f} GFLOP per token = {roofline_tps:.0f} tokens/s"
    )
    print(
        f"decode phase (after the prefill; sampling and bookkeeping included): {decode_tps:.0f} tokens/s = "
        f"{pct(decode_tps)} of the roofline; lm-audit run end to end (prefill, scoring, writes): "
        f"{e2e_tps:.0f} tokens/s = {pct(e2e_tps)}"
    )
    sharing: dict[str, dict[str, float]] = {}
    differ = 0
    if args.samples > 1:
        sharing, differ = sharing_profiles(model, prompts, args.tokens, args.samples, args.repeat)
        for label, p in sharing.items():
            print(
                f"{args.samples} samples per prompt, prefill {label}: {p['total']:.2f} s "
                f"(prefill {p['prefill']:.2f} s, decode {p['forward']:.2f} s, sampling {p['sampling']:.2f} s, "
                f"other {p['other']:.2f} s), best of {args.repeat}"
            )
        speedup = sharing["per sample"]["total"] / sharing["shared"]["total"]
        print(
            f"prefix sharing: {speedup:.2f}x the pass, prefill "
            f"{sharing['per sample']['prefill'] / max(sharing['shared']['prefill'], 1e-9):.2f}x; "
            f"{differ} of {len(prompts) * args.samples} completions differ"
        )
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'phase':<62} {'n':>4} {'seconds':>8} {'compl/s':>9} {'vs raw':>7}  note")
    for p in phases:
        print(
            f"{p.name:<62} {p.completions:>4} {p.seconds:>8.3f} {p.rate:>9.2f} {p.rate / raw.rate:>6.2f}x  {p.note}"
        )
    print(f"peak RSS: {rss:.0f} MiB (this process: model, scorers, naive pipeline)", end="")
    if worker_rss:
        print(f"; Ray workers {', '.join(f'{r:.0f}' for r in worker_rss)} MiB each")
    else:
        print()
    targets = {
        "end to end within 10% of raw generation": (e2e.rate / raw.rate, 0.90),
        "cached re-run >= 50x faster than cold": (cached.rate / e2e.rate, 50.0),
    }
    if naive is not None:
        targets["end to end >= 3x the naive loop"] = (e2e.rate / naive.rate, 3.0)
    print()
    for label, (value, need) in targets.items():
        print(f"target {label}: {value:.2f} (need >= {need:g}) {'PASS' if value >= need else 'MISS'}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "model": args.model,
                    "prompts": len(prompts),
                    "tokens": args.tokens,
                    "samples": args.samples,
                    "batch_size": args.batch_size,
                    "scorers": scorers,
                    "cpu_count": os.cpu_count(),
                    "load_s": round(load_s, 2),
                    "phases": [p.to_dict() for p in phases],
                    "peak_rss_mib": round(rss),
                    "sgemm_gflops": round(flops / 1e9, 1),
                    "sgemm_gflops_by_library": {k: round(v / 1e9, 1) for k, v in gemm.items() if k != "best"},
                    "step_profile_s": {k: round(v, 3) for k, v in prof.items()},
                    "prompt_sharing_s": {
                        label: {k: round(v, 3) for k, v in p.items()} for label, p in sharing.items()
                    },
                    "prompt_sharing_completions_differ": differ if sharing else None,
                    "gflop_per_token": round(per_token / 1e9, 3),
                    "decode_tokens_per_s": round(decode_tps, 1),
                    "roofline_pct": round(100 * decode_tps / roofline_tps, 1) if roofline_tps else None,
                    "end_to_end_tokens_per_s": round(e2e_tps, 1),
                    "end_to_end_roofline_pct": round(100 * e2e_tps / roofline_tps, 1) if roofline_tps else None,
                    "load_average": os.getloadavg(),
                    "ray_worker_peak_rss_mib": [round(r) for r in worker_rss],
                    "targets": {k: {"value": round(v, 3), "need": n} for k, (v, n) in targets.items()},
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
