"""The suite schema: pydantic models validated at load, and the expanded ``Item``.

A suite is a YAML file (built-in ones live in ``probes/suites/``; a user's can live anywhere).
It names its prompts (templates x lexicons, or one or more data files), the group attributes
carried into every record, generation parameters (optionally several named protocols), scorers,
metrics and default gates. See ``docs/suite-format.md`` for the full reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from audit.errors import UsageError
from audit.types import GenParams

PROBES_DIR = Path(__file__).resolve().parent.parent.parent / "probes"
BUILTIN_SUITES_DIR = PROBES_DIR / "suites"
BUILTIN_LEXICONS_DIR = PROBES_DIR / "lexicons"

SLOT_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
ID_RE = r"^[a-z0-9][a-z0-9_.-]*$"
ATTR_RE = r"^[a-z][a-z0-9_]*$"

# attributes the template expander sets on every item; templates and lexicons may not reuse them
RESERVED_ATTRIBUTES = ("axis", "group", "term", "pair_id", "form")

METRICS_NEEDING_SCORE = ("mean", "rate")
# likelihood metrics -> the options they compare (params may rename the pct_stereotype pair)
LIKELIHOOD_METRICS = {"pct_stereotype": ("stereotype", "anti_stereotype"),
                      "stereoset": ("stereotype", "anti_stereotype", "unrelated")}
METRIC_PARTS = {"stereoset": ("ss", "lms", "icat"),
                "bbq": ("accuracy", "accuracy_ambig", "accuracy_disambig", "bias_ambig", "bias_disambig", "invalid_rate")}

GAP_RE = re.compile(r"^gap\(\s*([^,\s]+)\s*,\s*([^)\s]+)\s*\)$")
GROUP_FIG_RE = re.compile(r"^(?P<label>[^\[\]]+)\[(?P<attr>[^=\]]+)=(?P<value>[^\]]+)\]$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenerationSpec(_Strict):
    samples: int = Field(1, ge=1, le=1000)
    max_new_tokens: int = Field(20, ge=1, le=4096)
    temperature: float = Field(1.0, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)
    do_sample: bool = True
    chat: bool = False
    stop: list[str] = Field(default_factory=list)

    def params(self) -> GenParams:
        return GenParams(
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            do_sample=self.do_sample,
            stop=tuple(self.stop),
            chat=self.chat,
        )


class Template(_Strict):
    id: str = Field(pattern=ID_RE)
    text: str = Field(min_length=1)
    attributes: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _no_reserved(cls, v: dict[str, Any]) -> dict[str, Any]:
        bad = sorted(set(v) & set(RESERVED_ATTRIBUTES))
        if bad:
            raise ValueError(f"attribute '{bad[0]}' is reserved (set by the expander: {', '.join(RESERVED_ATTRIBUTES)})")
        return v


class Lexicon(_Strict):
    """Groups of one attribute (axis), each with aligned surface forms.

    Forms are aligned by position across groups (``the woman``/``the man``, ``Mary``/``John``) so
    that the prompts built from form ``i`` of every group form one counterfactual set.
    ``form_kinds`` optionally labels each position (``noun``, ``name``); it becomes the item
    attribute ``form``.
    """

    attribute: str = Field(pattern=ATTR_RE)
    groups: dict[str, list[str]]
    form_kinds: list[str] = Field(default_factory=list)
    description: str | None = None
    source: str | None = None

    @field_validator("attribute")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v in RESERVED_ATTRIBUTES:
            raise ValueError(f"'{v}' is reserved (set by the expander: {', '.join(RESERVED_ATTRIBUTES)})")
        return v

    @field_validator("groups")
    @classmethod
    def _groups_ok(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        if not v:
            raise ValueError("the lexicon is empty: give at least two groups")
        if len(v) < 2:
            raise ValueError("a lexicon needs at least two groups to compare")
        lengths = {g: len(forms) for g, forms in v.items()}
        for g, forms in v.items():
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", g):
                raise ValueError(f"group name '{g}' must be letters, digits, '_', '.' or '-'")
            if not forms:
                raise ValueError(f"group '{g}' has no surface forms")
            if any(not isinstance(f, str) or not f.strip() for f in forms):
                raise ValueError(f"group '{g}' has an empty surface form")
            if len(set(forms)) != len(forms):
                raise ValueError(f"group '{g}' lists a surface form twice")
        if len(set(lengths.values())) != 1:
            raise ValueError(f"groups must have the same number of aligned forms, got {lengths}")
        return v

    @model_validator(mode="after")
    def _kinds_aligned(self) -> Lexicon:
        n_forms = len(next(iter(self.groups.values())))
        if self.form_kinds and len(self.form_kinds) != n_forms:
            raise ValueError(f"form_kinds has {len(self.form_kinds)} entries but each group has {n_forms} forms")
        return self

    @property
    def n_forms(self) -> int:
        return len(next(iter(self.groups.values())))


class DataFields(_Strict):
    id: str | None = None  # column holding a stable item id; default: the row number
    prompt: str | None = None  # column holding the prompt (generate task)
    context: str | None = None  # likelihood task: shared context before each option
    options: dict[str, str] = Field(default_factory=dict)  # likelihood task: option -> column
    attributes: list[str] = Field(default_factory=list)  # columns copied into record attributes
    correct: str | None = None  # column with correct reference answer(s) (str or list)
    incorrect: str | None = None  # column with incorrect reference answer(s)

    @field_validator("options")
    @classmethod
    def _option_names(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not re.match(ATTR_RE, name):
                raise ValueError(f"option name '{name}' must be lower_snake_case (it becomes the score key ll_{name})")
        return v


def _check_format(v: str | None) -> str | None:
    if v is not None:
        slots = SLOT_RE.findall(v)
        if slots != ["prompt"]:
            raise ValueError("format must contain the slot {prompt} exactly once and no other slot")
    return v


class DataSource(_Strict):
    """One data file of a suite that reads several (``prompts.data`` given as a list)."""

    name: str = Field(pattern=ID_RE)  # item ids become "<name>:<row id>"
    file: str = Field(min_length=1)  # path relative to the suite file
    fields: DataFields
    filter: dict[str, list[str | int]] = Field(default_factory=dict)
    attributes: dict[str, str | int | float | bool] = Field(default_factory=dict)  # constant per source
    format: str | None = None  # e.g. "Q: {prompt}\nA:"

    @field_validator("format")
    @classmethod
    def _format_ok(cls, v: str | None) -> str | None:
        return _check_format(v)


class PromptSource(_Strict):
    templates: list[Template] = Field(default_factory=list)
    lexicons: list[str | Lexicon] = Field(default_factory=list)
    data: str | list[DataSource] | None = None
    fields: DataFields | None = None
    filter: dict[str, list[str | int]] = Field(default_factory=dict)  # keep rows whose column is in list
    format: str | None = None

    @field_validator("format")
    @classmethod
    def _format_ok(cls, v: str | None) -> str | None:
        return _check_format(v)

    @model_validator(mode="after")
    def _one_source(self) -> PromptSource:
        if bool(self.templates) == bool(self.data):
            raise ValueError("give either 'templates' or 'data', not both and not neither")
        if isinstance(self.data, list):
            if self.fields is not None or self.filter or self.format is not None:
                raise ValueError("with a list of data sources, put 'fields', 'filter' and 'format' in each source")
        elif self.data and self.fields is None:
            raise ValueError("'data' needs 'fields' naming its columns")
        if self.templates and (self.fields is not None or self.filter or self.format is not None):
            raise ValueError("'fields', 'filter' and 'format' go with 'data', not with 'templates'")
        if self.lexicons and not self.templates:
            raise ValueError("'lexicons' go with 'templates'")
        return self

    def sources(self) -> list[DataSource]:
        """The data sources, the single-file form normalised to one unnamed source."""
        if isinstance(self.data, list):
            return list(self.data)
        if self.data:
            assert self.fields is not None
            return [DataSource.model_construct(name="", file=self.data, fields=self.fields, filter=self.filter,
                                               attributes={}, format=self.format)]
        return []


class MetricSpec(_Strict):
    metric: str  # a registered metric name, e.g. "mean", "expected_max_toxicity"
    score: str | None = None  # the per-record score key it reads
    by: list[str] = Field(default_factory=list)  # attributes to disaggregate by
    name: str | None = None  # display and gate name; default: the metric name
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.metric


class GateSpec(_Strict):
    metric: str  # a metric label, label.part, label[attr=value], or gap(score, attribute)
    op: Literal["<=", ">=", "<", ">"]
    threshold: float
    bound: Literal["estimate", "ci_low", "ci_high", "conservative"] = "conservative"


class Suite(_Strict):
    id: str = Field(pattern=ID_RE)
    title: str
    description: str
    version: str
    citation: str
    licence: str
    task: Literal["generate", "likelihood"] = "generate"
    prompts: PromptSource
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    protocols: dict[str, GenerationSpec] = Field(default_factory=dict)
    default_protocol: str | None = None
    group_attributes: list[str] = Field(default_factory=list)
    scorers: list[str] = Field(default_factory=list)
    metrics: list[MetricSpec] = Field(default_factory=list)
    gates: list[GateSpec] = Field(default_factory=list)

    @field_validator("version", mode="before")
    @classmethod
    def _version_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) else v

    @field_validator("protocols")
    @classmethod
    def _protocol_names(cls, v: dict[str, GenerationSpec]) -> dict[str, GenerationSpec]:
        for name in v:
            if not re.match(ID_RE, name):
                raise ValueError(f"protocol name '{name}' must be lower-case letters, digits, '_', '.' or '-'")
        return v

    def generation_for(self, protocol: str | None) -> GenerationSpec:
        name = protocol or self.default_protocol
        if name is None:
            return self.generation
        if name not in self.protocols:
            known = ", ".join(sorted(self.protocols)) or "none"
            raise UsageError(f"suite '{self.id}' has no protocol '{name}' (known: {known})")
        return self.protocols[name]


@dataclass
class Item:
    """One prompt (generate) or one option set (likelihood), before sampling."""

    item_id: str
    prompt: str
    template_id: str | None = None
    seed_key: str = ""  # counterfactual prompts share it, so they share their sampling seed
    attributes: dict[str, Any] = field(default_factory=dict)
    context: str = ""
    options: dict[str, str] = field(default_factory=dict)
    correct: list[str] = field(default_factory=list)
    incorrect: list[str] = field(default_factory=list)


@dataclass
class LoadedSuite:
    suite: Suite
    path: Path
    items: list[Item]
    data_hash: str

    @property
    def id(self) -> str:
        return self.suite.id
