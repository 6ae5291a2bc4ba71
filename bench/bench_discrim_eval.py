"""discrim-eval against lm-evaluation-harness 0.4.13's ``discrim_eval_explicit``, on one model and
the same prompts, plus our likelihood throughput against the machine's compute floor.

- ``lm-eval``: a copy of its ``discrim_eval_explicit`` task (its own ``utils.py``, copied from the
  installed package) pointed at the vendored file (``dataset_path: json``), run by
  ``lm_eval.simple_evaluate`` on an ``HFLM`` wrapping the same model object, ``limit`` = the
  first N scenarios (the file is sorted by scenario), with ``apply_chat_template`` under protocol
  ``chat``. It reports the mixed-effects coefficients (``age_bias`` as an absolute value).
- ``lm-audit``: the suite's path: ``HFBackend.answer_context`` and ``HFBackend.loglikelihood``
  over the same prompts, ``logit_yes`` from ``audit.suites.answers.decision_scores``, then the
  ``discrim_eval`` metric (its paired estimates and the same mixed model).

The script exits 1 unless every lm-eval coefficient equals ours to ``--tol`` (default 5e-4), and
prints the largest per-prompt logit difference. Throughput: the prompt tokens the model must run
(each framed prompt once) x 2 x parameters / the FLOP/s of a 2048^2 sgemm in the faster of MKL and
oneDNN (bench/roofline.py) is the compute floor; ours is timed on ``HFBackend.loglikelihood``
alone, lm-eval's on ``HFLM.loglikelihood`` alone (its regression fits are not counted). The load
average is printed before and after: the machine is shared, so quote it beside any timing.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_discrim_eval.py [--model smollm2-135m]
        [--scenarios 4] [--protocol chat|plain] [--batch-size 8] [--ours-batch-size 16]
        [--skip-lm-eval] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from roofline import describe, sgemm_flops  # bench/ is on sys.path: the scripts run from it

DATA = Path(__file__).resolve().parent.parent / "probes" / "data" / "discrim_eval" / "explicit.jsonl"
WORDS = ("yes", "Yes", "no", "No")  # lm-eval's doc_to_choice order
LM_EVAL_KEYS = {  # lm-eval metric -> our mixed-model coefficient
    "black_bias": "race_black", "asian_bias": "race_asian", "hispanic_bias": "race_hispanic",
    "native_american_bias": "race_native_american", "female_bias": "gender_female",
    "non_binary_bias": "gender_non_binary", "age_bias": "age_slope",
}


def load_rows(scenarios: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    keep = sorted({r["decision_question_id"] for r in rows})[:scenarios]
    out = [r for r in rows if r["decision_question_id"] in keep]
    assert out == rows[: len(out)], "the file is sorted by scenario, so lm-eval's limit takes the same rows"
    return out


def run_ours(backend: Any, rows: list[dict[str, Any]], chat: bool) -> tuple[list[float], float, int]:
    """Per prompt logit_yes through the suite's own path; seconds in loglikelihood; tokens run."""
    from audit.core.types import LoglikelihoodRequest
    from audit.suites import load_suite
    from audit.suites.answers import decision_scores

    items = load_suite("discrim-eval").items[: len(rows)]
    contexts = [backend.answer_context(it.context, it.answer_prefix or "", chat)[0] for it in items]
    reqs = [LoglikelihoodRequest(c, w) for c in contexts for w in items[0].options.values()]
    backend.loglikelihood(reqs[:8])  # warm-up: one-time self-checks, kernel choice
    t = time.perf_counter()
    res = backend.loglikelihood(reqs)
    seconds = time.perf_counter() - t
    names = list(items[0].options)
    logits = []
    for i in range(len(items)):
        lls = {f"ll_{n}": res[4 * i + k].logprob for k, n in enumerate(names)}
        logits.append(float(decision_scores(lls)["logit_yes"]))  # type: ignore[arg-type]
    tokens = sum(len(ids) for ids in backend.tokenizer(contexts)["input_ids"])
    return logits, seconds, tokens


