"""Synthetic run folders (manifest.json + records.jsonl) for statistics, gate, report and compare
tests: no model needed, and every planted effect is known."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

SCORERS = {
    "sentiment": {"name": "sentiment", "version": "vader-3.3.2"},
    "toxicity": {"name": "toxicity", "version": "test-1"},
}


def suite_manifest(
    task: str = "generate",
    samples: int = 1,
    scorers: list[str] | None = None,
    metrics: list[dict[str, Any]] | None = None,
    gates: list[dict[str, Any]] | None = None,
    group_attributes: list[str] | None = None,
    n_items: int = 0,
) -> dict[str, Any]:
    return {
        "path": "synthetic.yaml",
        "version": "1.0",
        "title": "Synthetic suite",
        "data_hash": "0",
        "task": task,
        "protocol": "default",
        "generation": {
            "samples": samples,
            "max_new_tokens": 20,
            "temperature": 1.0,
            "top_p": 0.9,
            "top_k": 0,
            "do_sample": True,
            "chat": False,
            "stop": [],
        },
        "limit": None,
        "n_items": n_items,
        "group_attributes": group_attributes if group_attributes is not None else ["axis", "group"],
        "scorers": scorers if scorers is not None else ["sentiment"],
        "metrics": metrics or [],
        "gates": gates or [],
    }


def write_run(
    run_dir: Path,
    suites: dict[str, dict[str, Any]],
    records: list[dict[str, Any]],
    *,
    random_weights: bool = False,
    model: str = "synthetic-model",
) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = {
        "schema_version": 1,
        "run_id": run_dir.name,
        "status": "complete",
        "created": "2026-01-01T00:00:00Z",
        "finished": "2026-01-01T00:01:00Z",
        "model": {
            "name": model,
            "backend": "hf",
            "fingerprint": "abc123",
            "random_weights": random_weights,
            "details": {},
        },
        "seed": 0,
        "engine": "local",
        "command": ["lm-audit", "run"],
        "suites": suites,
        "scorers": {k: v for k, v in SCORERS.items() if any(k in s["scorers"] for s in suites.values())},
        "packages": {"lm-audit": "0.1.0"},
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    with (run_dir / "records.jsonl").open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return run_dir


def record(
    suite: str,
    item_id: str,
    sample: int,
    scores: dict[str, float | None],
    attributes: dict[str, Any] | None = None,
    prompt: str = "prompt",
    completion: str = " completion",
) -> dict[str, Any]:
    return {
        "key": f"{suite}/{item_id}/{sample}",
        "suite": suite,
        "item_id": item_id,
        "template_id": (attributes or {}).get("template"),
        "sample": sample,
        "prompt": prompt,
        "completion": completion,
        "attributes": attributes or {},
        "scores": scores,
        "extra": {},
        "timings": {},
    }


def counterfactual_records(
    suite: str = "bias",
    n_pairs: int = 40,
    samples: int = 2,
    gap: float = 0.0,
    noise: float = 0.2,
    seed: int = 0,
    axis: str = "gender",
    groups: tuple[str, ...] = ("female", "male"),
) -> list[dict[str, Any]]:
    """Template-suite records: ``n_pairs`` counterfactual sets x groups x samples. The first group's
    sentiment is lower by ``gap``; each set shares a random template effect (so pairing matters)."""
    rng = np.random.default_rng(seed)
    out = []
    for p in range(n_pairs):
        base = rng.normal(0.0, 0.3)
        pair_id = f"t{p % 5}:{axis}:{p}"
        for gi, g in enumerate(groups):
            for s in range(samples):
                value = base + rng.normal(0.0, noise) - (gap if gi == 0 else 0.0)
                attrs = {"axis": axis, "group": g, "term": g, "pair_id": pair_id, "context": "occupation"}
                out.append(
                    record(suite, f"t{p % 5}:{axis}:{g}:{p}", s, {"sentiment": float(value)}, attrs,
                           prompt=f"The {g} worked as", completion=f" text {p} {g} {s}")
                )
    return out


def toxicity_records(
    suite: str = "tox", n_prompts: int = 60, samples: int = 4, level: float = 0.2, seed: int = 0,
    categories: tuple[str, ...] = ("insult", "threat"),
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_prompts):
        cat = categories[i % len(categories)]
        for s in range(samples):
            tox = float(np.clip(rng.beta(2, 2 / max(level, 1e-3) - 2) if level < 1 else 1.0, 0, 1))
            out.append(record(suite, f"p{i}", s, {"toxicity": tox}, {"category": cat},
                              prompt=f"Prompt {i}", completion=f" completion {i}.{s}"))
    return out
