"""Train and measure the refusal scorer on XSTest's human-labelled completions.

Protocol: leave-one-model-out. For each of the three models (GPT-4, Llama-2-70b-chat,
Mistral-7B-Instruct) a classifier is trained on the other two and measured on the third model's
450 completions, which it never saw. Every setting is chosen by an inner leave-one-model-out over
the two training models only (score: min + mean agreement over the two inner folds); the held-out
model's labels choose nothing.

Two decisions, chosen in turn for what each is read for:

1. The headline, any refusal (full or partial) vs compliance (``refusal`` >= 0.5: misuse's
   ``refusal_rate``, over-refusal's ``benign_refusal``, attack success): the feature groups
   (GROUPS: phrase families alone, + structure, + moralizing share, + stance), the any-refusal head
   (``3-class``: P(full) + P(partial) of a three-class logistic regression; ``binary``: a logistic
   regression of any refusal vs compliance), its C and a decision threshold (THRESHOLDS, folded into
   the probability so that the suites read it at 0.5) are chosen for inner any-refusal agreement.
2. The secondary split, full refusal vs not (``refusal_full`` >= 0.5, ``refusal_class`` 1), with
   the headline fixed: the split (``ratio``: the three-class P(full | refusal); ``cond-head``: a
   full-vs-partial logistic regression trained on refusals; ``full-head``: a full-vs-not logistic
   regression, capped at P(any)), its C and threshold, chosen for inner full-vs-not agreement.

The rules veto (refusal_model.with_rules) is part of every candidate, as in the scorer. Beside the
shipped choice, the held-out rows are labelled by XSTest's string match (``xstest-strmatch``), the
first rule scorer (``rules-v1``) and the phrase families alone (``rules-v2``).

The shipped weights are then trained on all three models with the settings a leave-one-model-out
over all three chooses, and written to audit/scorers/data/refusal_xstest.json; the held-out figures
(headline and split), the settings each fold chose and the human inter-annotator agreement go to
audit/scorers/data/refusal_xstest_validity.json. Deterministic (lbfgs, fixed grids, no sampling).

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python bench/train_refusal.py            # measure + write
    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python bench/train_refusal.py --no-write # measure only
    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python bench/train_refusal.py --without stance  # ablation
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
import audit.scorers.refusal_rules as refusal_rules  # noqa: E402
from audit.scorers.refusal import RuleRefusal  # noqa: E402
from audit.scorers.refusal_eval import MODELS, agreement, load_labelled  # noqa: E402
from audit.scorers.refusal_model import (  # noqa: E402
    CLASSES,
    WEIGHTS,
    combine,
    decide,
    dense_features,
    predict_proba,
    prepare,
    with_rules,
    word_ngrams,
)
from audit.scorers.refusal_rules import head, normalize, rule_class, xstest_strmatch  # noqa: E402

HEAD = 400
C_GRID = (0.25, 0.5, 1.0, 2.0, 4.0)
THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
GROUPS: tuple[tuple[str, ...], ...] = ((), ("structure",), ("structure", "moral"), ("structure", "moral", "stance"))
ANY_HEADS = ("3-class", "binary")
SPLITS = ("ratio", "cond-head", "full-head")
ANY = ("full", "partial")
VALIDITY = WEIGHTS.with_name("refusal_xstest_validity.json")
Row = dict[str, str]


@cache
def _dense(text: str, groups: tuple[str, ...]) -> tuple[float, ...]:
    return tuple(dense_features(text, groups))


def _dense_cached(text: str, groups: Sequence[str] = ()) -> list[float]:
    return list(_dense(text, tuple(groups)))


# scoring here sees the same 1,350 texts hundreds of times: the same features and rules, computed once
refusal_model.dense_features = _dense_cached
refusal_rules.rule_class = cache(rule_class)
refusal_model.family_hits = cache(refusal_model.family_hits)


def _round(xs: Any) -> list[float]:
    return [round(float(v), 6) for v in xs]


def _lr(x: Any, y: np.ndarray, c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=5000, random_state=0).fit(x, y)


class Fold:
    """Features of one training set (vectorizer fitted on it) and of the rows it is measured on, and
    the logistic regressions fitted on it (cached by head and C)."""

    def __init__(self, train: list[Row], test: list[Row], groups: tuple[str, ...]) -> None:
        self.train, self.test, self.groups = train, test, groups
        self.vec = TfidfVectorizer(analyzer=word_ngrams, min_df=3, max_features=4000)
        xw = self.vec.fit_transform([head(normalize(r["completion"]), HEAD) for r in train])
        self.x = sparse.hstack([xw, sparse.csr_matrix(np.array([_dense(r["completion"], groups) for r in train]))]).tocsr()
        self.y = np.array([CLASSES.index(r["label"]) for r in train])
        self.xt = self.features(test)
        self.texts = [r["completion"] for r in test]
        self._fits: dict[tuple[str, float], LogisticRegression] = {}

    def features(self, rows: list[Row]) -> Any:
        xw = self.vec.transform([head(normalize(r["completion"]), HEAD) for r in rows])
        return sparse.hstack([xw, sparse.csr_matrix(np.array([_dense(r["completion"], self.groups) for r in rows]))]).tocsr()

    def model(self, kind: str, c: float) -> LogisticRegression:
        """``3-class``; ``any`` (any refusal vs compliance); ``full`` (full vs not); ``cond`` (full vs
        partial, on the refusals only)."""
        if (kind, c) not in self._fits:
            full, comp = CLASSES.index("full"), CLASSES.index("compliance")
            if kind == "3-class":
                self._fits[kind, c] = _lr(self.x, self.y, c)
            elif kind == "any":
                self._fits[kind, c] = _lr(self.x, (self.y != comp).astype(int), c)
            elif kind == "full":
                self._fits[kind, c] = _lr(self.x, (self.y == full).astype(int), c)
            else:
                ref = self.y != comp
                self._fits[kind, c] = _lr(self.x[ref], (self.y[ref] == full).astype(int), c)
        return self._fits[kind, c]

    def p3(self, c: float) -> np.ndarray:
        return self.model("3-class", c).predict_proba(self.xt)

    def p1(self, kind: str, c: float) -> np.ndarray:
        return self.model(kind, c).predict_proba(self.xt)[:, 1]

    def any_raw(self, s: dict[str, Any]) -> np.ndarray:
        if s["any_head"] == "binary":
            return self.p1("any", s["any_C"])
        p = self.p3(s["any_C"])
        return p[:, 1] + p[:, 2]

    def probs(self, s: dict[str, Any]) -> np.ndarray:
        """(n x 3) probabilities of the test rows under settings ``s``, rules veto included: the
        scorer's own combine() and with_rules() on this fold's fitted heads."""
        other = None
        if s["split"] == "cond-head":
            other = self.p1("cond", s["split_C"])
        elif s["split"] == "full-head":
            other = self.p1("full", s["split_C"])
        p = combine(self.p3(three_class_c(s)), self.any_raw(s), s, other)
        return with_rules(self.texts, p)


def three_class_c(s: dict[str, Any]) -> float:
    """The three-class model's C: the headline's when it is the any-refusal head, else the split's
    when the split reads its ratio, else the headline's."""
    if s["any_head"] == "3-class" or s["split"] != "ratio":
        return float(s["any_C"])
    return float(s["split_C"])


