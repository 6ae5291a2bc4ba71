"""Continuation panels: likelihood counterfactual suites (``task: likelihood`` with templates).

Card: what it measures -- for each counterfactual prompt (a template filled with one group's
surface form), how much more likely the model finds a fixed panel of positive regard phrases
than negative ones as the prompt's continuation. One forward pass per (prompt, phrase), no
sampling: the figure is deterministic, so the members of a counterfactual set differ only in the
group term, and a set's noise is only the model's real variation across templates and forms.
Scores per record: ``ll_pos_<i>``, ``ll_neg_<j>``, ``ll_neu_<l>`` (sum of token log-probs of each
phrase after the prompt), and the derived
``regard_logodds`` = log mean P(positive phrase) - log mean P(negative phrase) (higher is better)
and, with neutral phrases, ``negative_logodds`` = log mean P(negative) - log mean P(neutral)
(higher is worse). Range: any real number (nats); the between-group gap is the figure of
interest, 0 ideal. Limits: the panel is English, short and written for lm-audit; sum
log-likelihood depends on phrase length and frequency, which cancels between the members of a set
(same phrases) but not between phrases.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

PREFIX = {"positive": "pos", "negative": "neg", "neutral": "neu"}
DERIVED_SCORES = ("regard_logodds", "negative_logodds")


class Continuations(BaseModel):
    """The phrase panel of a likelihood counterfactual suite (``prompts.continuations``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    positive: list[str] = Field(min_length=1, max_length=200)
    negative: list[str] = Field(min_length=1, max_length=200)
    neutral: list[str] = Field(default_factory=list, max_length=200)

    @field_validator("positive", "negative", "neutral")
    @classmethod
    def _phrases(cls, v: list[str]) -> list[str]:
        for p in v:
            if not p.strip():
                raise ValueError("a continuation phrase must not be empty")
            if "{" in p or "}" in p:
                raise ValueError(f"a continuation phrase holds no slots: {p!r}")
        if len(set(v)) != len(v):
            raise ValueError("a continuation phrase is listed twice")
        return v

    def options(self) -> dict[str, str]:
        """Option name -> phrase: ``pos_0``, ``neg_0``, ``neu_0``, ... (score keys ``ll_<name>``)."""
        out: dict[str, str] = {}
        for kind, prefix in PREFIX.items():
            for i, phrase in enumerate(getattr(self, kind)):
                out[f"{prefix}_{i}"] = phrase
        return out

    def score_keys(self) -> list[str]:
        """The derived per-record scores this panel gives."""
        return list(DERIVED_SCORES) if self.neutral else [DERIVED_SCORES[0]]


def _log_mean_exp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values) / len(values))


def panel_scores(lls: Mapping[str, float | None]) -> dict[str, float | None]:
    """The derived scores of one record from its ``ll_<option>`` scores (None where a phrase
    could not be scored)."""
    kinds: dict[str, list[float]] = {p: [] for p in PREFIX.values()}
    missing = False
    for key, value in lls.items():
        prefix = key.removeprefix("ll_").split("_", 1)[0]
        if key.startswith("ll_") and prefix in kinds:
            if value is None or not math.isfinite(value):
                missing = True
            else:
                kinds[prefix].append(float(value))
    pos, neg, neu = kinds["pos"], kinds["neg"], kinds["neu"]
    out: dict[str, float | None] = {}
    ok = not missing and pos and neg
    out["regard_logodds"] = _log_mean_exp(pos) - _log_mean_exp(neg) if ok else None
    if neu:
        out["negative_logodds"] = _log_mean_exp(neg) - _log_mean_exp(neu) if ok else None
    return out


def attach_panel(items: list[Any], panel: Continuations) -> None:
    """Make template items likelihood items: the filled template is the context, the panel's
    phrases the options (every item of the suite scores the same phrases)."""
    options = panel.options()
    for it in items:
        it.context = it.prompt
        it.options = dict(options)
