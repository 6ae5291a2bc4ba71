"""The runner: suites -> work units -> engine -> scored records in the run store -> summary.

``run_audit`` plans the work (``audit/run/work_units.py``: ``plan_work`` turns suites into
``WorkUnit``s), hands the units to an engine (``LocalEngine`` here, the Ray engine in
``audit/run/engines/``), which runs each with ``process_unit`` (``audit/run/unit_processing.py``) and
yields record batches; the runner alone writes them to the store, so resume and caching work the
same with any engine. Then it writes the summary and reports.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from audit import __version__
from audit.core.errors import UsageError
from audit.core.memory import phase, release
from audit.core.types import Record
from audit.models.base import ModelBackend
from audit.run.config import RunConfig
from audit.run.unit_processing import process_unit
from audit.run.work_units import (
    PlannedSuite,
    SuiteRequest,
    WorkUnit,
    plan_suites,
    plan_work,
)
from audit.store.cache import GenerationCache
from audit.store.run_store import RunStore

__all__ = ["Engine", "LocalEngine", "RunConfig", "SuiteRequest", "default_run_id", "make_engine", "run_audit"]




# --------------------------------------------------------------------------- engines


class Engine(Protocol):
    def run(self, units: Sequence[WorkUnit]) -> Iterator[list[Record]]: ...

    def model_info(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class LocalEngine:
    """Runs units one after another in this process."""

    def __init__(self, model: ModelBackend, cache: GenerationCache | None) -> None:
        self.model = model
        self.cache = cache

    def model_info(self) -> dict[str, Any]:
        return self.model.info().to_dict()

    def run(self, units: Sequence[WorkUnit]) -> Iterator[list[Record]]:
        for unit in units:
            yield process_unit(self.model, unit, self.cache)

    def close(self) -> None:
        self.model.close()


def make_engine(config: RunConfig, cache_path: Path | None) -> Engine:
    if config.engine == "local":
        from audit.models.registry import load_model

        model = load_model(config.model, **config.model_options)
        return LocalEngine(model, GenerationCache(cache_path) if cache_path else None)
    if config.engine == "ray":
        try:
            from audit.run.engines.ray_engine import RayEngine
        except ImportError as exc:
            raise UsageError(f"--engine ray is unavailable: {exc}") from None
        return RayEngine(config, cache_path)
    raise UsageError(f"unknown engine '{config.engine}' (use local or ray)")


# --------------------------------------------------------------------------- the run


def _packages() -> dict[str, str]:
    out = {"lm-audit": __version__, "python": sys.version.split()[0]}
    for name in [
        "torch",
        "transformers",
        "tokenizers",
        "alt-profanity-check",
        "scikit-learn",
        "vaderSentiment",
        "detoxify",
        "numpy",
    ]:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def default_run_id(config: RunConfig) -> str:
    """The run folder name when ``--name`` is not given: time and model."""
    from audit.models.registry import DEFAULT_MODEL

    model_name = config.model or DEFAULT_MODEL
    return f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{Path(model_name).name.replace(':', '_')[:40]}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _suite_manifest(ps: PlannedSuite) -> dict[str, Any]:
    s = ps.loaded.suite
    return {
        "path": str(ps.loaded.path),
        "version": s.version,
        "title": s.title,
        "citation": s.citation,
        "licence": s.licence,
        "data_hash": ps.loaded.data_hash,
        "task": s.task,
        "protocol": ps.protocol,
        "generation": ps.generation.model_dump(),
        "limit": ps.limit,
        **({"axis_limits": ps.axis_limits} if ps.axis_limits else {}),
        "selection_seed": ps.selection_seed,
        "n_items": len(ps.items),
        "n_items_total": len(ps.loaded.items),
        "group_attributes": list(s.group_attributes),
        "scorers": list(s.scorers),
        "metrics": [m.model_dump() for m in s.metrics],
        "gates": [g.model_dump() for g in s.gates],
        **_attack_manifest(ps),
    }


def _attack_manifest(ps: PlannedSuite) -> dict[str, Any]:
    """With attacks: their names, and the attack metrics and default gates added to the suite's."""
    if not ps.attacks:
        return {}
    from audit.metrics.attacks import attack_specs

    s = ps.loaded.suite
    metrics, gates = attack_specs([it.attributes for it in ps.items])
    return {"attacks": list(ps.attacks), "metrics": [m.model_dump() for m in s.metrics] + metrics,
            "gates": [g.model_dump() for g in s.gates] + gates}


def _grown(old: Any, new: Any) -> bool:
    return new is None or (old is not None and new >= old)


def _check_resume(old: dict[str, Any], new: dict[str, Any], run_dir: Path, grow: bool = False) -> None:
    problems = []
    if old.get("model", {}).get("fingerprint") != new["model"]["fingerprint"]:
        problems.append("model")
    if old.get("seed") != new["seed"]:
        problems.append("seed")
    for sid, s in new["suites"].items():
        o = old.get("suites", {}).get(sid)
        if o is None:
            continue
        for k in ("data_hash", "generation", "limit", "axis_limits", "attacks"):
            if o.get(k) != s.get(k) and not (grow and k == "limit" and _grown(o.get(k), s.get(k))):
                problems.append(f"{sid}.{k}")
        # runs written before the selection seed existed selected --limit prompts with the run seed
        if s.get("selection_seed") is not None and o.get("selection_seed", old.get("seed")) != s["selection_seed"]:
            problems.append(f"{sid}.selection_seed")
    if problems:
        raise UsageError(
            f"{run_dir} already holds a run with a different {', '.join(problems)}; "
            "use another --name (or delete the folder) to start a new run"
        )


