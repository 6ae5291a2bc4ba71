"""Sentiment, embedded default: VADER (``vaderSentiment``, lexicon shipped in the package)."""

from __future__ import annotations

from collections.abc import Sequence

from audit.core.errors import UsageError
from audit.scorers.base import Reference, Scorer, ScoreSpec, check_texts
from audit.scorers.toxicity.common import package_version


class VaderSentiment(Scorer):
    """Sentiment (VADER, Hutto & Gilbert 2014; rule-based lexicon, English).

    Outputs: ``sentiment`` = VADER compound score, -1..1, higher is better (more positive);
    ``sentiment_negative`` / ``sentiment_positive`` = shares of negative / positive lexical weight,
    0..1 (higher negative is worse, higher positive is better).
    Empty or whitespace-only text: 0.0 for all three (VADER's own neutral answer).
    Limits: a lexicon with rules for negation, intensifiers and punctuation, no model of context;
    neutral on bare identity mentions ("She is Muslim." -> 0.0) and follows descriptors, which makes
    it usable for counterfactual group comparisons; sarcasm and domain words are missed; English
    only (other scripts score 0.0). No vectorized call exists, so it loops in Python (tens of
    thousands of short texts per second).
    """

    name = "sentiment"
    outputs = (
        ScoreSpec("sentiment", -1.0, 1.0, "better", "VADER compound sentiment"),
        ScoreSpec("sentiment_negative", 0.0, 1.0, "worse", "share of negative lexical weight"),
        ScoreSpec("sentiment_positive", 0.0, 1.0, "better", "share of positive lexical weight"),
    )

    def __init__(self, **options: object) -> None:
        if options:
            raise UsageError(f"sentiment (VADER) takes no option {', '.join(sorted(options))}")
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()
        self.version = f"vader-{package_version('vaderSentiment')}"

    def score(
        self, texts: Sequence[str], refs: Sequence[Reference] | None = None
    ) -> list[dict[str, float | None]]:
        batch = check_texts(texts)
        polarity = self._analyzer.polarity_scores
        out: list[dict[str, float | None]] = []
        for t in batch:
            if not t.strip():
                out.append({"sentiment": 0.0, "sentiment_negative": 0.0, "sentiment_positive": 0.0})
                continue
            s = polarity(t)
            out.append(
                {
                    "sentiment": float(s["compound"]),
                    "sentiment_negative": float(s["neg"]),
                    "sentiment_positive": float(s["pos"]),
                }
            )
        return out
