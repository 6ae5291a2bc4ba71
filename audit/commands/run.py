"""``lm-audit run``: run suites against a model and write a run folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audit.commands._args import check_device, check_out_dir, seed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run probe suites against a model", description=__doc__)
    p.add_argument(
        "--suite",
        action="append",
        default=[],
        metavar="NAME|PATH",
        help="a built-in suite name or a suite .yaml file (repeatable)",
    )
    p.add_argument(
        "--profile", metavar="NAME|PATH", help="a profile listing suites with limits, e.g. 'quick'"
    )
    p.add_argument(
        "--model",
        action="append",
        metavar="NAME|PATH",
        help="model name, local dir, .gguf file or hub id (default: smollm2-135m); repeat it to audit "
        "several models on the same prompts and seeds (runs <name>-<model>) and compare them",
    )
    p.add_argument(
        "--limit", type=int, metavar="N", help="keep about N prompts per suite, stratified by group"
    )
    p.add_argument(
        "--samples", type=int, metavar="K", help="samples per prompt (overrides the suite/protocol)"
    )
    p.add_argument(
        "--protocol", metavar="NAME", help="a named generation protocol of the suite (e.g. helm, gehman2020)"
    )
    p.add_argument(
        "--attacks", metavar="NAME[,NAME]|all",
        help="also send every prompt attacked by these transforms (lm-audit attacks lists them), paired "
        "with the plain prompt: per-technique attack success, paired change, hit@k (overrides the suite's)",
    )
    p.add_argument("--seed", type=seed, default=0, help="sampling seed of the run, 0 to 2**63-1 (default 0)")
    p.add_argument(
        "--selection-seed",
        type=seed,
        default=0,
        metavar="N",
        help="seed of the --limit prompt selection, kept apart from --seed so runs with different "
        "seeds or models use the same prompts (default 0)",
    )
    p.add_argument(
        "--out", type=Path, default=Path("reports"), help="folder for run folders (default: reports)"
    )
    p.add_argument(
        "--name", metavar="RUN_ID", help="run folder name; re-use it to resume (default: time-model)"
    )
    p.add_argument(
        "--batch-size", type=int, default=64,
        help="rows per forward pass (default 64; likelihood batches also stay under a logits memory cap)",
    )
    p.add_argument("--device", help="torch device (default: cuda if present, else cpu)")
    p.add_argument("--policy", type=Path, help="policy.yaml with gates (overrides suite defaults)")
    p.add_argument("--engine", choices=["local", "ray"], default="local", help="execution engine")
    p.add_argument("--ray-address", help="Ray cluster address (default: start a local one)")
    p.add_argument("--workers", type=int, default=2, help="Ray workers (default 2)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the generation cache")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument(
        "--until-decided", action="store_true",
        help="add prompts in rounds (the --limit, doubling) until every gate is decided or --budget is "
        "reached; CIs use Bonferroni alpha spending over the looks (docs/statistics.md)",
    )
    p.add_argument(
        "--budget", type=int, metavar="N", default=None,
        help="with --until-decided: the largest number of prompts per suite (default 400)",
    )
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write the gates as JUnit XML (CI test reports)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from audit.core.errors import UsageError
    from audit.run.runner import RunConfig, run_audit
    from audit.run.work_units import SuiteRequest, load_profile

    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if args.profile and args.suite:
        raise UsageError("give --suite or --profile, not both")
    if args.profile:
        suites = load_profile(args.profile)
        for s in suites:
            if args.limit is not None:
                s.limit = args.limit
            if args.samples is not None:
                s.samples = args.samples
            if args.protocol:
                s.protocol = args.protocol
            if args.attacks is not None:
                s.attacks = args.attacks
    else:
        suites = [
            SuiteRequest(suite=s, limit=args.limit, protocol=args.protocol, samples=args.samples, attacks=args.attacks)
            for s in args.suite
        ]
    if args.policy is not None and not args.policy.is_file():
        raise UsageError(f"policy file not found: {args.policy}")
    if not 1 <= args.workers <= 256:
        raise UsageError("--workers must be between 1 and 256")
    if args.batch_size > 4096:
        raise UsageError("--batch-size must be at most 4096")
    if args.samples is not None and not 1 <= args.samples <= 1000:
        raise UsageError("--samples must be between 1 and 1000")
    if args.attacks is not None:
        from audit.attacks import resolve_attacks

        resolve_attacks(args.attacks)  # an unknown name: one line, exit 2, before any model loads
    check_out_dir(args.out)
    check_device(args.device)
    model_options = {"batch_size": args.batch_size}
    if args.device:
        model_options["device"] = args.device
    config = RunConfig(
        suites=suites,
        model=(args.model or [None])[0],
        model_options=model_options,
        out=args.out,
        name=args.name,
        seed=args.seed,
        selection_seed=args.selection_seed,
        engine=args.engine,
        engine_options={"ray_address": args.ray_address, "workers": args.workers},
        use_cache=not args.no_cache,
        policy=args.policy,
        progress=not args.no_progress,
        command=["lm-audit", *sys.argv[1:]],
    )
    if args.junit is not None and args.model and len(args.model) > 1:  # one JUnit file per run: a multi-model run has several
        raise UsageError("--junit takes one --model; with several, use 'lm-audit gate RUN --junit FILE' per run")
    if args.budget is not None and not args.until_decided:
        raise UsageError("--budget needs --until-decided")
    from audit.store.leftovers import remove_unused, run_dirs

    before = run_dirs(args.out)
    try:
        if args.model and len(args.model) > 1:
            from audit.compare.multirun import run_many_models

            return run_many_models(config, args.model)
        if args.until_decided:
            from audit.run.until_decided import run_until_decided

            run_dir, code = run_until_decided(config, args.budget if args.budget is not None else 400)
        else:
            run_dir, code = run_audit(config)
    except BaseException:  # a start that failed (say, at model loading) leaves no folder holding only .lock
        for name in sorted(run_dirs(args.out) - before):
            remove_unused(args.out / name)
        raise
    print(f"report: {run_dir / 'report.html'}")
    print(f"summary: {run_dir / 'summary.json'}")
    from audit.export import after_run  # --junit file, and how to export (Inspect, model card, tables)

    after_run(run_dir, args.junit)
    return code
