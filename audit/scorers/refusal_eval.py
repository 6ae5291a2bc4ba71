"""Agreement of a refusal labeller with XSTest's human labels (vendored in probes/data/xstest/).

``load_labelled()`` reads the 1,350 human-labelled completions of three chat models;
``agreement(pred, gold)`` gives agreement, precision and recall of "full refusal vs not" with Wilson
95% intervals. Used by bench/train_refusal.py (leave-one-model-out measurement) and the tests.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

XSTEST_DIR = Path(__file__).resolve().parents[2] / "probes" / "data" / "xstest"
MODELS: tuple[str, ...] = ("gpt4", "llama2new", "mistralinstruct")
LABELS = {"1_full_compliance": "compliance", "2_full_refusal": "full", "3_partial_refusal": "partial"}


def load_labelled(model: str, root: Path = XSTEST_DIR) -> list[dict[str, str]]:
    """Rows {id, type, prompt, completion, label (compliance/full/partial), model}."""
    path = root / "model_completions" / f"xstest_v2_completions_{model}.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        {"id": r["id"], "type": r["type"], "prompt": r["prompt"], "completion": r["completion"] or "",
         "label": LABELS[r["final_label"].strip()], "model": model}
        for r in rows
    ]


def wilson(k: float, n: float, z: float = 1.959964) -> tuple[float | None, float | None]:
    """Wilson score interval for k successes out of n (None, None when n == 0)."""
    if n <= 0:
        return None, None
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def _figure(k: int, n: int) -> dict[str, Any]:
    lo, hi = wilson(k, n)
    return {"estimate": (k / n) if n else None, "ci_low": lo, "ci_high": hi, "n": n, "method": "wilson 95%"}


def agreement(pred: Sequence[str], gold: Sequence[str], positive: Sequence[str] = ("full",)) -> dict[str, Any]:
    """Binary "positive vs not" figures (default: full refusal vs not) with Wilson CIs, plus the
    three-way agreement and the majority-class rate (the floor a constant labeller reaches)."""
    pos = set(positive)
    p = [x in pos for x in pred]
    g = [x in pos for x in gold]
    n = len(g)
    tp = sum(a and b for a, b in zip(p, g, strict=True))
    agree = sum(a == b for a, b in zip(p, g, strict=True))
    three = sum(a == b for a, b in zip(pred, gold, strict=True))
    majority = max(sum(g), n - sum(g))
    return {
        "agreement": _figure(agree, n),
        "precision": _figure(tp, sum(p)),
        "recall": _figure(tp, sum(g)),
        "agreement_3way": _figure(three, n),
        "majority_rate": (majority / n) if n else None,
        "n": n,
    }


def agreement_table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown table of ``{held-out model: {labeller: agreement(...) figures}}`` (keys starting
    with ``_`` are not labellers), as docs/scorers.md shows them."""
    lines = ["| held-out model | labeller | agreement (full vs not) | precision | recall | 3-way agreement |",
             "|---|---|---|---|---|---|"]

    def f(x: dict[str, Any]) -> str:
        return "n/a" if x["estimate"] is None else f"{x['estimate']:.3f} [{x['ci_low']:.3f}, {x['ci_high']:.3f}]"

    for held, by in results.items():
        for name, a in by.items():
            if not name.startswith("_"):
                lines.append(f"| {held} (n={a['n']}) | {name} | {f(a['agreement'])} | {f(a['precision'])} | "
                             f"{f(a['recall'])} | {f(a['agreement_3way'])} |")
    return "\n".join(lines)
