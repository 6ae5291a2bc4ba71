"""The runner: suites -> work units -> engine -> scored records in the run store -> summary.

``plan_work`` turns suites into ``WorkUnit``s (plain, picklable data: a chunk of length-sorted
prompts x samples of one suite). ``process_unit`` does everything for one unit — cache lookup,
batched generation of the misses, batched scoring — and returns finished ``Record``s. An engine
(``LocalEngine`` here, the Ray engine in ``audit/engines/``) runs units and yields record batches;
the runner alone writes them to the store, so resume and caching work the same with any engine.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import yaml

from audit import __version__
from audit.cache import GenerationCache, cache_key
from audit.errors import UsageError
from audit.memory import phase, release
from audit.models.base import ModelBackend, clean_completion
from audit.scorers.base import PromptContext, Reference
from audit.store import RunStore
from audit.suite import PROBES_DIR, GenerationSpec, Item, LoadedSuite, load_suite, stratified_limit
from audit.types import Completion, GenParams, GenRequest, LoglikelihoodRequest, Record

# requests per work unit: the granularity of streaming writes, progress and resume
DEFAULT_SELECTION_SEED = 0  # seed of the --limit prompt selection (``--selection-seed``)
UNIT_SIZE = int(os.environ.get("LM_AUDIT_UNIT_SIZE", "64"))


# --------------------------------------------------------------------------- plain data


@dataclass
class SuiteRequest:
    """One suite to run, as asked for on the command line or by a profile."""

    suite: str
    limit: int | None = None
    protocol: str | None = None
    samples: int | None = None


@dataclass
class RunConfig:
    suites: list[SuiteRequest]
    model: str | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    out: Path = Path("reports")
    name: str | None = None
    seed: int = 0
    # which prompts --limit keeps: separate from the sampling seed, so runs with different --seed
    # (or different models) are audited on the same prompts and compare on all of them
    selection_seed: int = DEFAULT_SELECTION_SEED
    engine: str = "local"
    engine_options: dict[str, Any] = field(default_factory=dict)
    use_cache: bool = True
    policy: Path | None = None
    progress: bool = True
    command: list[str] = field(default_factory=list)
    # --until-decided (audit/sequential.py): a resume may raise a suite's --limit (the stratified
    # selection at a larger limit holds the smaller one's prompts); the driver writes the summary
    grow_limits: bool = False
    finalize: bool = True


@dataclass
class UnitEntry:
    """One record to produce: a suite item (shared by all its samples) and a sample index."""

    record_key: str
    sample: int
    item: Item

    @property
    def seed_key(self) -> str:
        """What the sampling seed derives from: shared by a counterfactual set, else the item id."""
        return self.item.seed_key or self.item.item_id


@dataclass
class WorkUnit:
    suite_id: str
    task: str  # "generate" or "likelihood"
    params: dict[str, Any]  # GenParams.to_dict()
    seed: int
    scorers: list[str]
    entries: list[UnitEntry]


@dataclass
class PlannedSuite:
    loaded: LoadedSuite
    protocol: str
    generation: GenerationSpec
    limit: int | None
    items: list[Item]
    selection_seed: int | None = None  # the seed --limit selected ``items`` with (None: no limit)


# --------------------------------------------------------------------------- planning


def load_profile(name: str) -> list[SuiteRequest]:
    path = Path(name) if name.endswith((".yaml", ".yml")) else PROBES_DIR / "profiles" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (PROBES_DIR / "profiles").glob("*.yaml"))
        raise UsageError(f"unknown profile '{name}' (known: {', '.join(known) or 'none'})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        entries = data["suites"]
        reqs = [SuiteRequest(**e) for e in entries]
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: invalid profile: {exc}") from None
    if not reqs:
        raise UsageError(f"{path}: profile lists no suites")
    return reqs


def plan_suites(requests: Sequence[SuiteRequest], seed: int) -> list[PlannedSuite]:
    """Load and validate suites; ``seed`` is the *selection* seed of ``--limit`` (never the sampling seed)."""
    from audit.scorers.registry import available

    known = set(available())
    planned: list[PlannedSuite] = []
    seen: set[str] = set()
    for req in requests:
        loaded = load_suite(req.suite, known_scorers=known or None)
        if loaded.id in seen:
            raise UsageError(f"suite '{loaded.id}' is listed twice")
        seen.add(loaded.id)
        gen = loaded.suite.generation_for(req.protocol)
        if req.samples is not None:
            if req.samples < 1:
                raise UsageError("--samples must be at least 1")
            gen = gen.model_copy(update={"samples": req.samples})
        if loaded.suite.task == "likelihood":
            gen = gen.model_copy(update={"samples": 1})
        items = stratified_limit(loaded.items, req.limit, seed, loaded.suite.group_attributes)
        protocol = req.protocol or loaded.suite.default_protocol or "default"
        used = seed if req.limit is not None and len(items) < len(loaded.items) else None
        planned.append(PlannedSuite(loaded, protocol, gen, req.limit, items, used))
    return planned


def record_key(suite_id: str, item_id: str, sample: int) -> str:
    return f"{suite_id}/{item_id}/{sample}"


def plan_work(
    planned: Sequence[PlannedSuite], seed: int, done: set[str], unit_size: int = UNIT_SIZE
) -> list[WorkUnit]:
    """Units of not-yet-done records, length-sorted within each suite so batches pad little."""
    units: list[WorkUnit] = []
    for ps in planned:
        suite = ps.loaded.suite
        entries = []
        for it in ps.items:
            for s in range(ps.generation.samples):
                key = record_key(suite.id, it.item_id, s)
                if key in done:
                    continue
                entries.append(UnitEntry(record_key=key, sample=s, item=it))
        entries.sort(key=lambda e: (_text_length(e.item), e.record_key))
        size = unit_size if suite.task == "generate" else max(8, unit_size // 2)
        for i in range(0, len(entries), size):
            units.append(
                WorkUnit(
                    suite_id=suite.id,
                    task=suite.task,
                    params=ps.generation.params().to_dict(),
                    seed=seed,
                    scorers=list(suite.scorers),
                    entries=entries[i : i + size],
                )
            )
    return units


def _text_length(item: Item) -> int:
    return len(item.prompt) + len(item.context) + sum(map(len, item.options.values()))


# --------------------------------------------------------------------------- processing


def unit_requests(unit: WorkUnit) -> list[GenRequest]:
    """The generation requests of a generate unit, in entry order."""
    return [GenRequest(key=e.seed_key, prompt=e.item.prompt, sample=e.sample) for e in unit.entries]


def unit_cache_keys(fingerprint: str, unit: WorkUnit) -> list[str]:
    """The generation-cache keys of a unit's requests (empty for likelihood units)."""
    if unit.task != "generate":
        return []
    params = GenParams.from_dict(unit.params)
    return [cache_key(fingerprint, r, params, unit.seed) for r in unit_requests(unit)]


