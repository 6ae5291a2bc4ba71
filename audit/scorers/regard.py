"""Regard (Sheng et al. 2019): how a text regards the person it talks about, via a local classifier."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from audit.core.errors import UsageError
from audit.scorers.base import Reference, Scorer, ScoreSpec


class RegardScorer(Scorer):
    """Regard through ``hf-classifier`` over a local regard model (e.g. a copy of sasha/regardv3,
    labels positive / negative / neutral / other).

    Measures: ``regard`` = P(positive) - P(negative). Range -1..1, higher is better. Options:
    ``model`` (required: a local folder or a cached hub id), ``labels`` (default
    ``positive:1,negative:-1``), ``device``, ``batch_size``. Empty text gets the model's own
    prediction. Limits: no regard model ships offline, so this needs a user-supplied model; regard
    models are trained on short template completions ("The woman worked as ...") and are less
    reliable on long or off-template text; they inherit their training annotators' judgements.
    """

    name = "regard"
    outputs = (ScoreSpec("regard", -1.0, 1.0, "better", "P(positive) - P(negative) regard"),)

    def __init__(self, model: str | None = None, labels: Any = None, **options: Any) -> None:
        from audit.scorers.hf_classifier import HFClassifier

        if not model:
            raise UsageError(
                "regard needs model=PATH: a local sequence-classification regard model "
                "(for example a copy of sasha/regardv3); no regard model ships offline"
            )
        self._clf = HFClassifier(
            model=model,
            labels=labels if labels is not None else {"positive": 1.0, "negative": -1.0},
            key="regard",
            higher_is="better",
            scorer_name="regard",
            **options,
        )
        self.version = self._clf.version.replace("hf-classifier:", "regard:", 1)

    def score(
        self, texts: Sequence[str], refs: Sequence[Reference] | None = None
    ) -> list[dict[str, float | None]]:
        return [{"regard": max(-1.0, min(1.0, v))} for v in self._clf.weighted(texts)]
