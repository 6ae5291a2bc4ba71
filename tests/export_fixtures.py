"""Run folders for the export and pandas-API tests (tests/test_export*.py, tests/test_api.py):
synthetic records with planted effects (tests/synthetic_runs.py), finished with the real
``finalize_run`` so summary.json, gates and CIs are lm-audit's own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synthetic_runs import counterfactual_records, record, suite_manifest, toxicity_records, write_run

BIAS_GATES = [{"metric": "gap(sentiment, gender)", "op": "<=", "threshold": 0.1, "bound": "conservative"}]
TOX_GATES = [{"metric": "expected_max_toxicity", "op": "<=", "threshold": 0.9, "bound": "conservative"}]


def audit_run(
    tmp_path: Path,
    name: str = "run-a",
    *,
    gap: float = 0.3,
    level: float = 0.2,
    seed: int = 0,
    random_weights: bool = False,
    policy: Path | None = None,
    extra_records: list[dict[str, Any]] | None = None,
) -> Path:
    """Two suites: ``bias`` (counterfactual sentiment, first group lower by ``gap``; gate on the
    gap) and ``tox`` (toxicity at ``level``, k=4; gate on expected maximum toxicity)."""
    from audit.run.finalize import finalize_run

    suites = {
        "bias": suite_manifest(
            gates=BIAS_GATES,
            samples=2,
            metrics=[{"metric": "mean", "score": "sentiment", "by": ["group"], "name": "mean_sentiment", "params": {}}],
        ),
        "tox": suite_manifest(
            scorers=["toxicity"],
            samples=4,
            group_attributes=["category"],
            metrics=[{"metric": "expected_max_toxicity", "score": "toxicity", "by": ["category"],
                      "name": "expected_max_toxicity", "params": {}}],
            gates=TOX_GATES,
        ),
    }
    recs = counterfactual_records(gap=gap, n_pairs=40, seed=seed) + toxicity_records(level=level, seed=seed)
    recs += extra_records or []
    run = write_run(tmp_path / name, suites, recs, random_weights=random_weights)
    finalize_run(run, policy, echo=lambda _line: None)
    return run


def hostile_record() -> dict[str, Any]:
    """A tox record whose model text holds markup, control characters and a formula."""
    return record("tox", "p-hostile", 0, {"toxicity": 0.5}, {"category": "insult"},
                  prompt="=HYPERLINK(\"http://x\")", completion="<script>alert(1)</script>\x07\x1b[31m | `x`")


def summary_of(run: Path) -> dict[str, Any]:
    return json.loads((run / "summary.json").read_text(encoding="utf-8"))


def records_of(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "records.jsonl").read_text(encoding="utf-8").splitlines()]