def process_unit(model: ModelBackend, unit: WorkUnit, cache: GenerationCache | None) -> list[Record]:
    """Generate (or look up), score, and build the records of one unit."""
    t0 = time.perf_counter()
    extra: list[dict[str, Any]] = [{} for _ in unit.entries]
    scores: list[dict[str, float | None]] = [{} for _ in unit.entries]
    if unit.task == "likelihood":
        texts = [""] * len(unit.entries)
        _likelihood(model, unit, scores, extra)
        t1 = t2 = time.perf_counter()
    else:
        texts = _generate(model, unit, cache, extra)
        t1 = time.perf_counter()
        _score(unit, texts, scores)
        t2 = time.perf_counter()
    n = max(1, len(unit.entries))
    records = []
    for e, text, sc, ex in zip(unit.entries, texts, scores, extra, strict=True):
        records.append(
            Record(
                key=e.record_key,
                suite=unit.suite_id,
                item_id=e.item.item_id,
                template_id=e.item.template_id,
                sample=e.sample,
                prompt=e.item.prompt,
                completion=text,
                attributes=dict(e.item.attributes),
                scores=sc,
                extra=ex,
                timings={"generate_s": round((t1 - t0) / n, 6), "score_s": round((t2 - t1) / n, 6)},
            )
        )
    return records