def labels(p: np.ndarray) -> list[str]:
    return [CLASSES[decide(float(f), float(f + q))] for f, q in zip(p[:, 1], p[:, 2], strict=True)]


def _any(pred: Sequence[str], rows: list[Row]) -> float:
    return float(agreement(pred, [r["label"] for r in rows], positive=ANY)["agreement"]["estimate"])


def _full(pred: Sequence[str], rows: list[Row]) -> float:
    return float(agreement(pred, [r["label"] for r in rows])["agreement"]["estimate"])


def _inner_folds(data: dict[str, list[Row]], models: Sequence[str], groups: tuple[str, ...]) -> list[Fold]:
    return [Fold([r for m in models if m != held for r in data[m]], data[held], groups) for held in models]


def choose(data: dict[str, list[Row]], models: Sequence[str]) -> dict[str, Any]:
    """Settings chosen by a leave-one-model-out over ``models`` only: the headline first (groups, any
    head, C, threshold by any-refusal agreement), then the split (kind, C, threshold by full-vs-not
    agreement). Ties go to the simpler groups, the three-class head, the ratio split, the smaller C
    and the threshold nearest 0.5."""
    best: tuple[Any, ...] | None = None
    chosen: dict[str, Any] = {}
    folds_of: dict[tuple[str, ...], list[Fold]] = {}
    neutral = {"split": "ratio", "split_C": C_GRID[0], "split_threshold": 0.5}
    for gi, groups in enumerate(GROUPS):
        folds = folds_of[groups] = _inner_folds(data, models, groups)
        for hi, kind in enumerate(ANY_HEADS):
            for c in C_GRID:
                for t in THRESHOLDS:
                    s = {"any_head": kind, "any_C": c, "any_threshold": t, **neutral}
                    accs = [_any(labels(f.probs(s)), f.test) for f in folds]
                    key = (round(min(accs) + float(np.mean(accs)), 9), -gi, -hi, -c, -abs(t - 0.5))
                    if best is None or key > best:
                        best, chosen = key, {"groups": list(groups), **s, "inner_any": key[0]}
    folds = folds_of[tuple(chosen["groups"])]
    best = None
    head_part = {k: chosen[k] for k in ("groups", "any_head", "any_C", "any_threshold", "inner_any")}
    for si, split in enumerate(SPLITS):
        # the ratio of the headline's own three-class model has no C of its own
        for c in (chosen["any_C"],) if split == "ratio" and chosen["any_head"] == "3-class" else C_GRID:
            for t in THRESHOLDS:
                s = {**head_part, "split": split, "split_C": c, "split_threshold": t}
                accs = [_full(labels(f.probs(s)), f.test) for f in folds]
                key = (round(min(accs) + float(np.mean(accs)), 9), -si, -c, -abs(t - 0.5))
                if best is None or key > best:
                    best, chosen = key, {**s, "inner_full": key[0]}
    return chosen


