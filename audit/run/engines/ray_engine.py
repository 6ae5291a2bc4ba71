"""Ray engine: work units sharded across Ray actors, each holding one model replica (or calling an
endpoint), generating and scoring in parallel.

The driver (the ``lm-audit run`` process) keeps the two pieces of state: the run store (written by
the runner) and the generation cache. Before a unit is sent, the driver looks its completions up
in the cache and ships the hits with the unit; the actor generates only the misses and returns
them with the records, and the driver stores them. Workers therefore need no shared disk, so the
engine runs unchanged on a multi-node cluster, and resume and caching behave exactly as with the
local engine. Records are yielded in unit order (a small reorder buffer), so ``records.jsonl``
has the same order as a local run; the ``hf`` backend's per-record seeds make the texts equal.
A run with few units has them cut into batch-sized pieces so every worker has something to do.

Each actor gets ``cpus_per_worker`` CPUs (default: this machine's cores / workers when Ray is
started here, else 1) and ``gpus_per_worker`` GPUs (default 0); set them with
``LM_AUDIT_RAY_CPUS_PER_WORKER`` / ``LM_AUDIT_RAY_GPUS_PER_WORKER`` or ``engine_options``.
Every node of a cluster needs lm-audit (same version) and the model; see ``docs/scaling.md``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

try:
    import ray
    from ray.exceptions import RayActorError, RayTaskError
except ImportError as exc:  # the runner turns this into one line and exit code 2
    raise ImportError(
        f"Ray is not installed ({exc.name or 'ray'}); install it with: pip install 'lm-audit[ray]'"
    ) from None

from audit.core.errors import UsageError
from audit.core.types import Completion, Record
from audit.run.config import RunConfig
from audit.run.unit_processing import process_unit, unit_cache_keys
from audit.run.work_units import WorkUnit
from audit.store.cache import GenerationCache

FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM", "LM_AUDIT_CACHE_DIR")
IN_FLIGHT_PER_WORKER = 2  # one running, one queued on the actor: no idle gap between units


class PrefilledCache:
    """The cache seen by a worker: the driver's hits for this unit in, fresh completions out.

    It has the two methods ``process_unit`` uses (``get_many``, ``put_many``).
    """

    def __init__(self, hits: dict[str, Completion]) -> None:
        self.hits = hits
        self.fresh: list[tuple[str, Completion]] = []

    def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        return {k: self.hits[k] for k in keys if k in self.hits}

    def put_many(self, items: Iterable[tuple[str, Completion]]) -> None:
        self.fresh.extend(items)


class ModelWorker:
    """A Ray actor: one model replica; processes units like the local engine does."""

    def __init__(self, model: str | None, model_options: dict[str, Any], threads: int) -> None:
        import torch

        from audit.models.registry import load_model

        torch.set_num_threads(max(1, threads))
        self.error: Exception | None = None
        try:
            self.model = load_model(model, **model_options)
        except Exception as exc:  # reported by info(), so the driver sees the real error
            self.error = exc

    def info(self) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return self.model.info().to_dict()

    def process(
        self, unit: WorkUnit, hits: dict[str, Completion]
    ) -> tuple[list[Record], list[tuple[str, Completion]]]:
        cache = PrefilledCache(hits)
        records = process_unit(self.model, unit, cache)  # type: ignore[arg-type]
        return records, cache.fresh


def split_units(units: Sequence[WorkUnit], workers: int, batch_size: int) -> list[WorkUnit]:
    """Cut units so every worker gets work: at least ``IN_FLIGHT_PER_WORKER`` pieces per worker
    when there are enough requests, each piece a multiple of the batch size. Entries keep their
    order, so the pieces, concatenated, are the original units (and yield the same records)."""
    total = sum(len(u.entries) for u in units)
    target = -(-total // (IN_FLIGHT_PER_WORKER * max(1, workers)))
    size = max(batch_size, target // batch_size * batch_size)
    pieces: list[WorkUnit] = []
    for unit in units:
        if len(unit.entries) <= size:
            pieces.append(unit)
            continue
        for i in range(0, len(unit.entries), size):
            pieces.append(replace(unit, entries=unit.entries[i : i + size]))
    return pieces


def _number_option(options: dict[str, Any], key: str, env: str, default: float) -> float:
    value = options.get(key)
    if value is None:
        value = os.environ.get(env)
    try:
        return float(value) if value is not None else default
    except ValueError:
        raise UsageError(f"{env} must be a number, got '{value}'") from None


class RayEngine:
    """Runs units on ``workers`` Ray actors; yields record batches in unit order."""

    def __init__(self, config: RunConfig, cache_path: Path | None) -> None:
        opts = dict(config.engine_options or {})
        self.workers = int(opts.get("workers") or 2)
        self.batch_size = int((config.model_options or {}).get("batch_size") or 16)
        if self.workers < 1:
            raise UsageError("--workers must be at least 1")
        address = opts.get("ray_address") or os.environ.get("RAY_ADDRESS") or None
        self._owns_ray = not ray.is_initialized()
        local = address is None
        cores = os.cpu_count() or 1
        cpus = _number_option(opts, "cpus_per_worker", "LM_AUDIT_RAY_CPUS_PER_WORKER", 0) or (
            max(1, cores // self.workers) if local else 1
        )
        gpus = _number_option(opts, "gpus_per_worker", "LM_AUDIT_RAY_GPUS_PER_WORKER", 0)
        if self._owns_ray:
            env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
            if not local:
                env.pop("LM_AUDIT_CACHE_DIR", None)  # a path on this machine means nothing there
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.WARNING,
                "runtime_env": {"env_vars": env},
            }
            if local:
                kwargs["num_cpus"] = max(cores, int(self.workers * cpus))
            try:
                ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UsageError(
                    f"cannot start or reach Ray at {address or 'a local cluster'}: {exc}"
                ) from None
        self.actors: list[Any] = []
        self.cache: GenerationCache | None = None
        try:
            actor_cls = ray.remote(ModelWorker).options(
                num_cpus=cpus, num_gpus=gpus, max_restarts=1, max_task_retries=1
            )
            self.actors = [
                actor_cls.remote(config.model, dict(config.model_options), int(cpus))
                for _ in range(self.workers)
            ]
            infos = self._get([a.info.remote() for a in self.actors])
            fingerprints = {i["fingerprint"] for i in infos}
            if len(fingerprints) != 1:
                raise UsageError(
                    f"Ray workers loaded different weights for {config.model!r} (fingerprints "
                    f"{sorted(fingerprints)}); install the same model on every node"
                )
            self._info = infos[0]
            self.cache = GenerationCache(cache_path) if cache_path else None
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _get(refs: Any) -> Any:
        """``ray.get`` that re-raises a worker's ``UsageError`` as itself (one clean line)."""
        try:
            return ray.get(refs)
        except RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, UsageError):
                raise cause from None
            raise
        except RayActorError as exc:
            raise RuntimeError(f"a Ray worker died: {str(exc).splitlines()[0]}") from None

    def model_info(self) -> dict[str, Any]:
        info = dict(self._info)
        details = dict(info.get("details") or {})
        details["ray_workers"] = self.workers
        info["details"] = details
        return info

    def _submit(self, actor: Any, unit: WorkUnit) -> Any:
        hits: dict[str, Completion] = {}
        if self.cache is not None:
            keys = unit_cache_keys(self._info["fingerprint"], unit)
            hits = self.cache.get_many(keys) if keys else {}
        return actor.process.remote(unit, hits)

    # ------------------------------------------------------------------ engine protocol
    def run(self, units: Sequence[WorkUnit]) -> Iterator[list[Record]]:
        todo = iter(enumerate(split_units(units, self.workers, self.batch_size)))
        pending: dict[Any, tuple[int, Any]] = {}  # ref -> (unit index, actor)
        done: dict[int, list[Record]] = {}
        next_out = 0

        def feed(actor: Any) -> None:
            item = next(todo, None)
            if item is not None:
                pending[self._submit(actor, item[1])] = (item[0], actor)

        for _ in range(IN_FLIGHT_PER_WORKER):
            for actor in self.actors:
                feed(actor)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                index, actor = pending.pop(ref)
                records, fresh = self._get(ref)
                if self.cache is not None and fresh:
                    self.cache.put_many(fresh)
                done[index] = records
                feed(actor)
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1

    def close(self) -> None:
        for actor in getattr(self, "actors", []):
            ray.kill(actor)
        self.actors = []
        cache = getattr(self, "cache", None)
        if cache is not None:
            cache.close()
            self.cache = None
        if getattr(self, "_owns_ray", False) and ray.is_initialized():
            ray.shutdown()
