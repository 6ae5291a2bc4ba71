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
Input checks may only ``block``, ``redact`` or one of the two explicit ones below.

A threshold must lie strictly inside the range its scorer declares for the key (``ScoreSpec``;
0..1 for term lists), checked once the scorers are built (``check_thresholds``): outside it, or
at an end of it, a check would pass or block every text without saying so. A policy that means
that says it with the action: ``block_all`` (threshold at the end where every text is flagged:
the lowest value with ``direction: above``, the highest with ``below``) or ``allow_all`` (the
other end: nothing is flagged). Anything else is a one-line usage error naming the file and line.

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
    PrivateAttr,
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
Action = Literal["block", "regenerate", "redact", "block_all", "allow_all"]
EXPLICIT_ACTIONS = ("block_all", "allow_all")  # the whole range: every text flagged / none
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
        if self.action in EXPLICIT_ACTIONS:
            return self.action == "block_all"
        return score >= self.threshold if self.direction == "above" else score < self.threshold

    def end_action(self, low: float, high: float) -> str | None:
        """What this threshold amounts to on the range ``low..high``: None strictly inside it,
        ``block_all`` at the end where every text is flagged, ``allow_all`` at the other end (no
        text, or only texts at the very end), ``outside`` beyond either end."""
        t = float(self.threshold)
        if low < t < high:
            return None
        if t == low:
            return "block_all" if self.direction == "above" else "allow_all"
        if t == high:
            return "allow_all" if self.direction == "above" else "block_all"
        return "outside"


class WindowOptions(BaseModel):
    """Sliding windows for long texts: every sentence, and every ``size_words`` words moved by
    ``stride_words``, are scored besides the whole text; the check keeps the worst score."""

    model_config = ConfigDict(extra="forbid")

    size_words: int = Field(default=24, ge=1)
    stride_words: int = Field(default=12, ge=1)
    sentences: bool = True


class Origin:
    """The YAML file (path and root node) a policy was read from, for located errors. Not part of
    the policy's value: it compares equal to anything, so the same policy read twice, or built in
    Python, is still equal."""

    def __init__(self, source: str, root: Any) -> None:
        self.source, self.root = source, root

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = None  # type: ignore[assignment]


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
    _origin: Origin | None = PrivateAttr(default=None)  # set when read from a YAML file

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

    def error(self, loc: tuple[Any, ...], msg: str) -> UsageError:
        """A one-line error at ``loc`` (``("output_checks", 0, "threshold")``): ``file:line: field:
        message`` for a policy read from YAML, else ``policy 'name': field: message``."""
        if self._origin is not None:
            from audit.core.policyfile import located

            return located(self._origin.source, self._origin.root, loc, msg)
        return UsageError(f"policy '{self.name}': {'.'.join(str(p) for p in loc)}: {msg}")


def check_thresholds(policy: Policy, ranges: dict[int, tuple[float, float]]) -> None:
    """Refuse (``UsageError``) a check whose threshold is not strictly inside its key's declared
    range (``ranges``: ``id(check)`` -> (low, high); term lists score 0..1), unless the action says
    what the end means (``block_all`` / ``allow_all``, only at that end); see the module docstring."""
    for stage in ("input_checks", "output_checks"):
        for i, c in enumerate(getattr(policy, stage)):
            span = (0.0, 1.0) if c.terms else ranges.get(id(c))
            if span is None:
                raise policy.error(
                    (stage, i, "scorer"),
                    f"scorer '{c.scorer_name}' declares no range for '{c.score_key}' (a ScoreSpec in its "
                    "outputs), so the threshold cannot be checked",
                )
            low, high = span
            end = c.end_action(low, high)
            t = f"{float(c.threshold):g}"
            where = f"{c.score_key}'s range {low:g}..{high:g}"
            if end == "outside":
                raise policy.error(
                    (stage, i, "threshold"), f"{t} is outside {where}; a threshold must lie strictly inside it"
                )
            if c.action in EXPLICIT_ACTIONS and end != c.action:
                at = (low if c.direction == "above" else high) if c.action == "block_all" else (
                    high if c.direction == "above" else low)
                raise policy.error(
                    (stage, i, "action"),
                    f"'{c.action}' is for a threshold at the end of {where} where it holds: set threshold: "
                    f"{at:g} (direction {c.direction}), or use block, regenerate or redact",
                )
            if c.action not in EXPLICIT_ACTIONS and end is not None:
                what = "flags every text" if end == "block_all" else "flags almost no text"
                raise policy.error(
                    (stage, i, "threshold"),
                    f"{t} is an end of {where}: this check {what}; say so with action: {end}, "
                    "or pick a threshold strictly inside the range",
                )


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
        policy = Policy.model_validate(spec)
    except ValidationError as exc:
        if root is not None:
            raise validation_error(source, root, exc) from None
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "policy"
        raise UsageError(f"{source}: {where}: {first['msg']}") from None
    if root is not None:
        policy._origin = Origin(source, root)  # so threshold errors found later name the file and line
    return policy