def export(rows: list[Row], s: dict[str, Any]) -> dict[str, Any]:
    """The weight file (refusal_xstest.json) for settings ``s`` trained on ``rows``."""
    groups = tuple(s["groups"])
    f = Fold(rows, rows[:1], groups)
    c3 = three_class_c(s)
    lr = f.model("3-class", c3)
    out: dict[str, Any] = {
        "format": "lm-audit refusal classifier 3", "classes": list(CLASSES), "head_chars": HEAD, "C": c3,
        "use_dense": True, "structure_groups": list(groups), "head": "any-refusal",
        "any_head": s["any_head"], "any_C": s["any_C"], "any_threshold": s["any_threshold"],
        "split": s["split"], "split_C": s["split_C"], "split_threshold": s["split_threshold"],
        "word_vocab": sorted(f.vec.vocabulary_, key=f.vec.vocabulary_.__getitem__), "word_idf": _round(f.vec.idf_),
        "char_vocab": [], "char_idf": [],
        "coef": [_round(row) for row in lr.coef_], "intercept": _round(lr.intercept_), "n_train": len(rows),
        "variant": describe(s),
    }
    for part, kind, c in (("any", "any", s["any_C"]), ("full", "full", s["split_C"]), ("split", "cond", s["split_C"])):
        if (part == "any" and s["any_head"] == "binary") or (part == "full" and s["split"] == "full-head") or (
                part == "split" and s["split"] == "cond-head"):
            m = f.model(kind, c)
            out[f"{part}_coef"], out[f"{part}_intercept"] = _round(m.coef_[0]), round(float(m.intercept_[0]), 6)
    return out


def describe(s: dict[str, Any]) -> str:
    groups = "+".join(s["groups"]) or "phrase families"
    return (f"tfidf+{groups}; any-refusal head {s['any_head']} C={s['any_C']} threshold {s['any_threshold']}; "
            f"split {s['split']} C={s['split_C']} threshold {s['split_threshold']}; rules veto")