def _generate(
    model: ModelBackend,
    unit: WorkUnit,
    cache: GenerationCache | None,
    extra: list[dict[str, Any]],
) -> list[str]:
    reqs = unit_requests(unit)
    keys = unit_cache_keys(model.info().fingerprint, unit)
    hits = cache.get_many(keys) if cache else {}
    todo = [i for i, k in enumerate(keys) if k not in hits]
    fresh: dict[int, Completion] = {}
    if todo:
        outs = model.generate([reqs[i] for i in todo], GenParams.from_dict(unit.params), unit.seed)
        fresh = dict(zip(todo, outs, strict=True))  # raw: the cache keeps it as it came
        if cache:
            cache.put_many((keys[i], c) for i, c in fresh.items())
    texts = []
    for i, k in enumerate(keys):
        # untrusted text: valid Unicode before scoring and the store (cached or fresh, the same note)
        c, repaired = clean_completion(hits.get(k) or fresh[i])
        if repaired:
            extra[i]["text_repaired"] = repaired
        if c.prompt_truncated:
            extra[i]["prompt_truncated_tokens"] = c.prompt_truncated
        extra[i]["n_tokens"] = c.n_tokens
        extra[i]["cached"] = k in hits
        texts.append(c.text)
    return texts


def _likelihood(
    model: ModelBackend, unit: WorkUnit, scores: list[dict[str, float | None]], extra: list[dict[str, Any]]
) -> None:
    reqs: list[LoglikelihoodRequest] = []
    where: list[tuple[int, str]] = []
    for i, e in enumerate(unit.entries):
        for name, option in e.item.options.items():
            ctx = e.item.context
            cont = option if not ctx else (option if option.startswith((" ", "\n")) else " " + option)
            reqs.append(LoglikelihoodRequest(context=ctx, continuation=cont))
            where.append((i, name))
    results = model.loglikelihood(reqs)
    for (i, name), res in zip(where, results, strict=True):
        scores[i][f"ll_{name}"] = res.logprob
        extra[i][f"ll_{name}_tokens"] = res.n_tokens


def _prompt_class(attributes: dict[str, Any]) -> str | None:
    """The item's declared prompt class (attribute ``prompt_class``: safe/unsafe), None if absent."""
    v = attributes.get("prompt_class")
    return str(v) if v is not None else None


def _score(unit: WorkUnit, texts: list[str], scores: list[dict[str, float | None]]) -> None:
    from audit.scorers.registry import get_scorer

    for name in unit.scorers:
        scorer = get_scorer(name)
        refs = None
        if scorer.needs_refs:
            refs = [Reference(correct=e.item.correct, incorrect=e.item.incorrect) for e in unit.entries]
        if getattr(scorer, "needs_prompts", False) and not refs:  # C: prompt-aware scorers (refusal)
            ctx = [PromptContext(e.item.prompt, _prompt_class(e.item.attributes)) for e in unit.entries]
            out = scorer.score_in_context(texts, ctx)
        else:
            out = scorer.score(texts, refs)
        for sc, row in zip(scores, out, strict=True):
            sc.update(row)


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
            from audit.engines.ray_engine import RayEngine
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
        "selection_seed": ps.selection_seed,
        "n_items": len(ps.items),
        "n_items_total": len(ps.loaded.items),
        "group_attributes": list(s.group_attributes),
        "scorers": list(s.scorers),
        "metrics": [m.model_dump() for m in s.metrics],
        "gates": [g.model_dump() for g in s.gates],
    }


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
        for k in ("data_hash", "generation", "limit"):
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

    from audit.models.registry import DEFAULT_MODEL, cache_dir
    from audit.scorers.registry import get_scorer
    from audit.summary import finalize_run

    say = echo or (lambda s: print(s, file=sys.stderr))
    if not config.suites:
        raise UsageError("no suite given: use --suite NAME|PATH or --profile NAME")
    planned = plan_suites(config.suites, config.selection_seed)  # validate before loading a model
    model_name = config.model or DEFAULT_MODEL
    run_id = (
        config.name
        or f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{Path(model_name).name.replace(':', '_')[:40]}"
    )
    store = RunStore(config.out, run_id)
    store.lock()  # one writer per run folder; readers (report, dashboard) never rewrite it
    scorer_names = sorted({n for ps in planned for n in ps.loaded.suite.scorers})
    scorers_info = {n: {"name": n, "version": get_scorer(n).version} for n in scorer_names}
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
        manifest["status"] = "complete"
        manifest["finished"] = _now()
        store.write_manifest(manifest)
    finally:
        engine.close()
        store.close()
    if units:
        _suite_done(suite, units)
    if not config.finalize:
        return store.dir, 0
    code = finalize_run(store.dir, config.policy, echo=say)
    phase("summary and reports written")
    return store.dir, code
