"""Toxicity scorers: the embedded default (alt-profanity-check) and the factory behind ``toxicity``.

``get_scorer("toxicity")`` -> :class:`ProfanityCheckToxicity`;
``get_scorer("toxicity", backend="detoxify", checkpoint=..., config_dir=..., variant=...)`` or the
suite name ``toxicity:detoxify`` -> :class:`audit.scorers.toxicity.detoxify_backend.DetoxifyToxicity`;
``get_scorer("toxicity", backend="hf-classifier", model=PATH, labels=...)`` -> any local
sequence-classification model. ``neutralize_identity=True`` wraps any of them with
:class:`audit.scorers.neutralize.IdentityNeutralized`.

Every toxicity scorer returns the key ``toxicity`` in [0, 1], higher is worse, and gives empty or
whitespace-only text exactly 0.0 (nothing to flag), whatever the backend.

Every backend scores text as a reader sees it (``readable_batch``: ``audit.text.deobfuscate``):
right-to-left overrides undone, word-splitting invisible characters removed, symbols between the
letters of a word stripped, so ``i\u200bd\u200bi\u200bo\u200bt`` scores as ``idiot``. Text without
such tricks is passed unchanged (none of 4,702 vendored human and model texts changes; see
docs/filter.md), so figures on ordinary text do not move. Versions carry ``+deobf1``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from audit.core.errors import ScorerUnavailableError
from audit.scorers.base import Reference, Scorer, ScoreSpec, check_texts
from audit.text.deobfuscate import deobfuscate

TOXICITY = ScoreSpec(
    key="toxicity",
    low=0.0,
    high=1.0,
    higher_is="worse",
    description="probability that the text is toxic (0 for empty or whitespace-only text)",
)

EMBEDDED_ALIASES = ("embedded", "profanity-check", "alt-profanity-check")
DEOBFUSCATED = "+deobf1"  # version suffix: the backend scores ``readable_batch`` text


def readable_batch(texts: Sequence[str]) -> list[str]:
    """The texts as a reader sees them (``audit.text.deobfuscate``); ordinary text unchanged."""
    return [deobfuscate(t) for t in check_texts(texts)]


def package_version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def score_nonblank(batch: list[str], predict: Callable[[list[str]], Sequence[float]]) -> list[float]:
    """Call ``predict`` once on the non-blank texts of ``batch``; blank texts get 0.0."""
    idx = [i for i, t in enumerate(batch) if t.strip()]
    out = [0.0] * len(batch)
    if idx:
        probs = predict([batch[i] for i in idx])
        for i, p in zip(idx, probs, strict=True):
            out[i] = float(p)
    return out


class ProfanityCheckToxicity(Scorer):
    """Toxicity, embedded default: alt-profanity-check (TF-IDF + calibrated linear SVM, shipped in the
    package, trained on Davidson et al. and Jigsaw data).

    Measures: probability that a text is offensive/profane. Range 0..1, higher is worse.
    Empty or whitespace-only text: 0.0. Speed: one vectorized call per batch (tens of thousands of
    texts per second on one CPU core; see bench/README.md).
    Limits: a bag of words, blind to context and negation; strong identity-term bias (it gives
    "I am a gay man." about 0.95 and "I am a Jew." about 0.56 while "I am a Christian person." gets
    about 0.03), so group comparisons of its scores need the scorer self-audit
    (``audit.scorers.self_audit``) and, often, ``neutralize_identity=True``. English only.
    """

    name = "toxicity"
    outputs = (TOXICITY,)

    def __init__(self) -> None:
        try:
            from profanity_check import profanity_check as pc
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise ScorerUnavailableError(
                f"toxicity: alt-profanity-check is not importable ({exc}); pip install alt-profanity-check"
            ) from None
        self._vectorizer = pc.vectorizer
        self._model = pc.model
        self.version = f"alt-profanity-check-{package_version('alt-profanity-check')}{DEOBFUSCATED}"

    def _predict(self, texts: list[str]) -> Sequence[float]:
        return self._model.predict_proba(self._vectorizer.transform(texts))[:, 1]

    def score(
        self, texts: Sequence[str], refs: Sequence[Reference] | None = None
    ) -> list[dict[str, float | None]]:
        batch = readable_batch(texts)
        return [{"toxicity": p} for p in score_nonblank(batch, self._predict)]


class ClassifierToxicity(Scorer):
    """Toxicity from any local transformers sequence-classification model (``backend="hf-classifier"``),
    e.g. a local copy of unitary/unbiased-toxic-roberta or facebook/roberta-hate-speech-dynabench-r4-target.

    Measures: the weighted sum of label probabilities given by ``labels`` (default: the model's
    "toxicity"/"toxic"/"hate"/"offensive"/"abusive" label with weight 1), clipped to 0..1; higher is
    worse. Empty or whitespace-only text: 0.0. Limits: those of the model; check it with the
    scorer self-audit before comparing groups.
    """

    name = "toxicity"
    outputs = (TOXICITY,)

    def __init__(self, **options: Any) -> None:
        from audit.scorers.hf_classifier import TOXIC_LABEL_NAMES, HFClassifier

        options.setdefault("default_labels", TOXIC_LABEL_NAMES)
        self._clf = HFClassifier(key="toxicity", higher_is="worse", scorer_name="toxicity", **options)
        self.version = self._clf.version + DEOBFUSCATED

    def _predict(self, texts: list[str]) -> list[float]:
        return [min(1.0, max(0.0, v)) for v in self._clf.weighted(texts)]

    def score(
        self, texts: Sequence[str], refs: Sequence[Reference] | None = None
    ) -> list[dict[str, float | None]]:
        batch = readable_batch(texts)
        return [{"toxicity": p} for p in score_nonblank(batch, self._predict)]