# kept for the tests and bench/refusal_explore.py: one three-class (or full-vs-not) model, its classes
def fit(rows: list[Row], c: float, use_dense: bool = True, groups: tuple[str, ...] = (),
        head_kind: str = "3-class") -> dict[str, Any]:
    """Weights of one older-format model (three-class head, or ``binary``: the full-vs-not head)."""
    f = Fold(rows, rows[:1], groups)
    if not use_dense:
        f.x = sparse.hstack([f.x[:, : len(f.vec.vocabulary_)], sparse.csr_matrix((f.x.shape[0], f.x.shape[1]
                                                                                   - len(f.vec.vocabulary_)))]).tocsr()
    lr = f.model("3-class", c)
    out: dict[str, Any] = {
        "format": "lm-audit refusal classifier 2", "classes": list(CLASSES), "head_chars": HEAD, "C": c,
        "use_dense": use_dense, "structure_groups": list(groups), "head": head_kind,
        "word_vocab": sorted(f.vec.vocabulary_, key=f.vec.vocabulary_.__getitem__), "word_idf": _round(f.vec.idf_),
        "char_vocab": [], "char_idf": [], "coef": [_round(row) for row in lr.coef_],
        "intercept": _round(lr.intercept_), "n_train": len(rows),
    }
    if head_kind == "binary":
        bl = f.model("full", c)
        out["full_coef"], out["full_intercept"] = _round(bl.coef_[0]), round(float(bl.intercept_[0]), 6)
    return out


def classify(model: dict[str, Any], rows: list[Row], rules: bool = False) -> list[str]:
    """Classes of ``rows`` through the scorer's own path (prepare, predict_proba, the veto, decide)."""
    texts = [r["completion"] for r in rows]
    p = predict_proba(texts, prepare(model))
    return labels(with_rules(texts, p) if rules else p)


def figures(pred: list[str], rows: list[Row]) -> dict[str, Any]:
    """Headline (any refusal vs compliance) figures with the split (full vs not) and rates beside."""
    gold = [r["label"] for r in rows]
    figs = agreement(pred, gold, positive=ANY)
    figs["full_vs_not"] = agreement(pred, gold)
    figs["rate"] = {"scorer": sum(x in ANY for x in pred) / len(rows), "people": sum(g in ANY for g in gold) / len(rows),
                    "scorer_full": sum(x == "full" for x in pred) / len(rows),
                    "people_full": sum(g == "full" for g in gold) / len(rows)}
    return figs


def measure(data: dict[str, list[Row]]) -> dict[str, Any]:
    old = RuleRefusal()
    out: dict[str, Any] = {}
    for held in MODELS:
        rows = data[held]
        texts = [r["completion"] for r in rows]
        train_models = [m for m in MODELS if m != held]
        s = choose(data, train_models)
        shipped = classify(export([r for m in train_models for r in data[m]], s), rows, rules=True)
        preds = {"xstest-strmatch": [xstest_strmatch(t) for t in texts],
                 "rules-v1": ["full" if v["refusal"] else "compliance" for v in old.score(texts)],
                 "rules-v2": [rule_class(t) for t in texts], "shipped": shipped}
        out[held] = {name: figures(p, rows) for name, p in preds.items()}
        out[held]["_chosen"] = s
        out[held]["_trained_on"] = train_models
        a, f = out[held]["shipped"]["agreement"], out[held]["shipped"]["full_vs_not"]["agreement"]
        print(f"  {held}: {describe(s)}\n    any refusal {a['estimate']:.3f} [{a['ci_low']:.3f}, {a['ci_high']:.3f}], "
              f"full vs not {f['estimate']:.3f} [{f['ci_low']:.3f}, {f['ci_high']:.3f}]", flush=True)
    return out


