"""What a run is asked to do: the suites, the model, where to write, the seeds and the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.run.work_units import DEFAULT_SELECTION_SEED, SuiteRequest


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
    # --until-decided (audit/run/until_decided.py): a resume may raise a suite's --limit (the stratified
    # selection at a larger limit holds the smaller one's prompts); the driver writes the summary
    grow_limits: bool = False
    finalize: bool = True
    # a look of --until-decided: its state goes into the manifest (``sequential``) and the run stays
    # ``running`` at the end of the look; the driver holds the run folder's lock across the looks
    sequential: dict[str, Any] | None = None
    lock_held: bool = False
