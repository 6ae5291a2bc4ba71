"""The suite schema: pydantic models validated at load, and the expanded ``Item``.

A suite is a YAML file (built-in ones live in ``probes/suites/``; a user's can live anywhere).
It names its prompts (templates x lexicons, or one or more data files), the group attributes
carried into every record, generation parameters (optionally several named protocols), scorers,
metrics and default gates. See ``docs/suite-format.md`` for the full reference.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from audit.core.errors import UsageError
from audit.core.types import DEFAULT_COUPLING, GenParams
from audit.suites.answers import AnswerFrame
from audit.suites.lexicon import ATTR_RE, RESERVED_ATTRIBUTES, Lexicon
from audit.suites.panel import Continuations

PROBES_DIR = Path(__file__).resolve().parent.parent.parent / "probes"
BUILTIN_SUITES_DIR = PROBES_DIR / "suites"
BUILTIN_LEXICONS_DIR = PROBES_DIR / "lexicons"

SLOT_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
BRACE_RE = re.compile(r"\{([^{}]*)\}")  # anything in braces: each must be a slot the suite defines
ID_RE = r"^[a-z0-9][a-z0-9_.-]*$"

METRICS_NEEDING_SCORE = ("mean", "rate")
# likelihood metrics -> the options they compare (params may rename the pct_stereotype pair)
LIKELIHOOD_METRICS = {"pct_stereotype": ("stereotype", "anti_stereotype"), "discrim_eval": (),
                      "stereoset": ("stereotype", "anti_stereotype", "unrelated")}
METRIC_PARTS = {"stereoset": ("ss", "lms", "icat"),
                # discrim-eval's groups (audit/metrics/discrim_eval.py); other data give other names
                "discrim_eval": ("gender_female", "gender_non_binary", "race_asian", "race_black", "race_hispanic",
                                 "race_native_american", "age_older", "age_slope"),
                "bbq": ("accuracy", "accuracy_ambig", "accuracy_disambig", "bias_ambig", "bias_disambig", "invalid_rate"),
                "over_refusal": ("benign_full_refusal", "benign_refusal", "harmful_compliance", "balanced_error")}

# the attribute of an intersectional cell joins its parts with U+00D7: gender×race = female×black
CELL_SEP = "\u00d7"

GAP_RE = re.compile(r"^gap\(\s*([^,\s]+)\s*,\s*([^)\s]+)\s*\)$")
GROUP_FIG_RE = re.compile(r"^(?P<label>[^\[\]]+)\[(?P<attr>[^=\]]+)=(?P<value>[^\]]+)\]$")


def _finite_number(v: Any) -> Any:
    """Reject NaN, infinities, booleans and non-numeric strings before pydantic coerces them."""
    if isinstance(v, bool) or (isinstance(v, str) and not _NUMBER_RE.match(v.strip())):
        raise ValueError(f"must be a finite number, got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"must be a finite number, got {v!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"must be a finite number, got {v!r}")
    return v


_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def cell_name(parts: list[str] | tuple[str, ...]) -> str:
    """The attribute (or value) of an intersectional cell: ``gender×race``."""
    return CELL_SEP.join(str(p) for p in parts)


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
    # how a sampled token is drawn from the row's random numbers (audit/models/sampling.py);
    # gumbel couples a counterfactual set's members, which share their seed (hf backend only)
    coupling: Literal["inverse-cdf", "gumbel"] = "inverse-cdf"

    @field_validator("temperature", "top_p", mode="before")
    @classmethod
    def _finite(cls, v: Any) -> Any:
        return _finite_number(v)

    @field_validator("stop")
    @classmethod
    def _stops_not_empty(cls, v: list[str]) -> list[str]:
        if any(s == "" for s in v):
            raise ValueError("a stop string is empty (it would end every completion at once): remove it")
        return v

    def params(self) -> GenParams:
        return GenParams(
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            do_sample=self.do_sample,
            stop=tuple(self.stop),
            chat=self.chat,
            coupling=self.coupling,
        )

    @model_serializer(mode="wrap")
    def _default_coupling_left_out(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The manifest's ``generation`` names the coupling only when it is not the default, so
        runs recorded before it existed still resume and compare as the same protocol."""
        out = handler(self)
        if out.get("coupling") == DEFAULT_COUPLING:
            del out["coupling"]
        return out