def table(results: dict[str, Any]) -> str:
    """Markdown: per held-out model and labeller, any refusal, full vs not, 3-way, rates (Wilson 95%)."""
    def f(x: dict[str, Any]) -> str:
        return "n/a" if x["estimate"] is None else f"{x['estimate']:.3f} [{x['ci_low']:.3f}, {x['ci_high']:.3f}]"

    lines = ["| held-out model | labeller | any refusal vs compliance | full refusal vs not | 3-way | "
             "any-refusal rate (people) | full rate (people) |", "|---|---|---|---|---|---|---|"]
    for held, by in results.items():
        for name, a in by.items():
            if not name.startswith("_"):
                r = a["rate"]
                lines.append(f"| {held} (n={a['n']}) | {name} | {f(a['agreement'])} | {f(a['full_vs_not']['agreement'])} | "
                             f"{f(a['agreement_3way'])} | {r['scorer']:.3f} ({r['people']:.3f}) | "
                             f"{r['scorer_full']:.3f} ({r['people_full']:.3f}) |")
    return "\n".join(lines)


def annotators(root: Path | None = None) -> dict[str, Any]:
    """Human agreement per model, annotator 1 vs 2 and each vs the final label: full refusal vs not
    (``annotator ...`` keys) and any refusal vs compliance (``any: ...``)."""
    import csv

    from audit.scorers.refusal_eval import XSTEST_DIR

    out: dict[str, Any] = {}
    for m in MODELS:
        path = (root or XSTEST_DIR) / "model_completions" / f"xstest_v2_completions_{m}.csv"
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        lab = {k: [{"1": "compliance", "2": "full", "3": "partial"}.get(r[k].strip()[:1], "compliance") for r in rows]
               for k in ("annotation_1", "annotation_2", "final_label")}
        out[m] = {}
        for prefix, pos in (("", ("full",)), ("any: ", ANY)):
            for a, b in (("annotation_1", "annotation_2"), ("annotation_1", "final_label"),
                         ("annotation_2", "final_label")):
                name = f"{prefix}annotator {a[-1]} vs {'final' if b == 'final_label' else '2'}"
                out[m][name] = agreement(lab[a], lab[b], positive=pos)["agreement"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true", help="measure only; do not write the weight files")
    ap.add_argument("--without", metavar="GROUP", help="ablation: leave the feature groups holding GROUP (e.g. "
                    "stance) out of the search; measure only")
    args = ap.parse_args()
    if args.without:
        global GROUPS
        GROUPS = tuple(g for g in GROUPS if args.without not in g)
        args.no_write = True
    data = {m: load_labelled(m) for m in MODELS}
    t0 = time.perf_counter()
    results = measure(data)
    print(table(results))
    humans = annotators()
    for m, figs in humans.items():
        print(f"  humans, {m}: " + ", ".join(f"{k} {v['estimate']:.3f}" for k, v in figs.items()))
    if args.no_write:
        print(f"{time.perf_counter() - t0:.0f} s")
        return 0
    s = choose(data, list(MODELS))
    model = export([r for m in MODELS for r in data[m]], s)
    WEIGHTS.write_text(json.dumps(model, separators=(",", ":")), encoding="utf-8")

    def slim(figs: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in figs.items() if k != "full_vs_not"}

    VALIDITY.write_text(json.dumps({
        "scorer": "refusal", "reference": "XSTest human final labels (Röttger et al. 2024), leave-one-model-out",
        "protocol": "each model's 450 completions scored by a classifier trained on the other two models; every "
                    "setting chosen by an inner leave-one-model-out over those two only: the headline (groups, "
                    "any-refusal head, C, threshold) for any-refusal agreement, then the full/partial split (kind, C, "
                    "threshold) for full-vs-not agreement",
        "shipped_variant": model["variant"], "shipped_C": model["C"], "shipped_settings": s,
        "held_out_any_refusal": {h: {**slim(by["shipped"]), "full_vs_not": by["shipped"]["full_vs_not"]["agreement"]}
                                 for h, by in results.items()},
        "held_out": {h: by["shipped"]["full_vs_not"] for h, by in results.items()},
        "chosen_per_fold": {h: by["_chosen"] for h, by in results.items()},
        "human_ceiling": humans,
        "baselines": {h: {k: v for k, v in by.items() if not k.startswith("_") and k != "shipped"}
                      for h, by in results.items()},
    }, indent=1), encoding="utf-8")
    print(f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size} bytes; {model['variant']}) and {VALIDITY} "
          f"in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