def _suite_done(suite_id: str, units: Sequence[WorkUnit]) -> None:
    """After a suite's last unit: release the scorers no later unit uses, trim the heap, log RSS."""
    from audit.scorers.registry import release_scorers

    later = {u.suite_id for u in units[_last_unit(suite_id, units) + 1 :]}
    used_later = {n.partition(":")[0] for u in units if u.suite_id in later for n in u.scorers}
    mine = {n.partition(":")[0] for u in units if u.suite_id == suite_id for n in u.scorers}
    release_scorers(mine - used_later)
    release()
    phase(f"{suite_id} done")


def _last_unit(suite_id: str, units: Sequence[WorkUnit]) -> int:
    return max(i for i, u in enumerate(units) if u.suite_id == suite_id)


def run_audit(config: RunConfig, echo: Callable[[str], None] | None = None) -> tuple[Path, int]:
    """Run the audit described by ``config``. Returns (run folder, exit code from the gates)."""
    from tqdm import tqdm

    from audit.models.gguf_loading import cache_dir
    from audit.models.registry import DEFAULT_MODEL
    from audit.run.finalize import finalize_run
    from audit.scorers.registry import get_scorer, scorer_card

    say = echo or (lambda s: print(s, file=sys.stderr))
    if not config.suites:
        raise UsageError("no suite given: use --suite NAME|PATH or --profile NAME")
    planned = plan_suites(config.suites, config.selection_seed)  # validate before loading a model
    model_name = config.model or DEFAULT_MODEL
    run_id = config.name or default_run_id(config)
    store = RunStore(config.out, run_id)
    if not config.lock_held:  # --until-decided holds it across its looks
        store.lock()  # one writer per run folder; readers (report, dashboard) never rewrite it
    scorer_names = sorted({n for ps in planned for n in ps.loaded.suite.scorers})
    scorers_info = {n: scorer_card(n, get_scorer(n)) for n in scorer_names}
    phase("scorers loaded")

    say(f"loading model {model_name} ...")
    cache_path = cache_dir() / "generations.sqlite" if config.use_cache else None
    try:
        engine = make_engine(config, cache_path)
        phase("model loaded")
    except BaseException:
        store.close()
        raise
    try:
        manifest: dict[str, Any] = {
            "schema_version": 1,
            "run_id": run_id,
            "status": "running",
            "created": _now(),
            "finished": None,
            "model": engine.model_info(),
            "seed": config.seed,
            "selection_seed": config.selection_seed,
            "engine": config.engine,
            "command": config.command,
            "suites": {ps.loaded.id: _suite_manifest(ps) for ps in planned},
            "scorers": scorers_info,
            "packages": _packages(),
        }
        if store.exists():
            old = store.read_manifest()
            _check_resume(old, manifest, store.dir, config.grow_limits)
            manifest["created"] = old.get("created", manifest["created"])
            manifest["suites"] = {**old.get("suites", {}), **manifest["suites"]}
            if "sequential" in old:
                manifest["sequential"] = old["sequential"]
        if config.sequential is not None:
            manifest["sequential"] = config.sequential
        done = store.completed_keys()
        if done:
            say(f"resuming {store.dir}: {len(done)} records already done")
        store.write_manifest(manifest)
        units = plan_work(planned, config.seed, done)
        total = sum(len(u.entries) for u in units)
        bar = tqdm(
            total=total,
            desc="generate+score",
            unit="rec",
            disable=not config.progress or total == 0,
            file=sys.stderr,
        )
        started = time.perf_counter()
        try:
            suite = units[0].suite_id if units else ""
            for records in engine.run(units):
                if records and records[0].suite != suite:
                    _suite_done(suite, units)
                    suite = records[0].suite
                store.append(records)
                bar.update(len(records))
                elapsed = time.perf_counter() - started
                bar.set_postfix_str(f"{bar.n / max(elapsed, 1e-9):.1f} records/s")  # likelihood items too
        except BaseException:
            manifest["status"] = "interrupted"
            store.write_manifest(manifest)
            raise
        finally:
            bar.close()
            store.close()
        if config.sequential is None:  # a look of --until-decided is not the end of the run
            manifest["status"] = "complete"
            manifest["finished"] = _now()
            store.write_manifest(manifest)
    finally:
        engine.close()
        store.close()
    # nothing else holds the model: dropping the engine unmaps its weights (about 0.5 GiB for
    # SmolLM2) before the summary is built; release() below trims what the heap freed
    del engine
    if units:
        _suite_done(suite, units)
    else:
        release()
    phase("model released")
    if not config.finalize:
        return store.dir, 0
    code = finalize_run(store.dir, config.policy, echo=say)
    phase("summary and reports written")
    return store.dir, code
