"""Answer frames: likelihood data suites whose every prompt is a yes/no decision.

Card: what it measures — how strongly the model answers "yes" to a question, read from one forward
pass and no sampling. Each prompt (a data row's ``prompt`` column, after ``format``) is the
question; ``prefix`` opens the answer, and the answer words (``yes_words``: ``[yes, Yes]``,
``no_words``: ``[no, No]``) are scored as its continuation, verbatim (no space added: put any separator at the
end of ``prefix``). Under a chat template (``generation.chat: true`` and a model that has one) the
question is the user turn and ``prefix`` begins the assistant turn; otherwise they are joined as
they are. All answers share the prompt, so the likelihood engine runs it once.
Scores per record: ``ll_yes_<i>``, ``ll_no_<j>`` (log-probability of each answer word) and the
derived ``logit_yes`` = log sum p(yes words) - log sum p(no words), the logit of p(yes)
normalized over yes and no (Tamkin et al. 2023; lm-evaluation-harness ``discrim_eval``). Range:
any real number; 0 is indifference. Limits: a reading of the model's answer distribution, not
its sampled answer; words outside the lists (a refusal, "maybe") are ignored by the
normalization, so check their mass separately if it matters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DERIVED_SCORE = "logit_yes"


class AnswerFrame(BaseModel):
    """``prompts.answers``: the answer frame of a yes/no likelihood data suite."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = Field("", max_length=2000)
    # not ``yes:``/``no:``: YAML 1.1 reads those keys as booleans
    yes_words: list[str] = Field(min_length=1, max_length=20)
    no_words: list[str] = Field(min_length=1, max_length=20)

    @field_validator("yes_words", "no_words")
    @classmethod
    def _words(cls, v: list[str]) -> list[str]:
        for w in v:
            if not w.strip():
                raise ValueError("an answer word must not be empty")
        if len(set(v)) != len(v):
            raise ValueError("an answer word is listed twice")
        return v

    @model_validator(mode="after")
    def _disjoint(self) -> AnswerFrame:
        both = sorted(set(self.yes_words) & set(self.no_words))
        if both:
            raise ValueError(f"'{both[0]}' is both a yes and a no answer")
        return self

    def options(self) -> dict[str, str]:
        """Option name -> answer word: ``yes_0``, ``yes_1``, ``no_0``, ... (scores ``ll_<name>``)."""
        yes = {f"yes_{i}": w for i, w in enumerate(self.yes_words)}
        return {**yes, **{f"no_{i}": w for i, w in enumerate(self.no_words)}}


def _log_sum_exp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def decision_scores(lls: Mapping[str, float | None]) -> dict[str, float | None]:
    """``logit_yes`` of one record from its ``ll_yes_<i>`` / ``ll_no_<j>`` scores (None when an
    answer word could not be scored)."""
    sides: dict[str, list[float]] = {"yes": [], "no": []}
    for key, value in lls.items():
        side = key.removeprefix("ll_").rsplit("_", 1)[0]
        if key.startswith("ll_") and side in sides:
            if value is None or not math.isfinite(value):
                return {DERIVED_SCORE: None}
            sides[side].append(float(value))
    if not sides["yes"] or not sides["no"]:
        return {DERIVED_SCORE: None}
    return {DERIVED_SCORE: _log_sum_exp(sides["yes"]) - _log_sum_exp(sides["no"])}


def attach_answers(items: list[Any], frame: AnswerFrame) -> None:
    """Make data items decision items: the prompt is the question (the context), the frame's
    answer words the options, and ``answer_prefix`` the text that opens the answer."""
    options = frame.options()
    for it in items:
        it.context = it.prompt
        it.options = dict(options)
        it.answer_prefix = frame.prefix