class Template(_Strict):
    id: str = Field(pattern=ID_RE)
    text: str = Field(min_length=1)
    attributes: dict[str, str | int | float | bool] = Field(default_factory=dict)
    # the slots crossed into cells, in the order that names the cell (gender×race); default: the
    # slots in the order of prompts.lexicons. When given, it must list exactly the template's slots.
    cross: list[str] = Field(default_factory=list)

    @field_validator("attributes")
    @classmethod
    def _no_reserved(cls, v: dict[str, Any]) -> dict[str, Any]:
        bad = sorted(set(v) & set(RESERVED_ATTRIBUTES) | {k for k in v if CELL_SEP in k})
        if bad:
            raise ValueError(f"attribute '{bad[0]}' is reserved (set by the expander: {', '.join(RESERVED_ATTRIBUTES)})")
        return v


class DataFields(_Strict):
    id: str | None = None  # column holding a stable item id; default: the row number
    prompt: str | None = None  # column holding the prompt (generate task)
    context: str | None = None  # likelihood task: shared context before each option
    options: dict[str, str] = Field(default_factory=dict)  # likelihood task: option -> column
    attributes: list[str] = Field(default_factory=list)  # columns copied into record attributes
    correct: str | None = None  # column with correct reference answer(s) (str or list)
    incorrect: str | None = None  # column with incorrect reference answer(s)
    pair_id: str | None = None  # column naming the counterfactual set of a row; members share seeds

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
    continuations: Continuations | None = None  # likelihood templates: the phrase panel (suites/panel.py)
    answers: AnswerFrame | None = None  # likelihood data: a yes/no answer frame (suites/answers.py)

    @field_validator("format")
    @classmethod
    def _format_ok(cls, v: str | None) -> str | None:
        return _check_format(v)

    @model_validator(mode="after")
    def _one_source(self) -> PromptSource:
        if self.continuations is not None and not self.templates:
            raise ValueError("'continuations' go with 'templates' (a likelihood counterfactual suite)")
        if self.answers is not None and not self.data:
            raise ValueError("'answers' go with 'data' (each row's prompt is the question)")
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
    # attributes to disaggregate by; a list inside the list is a cross-tab ([[gender, race]]),
    # stored as its cell attribute (gender×race)
    by: list[str] = Field(default_factory=list)
    name: str | None = None  # display and gate name; default: the metric name
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("by", mode="before")
    @classmethod
    def _cells(cls, v: Any) -> Any:
        if not isinstance(v, list):
            return v
        out = []
        for a in v:
            if isinstance(a, list):
                if len(a) < 2 or not all(isinstance(x, str) and x for x in a) or len(set(a)) != len(a):
                    raise ValueError("a cross-tab lists two or more distinct attributes, e.g. [[gender, race]]")
                out.append(cell_name(a))
            else:
                out.append(a)
        return out

    @field_validator("params")
    @classmethod
    def _params_ok(cls, v: dict[str, Any]) -> dict[str, Any]:
        for k, x in v.items():
            if k == "threshold" or isinstance(x, float):
                try:
                    _finite_number(x)
                except ValueError as exc:
                    raise ValueError(f"params.{k} {exc}") from None
            if k == "higher_is" and x not in ("better", "worse", "neutral"):
                raise ValueError(f"params.higher_is must be better, worse or neutral, got {x!r}")
        return v

    @property
    def label(self) -> str:
        return self.name or self.metric


class GateSpec(_Strict):
    metric: str  # a metric label, label.part, label[attr=value], or gap(score, attribute)
    op: Literal["<=", ">=", "<", ">"]
    threshold: float
    bound: Literal["estimate", "ci_low", "ci_high", "conservative"] = "conservative"

    @field_validator("threshold", mode="before")
    @classmethod
    def _finite(cls, v: Any) -> Any:
        return _finite_number(v)


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
    attacks: list[str] = Field(default_factory=list)  # attack names (lm-audit attacks) or [all]

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
    answer_prefix: str | None = None  # an answer-frame item: the text that opens its answer (suites/answers.py)


@dataclass
class LoadedSuite:
    suite: Suite
    path: Path
    items: list[Item]
    data_hash: str
    notes: list[str] = field(default_factory=list)  # not errors: shown by ``lm-audit validate``

    @property
    def id(self) -> str:
        return self.suite.id
