"""Train and measure the refusal scorer on XSTest's human-labelled completions.

Protocol: leave-one-model-out. For each of the three models (GPT-4, Llama-2-70b-chat,
Mistral-7B-Instruct) a classifier is trained on the other two and measured on the third model's
450 completions, which it never saw. Its variant (feature groups, head) and regularization C are
chosen by an inner leave-one-model-out over the two training models only. The labellers compared
on the same held-out rows:

- ``xstest-strmatch``: XSTest's own string match (audit/scorers/refusal_rules.py:xstest_strmatch);
- ``rules-v1``: the first rule scorer (RuleRefusal, refusal = 1 read as full refusal);
- ``rules-v2``: phrase families only (rule_class);
- ``tfidf-lr``: TF-IDF word n-grams of the opening, logistic regression; ``tfidf+rules-lr``: the same
  plus the phrase-family features (both without the rules veto);
- VARIANTS below, each with the rules veto (refusal_model.with_rules) and its own inner-chosen C:
  the phrase families alone or with the structure features (what follows the first refusal
  sentence, premise rejection: refusal_rules.structure_features), with the three-class head or a
  full-vs-not head;
- the shipped choice: the variant and C with the best inner score (min + mean agreement).

The shipped weights are then trained on all three models (variant and C chosen by
leave-one-model-out over all three) and written to audit/scorers/data/refusal_xstest.json, with
the held-out figures and the human inter-annotator agreement in
audit/scorers/data/refusal_xstest_validity.json.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/train_refusal.py            # measure + write weights
    HF_HUB_OFFLINE=1 .venv/bin/python bench/train_refusal.py --no-write  # measure only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import audit.scorers.refusal_model as refusal_model  # noqa: E402
from audit.scorers.refusal import RuleRefusal  # noqa: E402
from audit.scorers.refusal_eval import MODELS, agreement, agreement_table, load_labelled  # noqa: E402
from audit.scorers.refusal_model import (  # noqa: E402
    CLASSES,
    WEIGHTS,
    dense_features,
    predict_proba,
    prepare,
    with_rules,
    word_ngrams,
)
from audit.scorers.refusal_rules import head, normalize, rule_class, xstest_strmatch  # noqa: E402

HEAD = 400
C_GRID = (0.25, 0.5, 1.0, 2.0, 4.0)
VALIDITY = WEIGHTS.with_name("refusal_xstest_validity.json")
# candidate scorers: (name, structure feature groups, head). The shipped one is chosen among them, with
# its C, by leave-one-model-out (inner LOMO on the training models for the held-out figures).
VARIANTS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("tfidf+rules-lr, rules veto", (), "3-class"),
    ("tfidf+rules-lr, full-vs-not head, rules veto", (), "binary"),
    ("+structure, rules veto", ("structure",), "3-class"),
    ("+structure, full-vs-not head, rules veto", ("structure",), "binary"),
    ("+structure+moral, rules veto", ("structure", "moral"), "3-class"),
    ("+structure+moral, full-vs-not head, rules veto", ("structure", "moral"), "binary"),
)
SHIPPED = "shipped: variant and C chosen by inner leave-one-model-out"


@cache
def _dense(text: str, groups: tuple[str, ...]) -> tuple[float, ...]:
    return tuple(dense_features(text, groups))


def _dense_cached(text: str, groups: Sequence[str] = ()) -> list[float]:
    return list(_dense(text, tuple(groups)))


# scoring here sees the same 1,350 texts hundreds of times: the same features, computed once
refusal_model.dense_features = _dense_cached


def _round(xs: Any) -> list[float]:
    return [round(float(v), 6) for v in xs]


def fit(rows: list[dict[str, str]], c: float, use_dense: bool = True, groups: tuple[str, ...] = (),
        head_kind: str = "3-class") -> dict[str, Any]:
    """Weights (the JSON written to refusal_xstest.json) for one variant trained on ``rows``."""
    heads = [head(normalize(r["completion"]), HEAD) for r in rows]
    wv = TfidfVectorizer(analyzer=word_ngrams, min_df=3, max_features=4000)
    xw = wv.fit_transform(heads)
    dense = np.array([_dense(r["completion"], groups) for r in rows])
    if not use_dense:
        dense = np.zeros_like(dense)
    x = sparse.hstack([xw, sparse.csr_matrix(dense)]).tocsr()
    y = np.array([CLASSES.index(r["label"]) for r in rows])
    lr = LogisticRegression(C=c, max_iter=5000, random_state=0).fit(x, y)
    out: dict[str, Any] = {
        "format": "lm-audit refusal classifier 2",
        "classes": list(CLASSES), "head_chars": HEAD, "C": c, "use_dense": use_dense,
        "structure_groups": list(groups), "head": head_kind,
        "word_vocab": sorted(wv.vocabulary_, key=wv.vocabulary_.__getitem__), "word_idf": _round(wv.idf_),
        "char_vocab": [], "char_idf": [],
        "coef": [_round(row) for row in lr.coef_], "intercept": _round(lr.intercept_),
        "n_train": len(rows),
    }
    if head_kind == "binary":
        bl = LogisticRegression(C=c, max_iter=5000, random_state=0).fit(x, (y == CLASSES.index("full")).astype(int))
        out["full_coef"], out["full_intercept"] = _round(bl.coef_[0]), round(float(bl.intercept_[0]), 6)
    return out


def classify(model: dict[str, Any], rows: list[dict[str, str]], rules: bool = False) -> list[str]:
    texts = [r["completion"] for r in rows]
    p = predict_proba(texts, prepare(model))
    if rules:
        p = with_rules(texts, p)
    return [CLASSES[i] for i in p.argmax(axis=1)]


def _agree(pred: list[str], rows: list[dict[str, str]]) -> float:
    return float(agreement(pred, [r["label"] for r in rows])["agreement"]["estimate"])


def inner_scores(data: dict[str, list[dict[str, str]]], models: list[str],
                 variants: tuple[tuple[str, tuple[str, ...], str], ...] = VARIANTS, use_dense: bool = True,
                 rules: bool = True) -> dict[tuple[str, float], float]:
    """(variant, C) -> min + mean agreement over a leave-one-model-out on ``models`` only."""
    out: dict[tuple[str, float], float] = {}
    for name, groups, kind in variants:
        for c in C_GRID:
            accs = []
            for held in models:
                train = [r for m in models if m != held for r in data[m]]
                accs.append(_agree(classify(fit(train, c, use_dense, groups, kind), data[held], rules), data[held]))
            out[(name, c)] = float(min(accs) + np.mean(accs))
    return out


def best(scores: dict[tuple[str, float], float], names: set[str] | None = None) -> tuple[str, float]:
    """The best (variant, C); ties go to the earlier (simpler) variant, then the smaller C."""
    order = [v[0] for v in VARIANTS]
    keys = [k for k in scores if names is None or k[0] in names]
    return max(keys, key=lambda k: (round(scores[k], 9), -(order.index(k[0]) if k[0] in order else 0), -k[1]))


def choose_c(data: dict[str, list[dict[str, str]]], models: list[str], use_dense: bool) -> float:
    """C for the plain tfidf(+rules) variant, no veto (kept for the tests and the tfidf-lr row)."""
    v = (("tfidf", (), "3-class"),)
    return best(inner_scores(data, models, v, use_dense, rules=False))[1]


VARIANT = {v[0]: v for v in VARIANTS}


def measure(data: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
    old = RuleRefusal()
    out: dict[str, Any] = {}
    for held in MODELS:
        rows = data[held]
        gold = [r["label"] for r in rows]
        texts = [r["completion"] for r in rows]
        train_models = [m for m in MODELS if m != held]
        train = [r for m in train_models for r in data[m]]
        preds = {
            "xstest-strmatch": [xstest_strmatch(t) for t in texts],
            "rules-v1": ["full" if s["refusal"] else "compliance" for s in old.score(texts)],
            "rules-v2": [rule_class(t) for t in texts],
        }
        for name, dense in (("tfidf-lr", False), ("tfidf+rules-lr", True)):
            c = choose_c(data, train_models, dense)
            preds[name] = classify(fit(train, c, dense), rows)
        scores = inner_scores(data, train_models)
        chosen: dict[str, Any] = {}
        for name, groups, kind in VARIANTS:
            _, c = best(scores, {name})
            preds[name] = classify(fit(train, c, True, groups, kind), rows, rules=True)
            chosen[name] = c
        name, c = best(scores)
        preds[SHIPPED] = preds[name] if chosen[name] == c else classify(
            fit(train, c, True, VARIANT[name][1], VARIANT[name][2]), rows, rules=True)
        print(f"  {held}: chose {name} C={c}", flush=True)
        out[held] = {name: agreement(p, gold) for name, p in preds.items()}
        out[held]["_trained_on"] = train_models
        out[held]["_chosen"] = {"variant": name, "C": c}
    return out


def annotators(root: Path | None = None) -> dict[str, Any]:
    """Human agreement on full refusal vs not, per model: annotator 1 vs 2, and each vs the final label."""
    import csv

    from audit.scorers.refusal_eval import XSTEST_DIR

    out: dict[str, Any] = {}
    for m in MODELS:
        path = (root or XSTEST_DIR) / "model_completions" / f"xstest_v2_completions_{m}.csv"
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        lab = {k: ["full" if r[k].strip().startswith("2") else "compliance" for r in rows]
               for k in ("annotation_1", "annotation_2", "final_label")}
        out[m] = {"annotator 1 vs 2": agreement(lab["annotation_1"], lab["annotation_2"])["agreement"],
                  "annotator 1 vs final": agreement(lab["annotation_1"], lab["final_label"])["agreement"],
                  "annotator 2 vs final": agreement(lab["annotation_2"], lab["final_label"])["agreement"]}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true", help="measure only; do not write the weight files")
    args = ap.parse_args()
    data = {m: load_labelled(m) for m in MODELS}
    t0 = time.perf_counter()
    results = measure(data)
    print(agreement_table(results))
    for m, figs in annotators().items():
        print(f"  humans, {m}: " + ", ".join(f"{k} {v['estimate']:.3f}" for k, v in figs.items()))
    if args.no_write:
        return 0
    name, c = best(inner_scores(data, list(MODELS)))
    _, groups, kind = VARIANT[name]
    model = fit([r for m in MODELS for r in data[m]], c, True, groups, kind)
    model["variant"] = name
    WEIGHTS.write_text(json.dumps(model, separators=(",", ":")), encoding="utf-8")
    shipped = {held: by[SHIPPED] for held, by in results.items()}
    VALIDITY.write_text(json.dumps({
        "scorer": "refusal", "reference": "XSTest human final labels (Röttger et al. 2024), leave-one-model-out",
        "protocol": "each model's 450 completions scored by a classifier trained on the other two models; "
                    "variant and C chosen by an inner leave-one-model-out over those two only",
        "shipped_variant": name, "shipped_C": c, "held_out": shipped,
        "chosen_per_fold": {held: by["_chosen"] for held, by in results.items()},
        "human_ceiling": annotators(),
        "baselines": {held: {k: v for k, v in by.items() if not k.startswith("_")} for held, by in results.items()},
    }, indent=1), encoding="utf-8")
    print(f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size} bytes, {name}, C={c}) and {VALIDITY} "
          f"in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