def our_figures(rows: list[dict[str, Any]], logits: list[float]) -> dict[str, dict[str, float]]:
    from audit.metrics.frame import Frame
    from audit.metrics.registry import compute_metric
    from audit.stats.intervals import t_cluster_mean

    records = [{"item_id": str(i), "sample": 0, "scores": {"logit_yes": y},
                "attributes": {"pair_id": str(r["decision_question_id"]), "age": r["age"], "gender": r["gender"],
                               "race": r["race"]}} for i, (r, y) in enumerate(zip(rows, logits, strict=True))]
    frame = Frame(records)
    out = {}
    for p in compute_metric("discrim_eval", frame, frame.all_mask()):
        r = t_cluster_mean(p.columns[:, 0], p.columns[:, 1])
        out[p.name] = {"paired": r["estimate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                       "pp": p.extra.get("pp"), "mixedlm": p.extra.get("mixedlm")}
    return out


def run_lm_eval(backend: Any, n_rows: int, chat: bool, batch_size: int) -> tuple[dict[str, float], list[float], float]:
    """lm-eval's figures, its per-prompt logits and its seconds in HFLM.loglikelihood."""
    import lm_eval
    import lm_eval.tasks.discrim_eval as pkg
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    src = Path(next(iter(pkg.__path__)))  # the task folder (a package, or a namespace package)
    tmp = Path(tempfile.mkdtemp(prefix="discrim_eval_local_"))
    shutil.copy(src / "utils.py", tmp / "utils.py")
    text = (src / "discrim_eval_explicit.yaml").read_text()
    text = text.replace("task: discrim_eval_explicit", "task: discrim_eval_explicit_local")
    text = text.replace("dataset_path: Anthropic/discrim-eval", f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    train: {DATA}")
    text = text.replace("dataset_name: explicit\n", "")
    (tmp / "discrim_eval_explicit_local.yaml").write_text(text)
    lm = HFLM(pretrained=backend.model, tokenizer=backend.tokenizer, batch_size=batch_size, device=backend.device)
    spent = [0.0]
    inner = lm.loglikelihood

    def timed(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        out = inner(*a, **k)
        spent[0] += time.perf_counter() - t
        return out

    lm.loglikelihood = timed  # type: ignore[method-assign]
    res = lm_eval.simple_evaluate(model=lm, tasks=["discrim_eval_explicit_local"], task_manager=TaskManager(include_path=str(tmp)),
                                  limit=n_rows, apply_chat_template=chat, log_samples=True, bootstrap_iters=0)
    shutil.rmtree(tmp, ignore_errors=True)
    figs = {k.split(",")[0]: float(v) for k, v in res["results"]["discrim_eval_explicit_local"].items()
            if k.split(",")[0] in LM_EVAL_KEYS}
    import math

    samples = sorted(res["samples"]["discrim_eval_explicit_local"], key=lambda s: s["doc_id"])
    logits = []
    for s in samples:
        lp = [float(r[0][0]) for r in s["resps"]]
        yes, no = math.exp(lp[0]) + math.exp(lp[1]), math.exp(lp[2]) + math.exp(lp[3])
        logits.append(math.log(yes) - math.log(no))
    return figs, logits, spent[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--scenarios", type=int, default=4, help="the first N scenarios (135 prompts each; 70 in all)")
    ap.add_argument("--protocol", choices=("chat", "plain"), default="chat")
    ap.add_argument("--batch-size", type=int, default=8, help="lm-eval's batch size")
    ap.add_argument("--ours-batch-size", type=int, default=16)
    ap.add_argument("--device", default=None)
    ap.add_argument("--tol", type=float, default=5e-4)
    ap.add_argument("--skip-lm-eval", action="store_true", help="only our figures and throughput")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if not args.skip_lm_eval:
        try:
            import lm_eval  # noqa: F401
        except ImportError:
            print("error: lm-evaluation-harness is not installed: pip install 'lm-audit[bench]'")
            return 2
    import torch

    from audit.models.registry import load_model

    backend = load_model(args.model, batch_size=args.ours_batch_size, device=args.device)
    chat = args.protocol == "chat"
    if chat and not backend.has_chat_template:
        print(f"note: {args.model} has no chat template: both sides run plain text")
        chat = False
    rows = load_rows(args.scenarios)
    n_params = sum(p.numel() for p in backend.model.parameters())
    gemm = sgemm_flops() if backend.device == "cpu" else {"best": 0.0}
    load_before = os.getloadavg()
    with torch.inference_mode():
        ours, t_ours, tokens = run_ours(backend, rows, chat)
    floor_s = tokens * 2.0 * n_params / gemm["best"] if gemm["best"] else 0.0
    result: dict[str, Any] = {
        "model": args.model, "protocol": args.protocol, "chat_template": chat, "scenarios": args.scenarios,
        "prompts": len(rows), "tokens": tokens, "device": backend.device,
        "load_average_before": [round(x, 2) for x in load_before],
        "lm_audit": {"seconds": round(t_ours, 2), "prompts_per_s": round(len(rows) / t_ours, 2),
                     "tokens_per_s": round(tokens / t_ours, 1), "batch_size": args.ours_batch_size},
        "sgemm": describe(gemm) if gemm["best"] else "n/a",
        "compute_floor_s": round(floor_s, 2),
        "floor_pct_lm_audit": round(100 * floor_s / t_ours, 1) if floor_s else None,
        "full_suite_estimate_s": round(t_ours * 9450 / len(rows), 0),
    }
    figs = our_figures(rows, ours)
    result["lm_audit_figures"] = figs
    code = 0
    if not args.skip_lm_eval:
        ref, ref_logits, t_ref = run_lm_eval(backend, len(rows), chat, args.batch_size)
        result["lm_eval"] = {"seconds_loglikelihood": round(t_ref, 2), "figures": ref,
                             "floor_pct": round(100 * floor_s / t_ref, 1) if floor_s else None,
                             "batch_size": args.batch_size}
        result["max_abs_logit_diff"] = max(abs(a - b) for a, b in zip(ours, ref_logits, strict=True))
        diffs = {}
        for key, part in LM_EVAL_KEYS.items():
            mine = figs.get(part, {}).get("mixedlm")
            mine = abs(mine) if key == "age_bias" and mine is not None else mine
            diffs[key] = {"lm_eval": round(ref[key], 6), "lm_audit_mixedlm": None if mine is None else round(mine, 6),
                          "lm_audit_paired": round(figs.get(part, {}).get("paired", float("nan")), 6)}
            if mine is None or abs(mine - ref[key]) > args.tol:
                code = 1
        result["coefficients"] = diffs
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if code:
        print(f"error: a mixed-effects coefficient differs from lm-eval's by more than {args.tol}")
    else:
        print(f"{len(rows)} prompts, {tokens} tokens: lm-audit {t_ours:.2f} s = {result['floor_pct_lm_audit']}% of the "
              f"compute floor ({floor_s:.2f} s; {result['sgemm']}); load {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
