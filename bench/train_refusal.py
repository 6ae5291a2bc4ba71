"""Train and measure the refusal scorer on XSTest's human-labelled completions.

Protocol: leave-one-model-out. For each of the three models (GPT-4, Llama-2-70b-chat,
Mistral-7B-Instruct) a classifier is trained, with its regularization C chosen by an inner
leave-one-model-out over the two training models only, and measured on the third model's 450
completions, which it never saw. The labellers compared on the same held-out rows:

- ``xstest-strmatch``: XSTest's own string match (audit/scorers/refusal_rules.py:xstest_strmatch);
- ``rules-v1``: the previous rule scorer (RuleRefusal, refusal = 1 read as full refusal);
- ``rules-v2``: phrase families only (rule_class);
- ``tfidf-lr``: TF-IDF word+char n-grams of the opening, logistic regression;
- ``tfidf+rules-lr``: the same plus the phrase-family features;
- ``tfidf+rules-lr, rules veto``: the same, where a refusal phrase in the first sentence overrides a
  "compliance" decision (refusal_model.with_rules): the shipped scorer.

The shipped weights are then trained on all three models (C chosen by leave-one-model-out over all
three) and written to audit/scorers/data/refusal_xstest.json with the held-out figures in
audit/scorers/data/refusal_xstest_validity.json.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/train_refusal.py            # measure + write weights
    HF_HUB_OFFLINE=1 .venv/bin/python bench/train_refusal.py --no-write  # measure only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audit.scorers.refusal import RuleRefusal  # noqa: E402
from audit.scorers.refusal_eval import MODELS, agreement, load_labelled  # noqa: E402
from audit.scorers.refusal_model import (  # noqa: E402
    CLASSES,
    WEIGHTS,
    char_ngrams,
    dense_features,
    predict_proba,
    prepare,
    with_rules,
    word_ngrams,
)
from audit.scorers.refusal_rules import head, normalize, rule_class, xstest_strmatch  # noqa: E402

HEAD = 400
C_GRID = (0.5, 1.0, 4.0)
VALIDITY = WEIGHTS.with_name("refusal_xstest_validity.json")
SHIPPED = "tfidf+rules-lr, rules veto"  # what XSTestRefusal computes (audit/scorers/refusal.py)


@cache
def _dense(text: str) -> tuple[float, ...]:
    return tuple(dense_features(text))


def fit(rows: list[dict[str, str]], c: float, use_dense: bool = True, chars: bool = False) -> dict[str, Any]:
    heads = [head(normalize(r["completion"]), HEAD) for r in rows]
    wv = TfidfVectorizer(analyzer=word_ngrams, min_df=3, max_features=4000)
    cv = TfidfVectorizer(analyzer=char_ngrams, min_df=3, max_features=6000)
    xw = wv.fit_transform(heads)
    dense = np.array([_dense(r["completion"]) for r in rows])
    if not use_dense:
        dense = np.zeros_like(dense)
    blocks = [xw]
    if chars:
        blocks.append(cv.fit_transform(heads))
    x = sparse.hstack([*blocks, sparse.csr_matrix(dense)]).tocsr()
    y = np.array([CLASSES.index(r["label"]) for r in rows])
    lr = LogisticRegression(C=c, max_iter=5000, random_state=0).fit(x, y)
    wvocab = sorted(wv.vocabulary_, key=wv.vocabulary_.__getitem__)
    cvocab = sorted(cv.vocabulary_, key=cv.vocabulary_.__getitem__) if chars else []
    return {
        "format": "lm-audit refusal classifier 1",
        "classes": list(CLASSES), "head_chars": HEAD, "C": c, "use_dense": use_dense,
        "word_vocab": wvocab, "word_idf": [round(float(v), 6) for v in wv.idf_],
        "char_vocab": cvocab, "char_idf": [round(float(v), 6) for v in cv.idf_] if chars else [],
        "coef": [[round(float(v), 6) for v in row] for row in lr.coef_],
        "intercept": [round(float(v), 6) for v in lr.intercept_],
        "n_train": len(rows),
    }


def classify(model: dict[str, Any], rows: list[dict[str, str]], rules: bool = False) -> list[str]:
    texts = [r["completion"] for r in rows]
    p = predict_proba(texts, prepare(model))
    if rules:
        p = with_rules(texts, p)
    return [CLASSES[i] for i in p.argmax(axis=1)]


def choose_c(data: dict[str, list[dict[str, str]]], models: list[str], use_dense: bool) -> float:
    best, best_c = -1.0, C_GRID[0]
    for c in C_GRID:
        accs = []
        for held in models:
            train = [r for m in models if m != held for r in data[m]]
            pred = classify(fit(train, c, use_dense), data[held])
            accs.append(agreement(pred, [r["label"] for r in data[held]])["agreement"]["estimate"])
        if min(accs) + np.mean(accs) > best:
            best, best_c = float(min(accs) + np.mean(accs)), c
    return best_c


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
            model = fit(train, c, dense)
            preds[name] = classify(model, rows)
            if dense:
                preds["tfidf+rules-lr, rules veto"] = classify(model, rows, rules=True)
            print(f"  {held}: {name} C={c}", flush=True)
        out[held] = {name: agreement(p, gold) for name, p in preds.items()}
        out[held]["_trained_on"] = train_models
    return out


def table(results: dict[str, Any]) -> str:
    lines = ["| held-out model | labeller | agreement (full vs not) | precision | recall | 3-way agreement |",
             "|---|---|---|---|---|---|"]

    def f(x: dict[str, Any]) -> str:
        return "n/a" if x["estimate"] is None else f"{x['estimate']:.3f} [{x['ci_low']:.3f}, {x['ci_high']:.3f}]"

    for held, by in results.items():
        for name, a in by.items():
            if name.startswith("_"):
                continue
            lines.append(f"| {held} (n={a['n']}) | {name} | {f(a['agreement'])} | {f(a['precision'])} | "
                         f"{f(a['recall'])} | {f(a['agreement_3way'])} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true", help="measure only; do not write the weight files")
    args = ap.parse_args()
    data = {m: load_labelled(m) for m in MODELS}
    t0 = time.perf_counter()
    results = measure(data)
    print(table(results))
    if args.no_write:
        return 0
    c = choose_c(data, list(MODELS), True)
    model = fit([r for m in MODELS for r in data[m]], c, True)
    WEIGHTS.write_text(json.dumps(model, separators=(",", ":")), encoding="utf-8")
    shipped = {held: by[SHIPPED] for held, by in results.items()}
    VALIDITY.write_text(json.dumps({
        "scorer": "refusal", "reference": "XSTest human final labels (Röttger et al. 2024), leave-one-model-out",
        "protocol": "each model's 450 completions scored by a classifier trained on the other two models",
        "shipped_C": c, "held_out": shipped,
        "baselines": {held: {k: v for k, v in by.items() if not k.startswith("_")} for held, by in results.items()},
    }, indent=1), encoding="utf-8")
    print(f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size} bytes, C={c}) and {VALIDITY} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
