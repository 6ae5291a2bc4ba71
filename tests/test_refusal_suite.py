"""The over-refusal suite (XSTest) end to end, and its metric on hand-made records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audit.cli import main
from audit.metrics.registry import Frame, compute_metric

PARTS = {"over_refusal.benign_full_refusal", "over_refusal.benign_refusal", "over_refusal.harmful_compliance",
         "over_refusal.balanced_error"}


def _records(policy: str, n: int = 40, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        label = "safe" if i % 2 == 0 else "unsafe"
        if policy == "refuse-all":
            cls = 1
        elif policy == "comply-all":
            cls = 0
        elif policy == "perfect":
            cls = 0 if label == "safe" else 1
        else:  # random
            cls = int(rng.integers(0, 3))
        out.append({"key": f"p{i}", "item_id": f"p{i}", "sample": 0, "attributes": {"label": label, "type": "t"},
                    "scores": {"refusal": float(cls > 0), "refusal_class": float(cls)}})
    return out


def _parts(records: list[dict]) -> dict[str, float]:
    frame = Frame(records)
    parts = compute_metric("over_refusal", frame, frame.all_mask(), "refusal")
    return {p.name: float(p.fn(p.columns.sum(axis=0))) for p in parts}


def test_balanced_error_cannot_be_gamed() -> None:
    assert _parts(_records("refuse-all"))["balanced_error"] == 0.5
    assert _parts(_records("comply-all"))["balanced_error"] == 0.5
    perfect = _parts(_records("perfect"))
    assert perfect == {"benign_full_refusal": 0.0, "benign_refusal": 0.0, "harmful_compliance": 0.0,
                       "balanced_error": 0.0}
    rnd = [_parts(_records("random", 400, s))["balanced_error"] for s in range(5)]
    assert abs(np.mean(rnd) - 0.5) < 0.05


def test_partial_refusal_counts_in_benign_refusal_only() -> None:
    recs = _records("perfect")
    recs[0]["scores"] = {"refusal": 1.0, "refusal_class": 2.0}  # a safe prompt partly refused
    p = _parts(recs)
    assert p["benign_full_refusal"] == 0.0 and p["benign_refusal"] == pytest.approx(1 / 20)


def test_rule_scores_without_a_class_fall_back_to_the_threshold() -> None:
    recs = _records("refuse-all")
    for r in recs:
        r["scores"] = {"refusal": 1.0}
    p = _parts(recs)
    assert p["benign_full_refusal"] == 1.0 and p["harmful_compliance"] == 0.0


def _run(model: str, limit: int, tmp_path: Path) -> dict:
    code = main(["run", "--suite", "over-refusal", "--model", model, "--limit", str(limit),
                 "--out", str(tmp_path), "--name", "x", "--no-progress"])
    assert code in (0, 1)
    return json.loads((tmp_path / "x" / "summary.json").read_text())


def _check(summary: dict, limit: int) -> dict:
    suite = summary["suites"]["over-refusal"]
    figs = {m["name"]: m for m in suite["metrics"]}
    assert set(figs) >= PARTS
    assert figs["over_refusal.balanced_error"]["n"] == limit
    for name in PARTS:
        assert figs[name]["estimate"] is None or 0.0 <= figs[name]["estimate"] <= 1.0
    assert len(figs["over_refusal.benign_refusal"]["by"]["category"]) >= 5
    assert {g["metric"] for g in suite["gates"]} == {"over_refusal.benign_refusal",
                                                     "over_refusal.harmful_compliance", "over_refusal.balanced_error"}
    card = summary["scorer_validity"]["refusal"]
    assert card["version"].startswith("refusal-xstest-lr-") and len(card["fingerprint"]) == 16
    # the card carries the figures of the refusal model that scored these records, and only those
    used = card["variants_used"]
    assert sum(used.values()) == limit
    assert {a["variant"] for a in card["agreement"]} == set(used)
    assert all(a["n"] == 450 for a in card["agreement"] if a["metric"].startswith("agreement"))
    return figs


def test_over_refusal_runs_end_to_end_on_tiny_random_gpt2(tmp_path: Path) -> None:
    _check(_run("tiny-random-gpt2", 24, tmp_path), 24)


@pytest.mark.slow
def test_over_refusal_runs_end_to_end_on_smollm2(tmp_path: Path) -> None:
    figs = _check(_run("smollm2-135m", 16, tmp_path), 16)
    assert figs["over_refusal.balanced_error"]["estimate"] is not None
