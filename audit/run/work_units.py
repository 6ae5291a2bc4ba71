"""Planning a run: suites -> work units.

``plan_suites`` loads and validates the suites asked for (``SuiteRequest``s, from the command
line or a profile: ``load_profile``) and applies ``--limit``; ``plan_work`` turns them into
``WorkUnit``s of not-yet-done records (plain, picklable data: a chunk of length-sorted prompts x
samples of one suite).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from audit.core.errors import UsageError
from audit.suites import PROBES_DIR, GenerationSpec, Item, LoadedSuite, limit_by_axis, load_suite

if TYPE_CHECKING:
    from audit.attacks import Attack

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
    attacks: str | list[str] | None = None  # NAME[,NAME] or all (--attacks); None: the suite's ``attacks``
    axis_limits: dict[str, int] | None = None  # a profile's own limit per axis (``limit_by_axis``)


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
    panel: bool = False  # a likelihood counterfactual unit: derive the panel scores (suites/panel.py)


@dataclass
class PlannedSuite:
    loaded: LoadedSuite
    protocol: str
    generation: GenerationSpec
    limit: int | None
    items: list[Item]
    selection_seed: int | None = None  # the seed --limit selected ``items`` with (None: no limit)
    attacks: list[str] = field(default_factory=list)  # attack names; ``items`` holds their attacked prompts
    axis_limits: dict[str, int] | None = None  # per-axis limits of a profile (``limit_by_axis``)


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
    for r in reqs:
        limits = r.axis_limits
        if limits is not None and not (
            isinstance(limits, dict)
            and all(isinstance(k, str) and type(v) is int and v >= 1 for k, v in limits.items())
        ):
            raise UsageError(
                f"{path}: invalid profile: axis_limits of '{r.suite}' must map axis names to item counts of at least 1"
            )
    return reqs


def plan_suites(requests: Sequence[SuiteRequest], seed: int) -> list[PlannedSuite]:
    """Load and validate suites; ``seed`` is the *selection* seed of ``--limit`` (never the sampling seed)."""
    from audit.attacks import available as attack_names
    from audit.scorers.registry import available

    known = set(available())
    planned: list[PlannedSuite] = []
    seen: set[str] = set()
    for req in requests:
        loaded = load_suite(req.suite, known_scorers=known or None, known_attacks=attack_names())
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
        items = limit_by_axis(loaded.items, req.limit, req.axis_limits or {}, seed, loaded.suite.group_attributes)
        protocol = req.protocol or loaded.suite.default_protocol or "default"
        used = seed if len(items) < len(loaded.items) else None
        attacks = suite_attacks(req, loaded)
        if attacks:
            from audit.attacks.expand import attack_items

            items = attack_items(items, attacks)  # after --limit: every kept prompt gets every attack
        planned.append(
            PlannedSuite(loaded, protocol, gen, req.limit, items, used, [a.name for a in attacks], req.axis_limits)
        )
    return planned


def suite_attacks(req: SuiteRequest, loaded: LoadedSuite) -> list[Attack]:
    """The attacks of one suite: ``--attacks`` (or the profile's), else the suite's ``attacks:``."""
    spec = req.attacks if req.attacks is not None else loaded.suite.attacks
    if not spec:
        return []
    if loaded.suite.task != "generate":
        raise UsageError(f"suite '{loaded.id}' is a likelihood suite: attacks need a generate suite")
    from audit.attacks import resolve_attacks

    return resolve_attacks(spec)


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
        for chunk in item_chunks(entries, size):
            units.append(
                WorkUnit(
                    suite_id=suite.id,
                    task=suite.task,
                    params=ps.generation.params().to_dict(),
                    seed=seed,
                    scorers=list(suite.scorers),
                    entries=chunk,
                    panel=suite.prompts.continuations is not None,
                )
            )
    return units


def item_chunks(entries: Sequence[UnitEntry], size: int) -> list[list[UnitEntry]]:
    """Consecutive chunks of at most ``size`` entries that never split an item's samples, unless the
    item alone holds more than ``size``: the samples of one prompt then share one batch, where the
    backend prefills their prompt once (``audit/models/prompt_sharing.py``). With one sample per
    item, or a sample count that divides ``size``, these are the plain ``size``-entry chunks."""
    chunks: list[list[UnitEntry]] = []
    cur: list[UnitEntry] = []
    i = 0
    while i < len(entries):
        j = i + 1
        while j < len(entries) and entries[j].item.item_id == entries[i].item.item_id:
            j += 1
        group = list(entries[i:j])
        if cur and len(cur) + len(group) > size:
            chunks.append(cur)
            cur = []
        while len(group) > size:
            chunks.append(group[:size])
            group = group[size:]
        cur += group
        i = j
    if cur:
        chunks.append(cur)
    return chunks


def _text_length(item: Item) -> int:
    return len(item.prompt) + len(item.context) + sum(map(len, item.options.values()))
