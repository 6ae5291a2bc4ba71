"""Filter policies: which checks run on the prompt and on the completion, and what happens when
one fails.

A policy is plain data (pydantic), written in YAML or built in Python::

    name: strict
    refusal_message: "Sorry, I can't help with that."
    fail_mode: closed          # a scorer error or timeout blocks; "open" lets the text through
    scorer_timeout_s: 5
    input_checks:
      - {name: toxic-prompt, scorer: toxicity, threshold: 0.9, action: block}
    output_checks:
      - {name: toxic-output, scorer: toxicity, threshold: 0.5, action: regenerate, max_retries: 2}
      - {name: slurs, terms: [badword], action: redact}

A check flags a text when its score is ``>= threshold`` (``direction: above``, the default) or
``< threshold`` (``direction: below``, e.g. "must be a refusal"). Actions: ``block`` returns the
refusal message; ``regenerate`` retries with new seeds up to ``max_retries`` times, then blocks;
``redact`` masks the flagged words (or, failing that, the flagged sentences) and keeps the rest.
Input checks may only ``block`` or ``redact``.

``load_policy(None)`` returns the built-in default (``audit/guard/default_policy.yaml``);
``load_policy("strict")`` looks for ``probes/policies/strict.yaml``; any other value is a path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from audit.core.errors import UsageError
from audit.guard.normalize import NormalizeOptions
from audit.scorers.base import Scorer

DEFAULT_POLICY_PATH = Path(__file__).with_name("default_policy.yaml")
EXAMPLE_POLICY_DIR = Path(__file__).resolve().parents[2] / "probes" / "policies"

StrictNumber = StrictFloat | StrictInt  # a YAML bool or string is not a threshold
Action = Literal["block", "regenerate", "redact"]
FailMode = Literal["closed", "open"]


class Check(BaseModel):
    """One check: a scorer (by registry name, or a ``Scorer`` object in Python) or a term list."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False)

    name: str = ""
    scorer: str | Scorer | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    key: str | None = None
    terms: list[str] = Field(default_factory=list)
    threshold: StrictNumber = 0.5
    direction: Literal["above", "below"] = "above"
    action: Action = "block"
    max_retries: int | None = Field(default=None, ge=0, le=10)
    fail_mode: FailMode | None = None
    windows: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> Check:
        if (self.scorer is None) == (not self.terms):
            raise ValueError("a check needs exactly one of 'scorer' or 'terms'")
        if not self.name:
            self.name = self.scorer_name if self.scorer is not None else "terms"
        return self

    @property
    def scorer_name(self) -> str:
        if self.scorer is None:
            return "terms"
        if isinstance(self.scorer, Scorer):
            return self.scorer.name or type(self.scorer).__name__
        return self.scorer

    @property
    def score_key(self) -> str:
        if self.key:
            return self.key
        if self.scorer is None:
            return "terms"
        if isinstance(self.scorer, Scorer) and self.scorer.outputs:
            return self.scorer.outputs[0].key
        return self.scorer_name.partition(":")[0]

    def flags(self, score: float) -> bool:
        return score >= self.threshold if self.direction == "above" else score < self.threshold


class WindowOptions(BaseModel):
    """Sliding windows for long texts: every sentence, and every ``size_words`` words moved by
    ``stride_words``, are scored besides the whole text; the check keeps the worst score."""

    model_config = ConfigDict(extra="forbid")

    size_words: int = Field(default=24, ge=1)
    stride_words: int = Field(default=12, ge=1)
    sentences: bool = True


class Policy(BaseModel):
    """A whole filter policy; see the module docstring."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False)

    name: str = "custom"
    description: str = ""
    refusal_message: str = "Sorry, I can't help with that."
    fail_mode: FailMode = "closed"
    scorer_timeout_s: StrictNumber = Field(default=5.0, gt=0, le=600)
    max_retries: int = Field(default=2, ge=0, le=10)
    mask: str = "****"
    normalize: NormalizeOptions = Field(default_factory=NormalizeOptions)
    windows: WindowOptions = Field(default_factory=WindowOptions)
    neutralize_terms: list[str] = Field(default_factory=list)
    input_checks: list[Check] = Field(default_factory=list)
    output_checks: list[Check] = Field(default_factory=list)
    stream_check_every: int = Field(default=4, ge=1)
    log_path: str | None = None
    log_text: bool = False

    @field_validator("input_checks")
    @classmethod
    def _input_actions(cls, checks: list[Check]) -> list[Check]:
        for c in checks:
            if c.action == "regenerate":
                raise ValueError(f"input check '{c.name}': 'regenerate' applies to outputs only")
        return checks

    def retries_for(self, check: Check) -> int:
        return self.max_retries if check.max_retries is None else check.max_retries

    def fail_mode_for(self, check: Check) -> FailMode:
        return check.fail_mode or self.fail_mode


def _resolve_path(spec: str | Path) -> Path:
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if isinstance(spec, str) and "/" not in spec and not spec.endswith((".yaml", ".yml")):
        if spec == "default":
            return DEFAULT_POLICY_PATH
        for candidate in (EXAMPLE_POLICY_DIR / f"{spec}.yaml", EXAMPLE_POLICY_DIR / f"filter-{spec}.yaml"):
            if candidate.is_file():
                return candidate
    raise UsageError(f"policy not found: {spec} (give a .yaml path, 'default', or a name in probes/policies/)")


def load_policy(spec: Policy | dict[str, Any] | str | Path | None = None) -> Policy:
    """A ``Policy`` from an object, a dict, a built-in name or a YAML path (``None``: default)."""
    if isinstance(spec, Policy):
        return spec
    source = "policy"
    if spec is None:
        spec = DEFAULT_POLICY_PATH
    root = None
    if isinstance(spec, str | Path):
        from audit.core.policyfile import read_policy_yaml

        path = _resolve_path(spec)
        source = str(path)
        data, root = read_policy_yaml(path)
        if not isinstance(data, dict):
            raise UsageError(f"{source}: a policy must be a YAML mapping")
        spec = data
    from audit.core.policyfile import check_finite, validation_error

    if isinstance(spec, dict):
        check_finite(source, root, spec)
    try:
        return Policy.model_validate(spec)
    except ValidationError as exc:
        if root is not None:
            raise validation_error(source, root, exc) from None
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "policy"
        raise UsageError(f"{source}: {where}: {first['msg']}") from None
