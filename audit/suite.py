"""Suites: declarative YAML probe definitions, validated at load, expanded into prompt items.

A suite is a YAML file (built-in ones live in ``probes/suites/``; a user's can live anywhere).
It names its prompts (templates x lexicons, or one or more data files), the group attributes
carried into every record, generation parameters (optionally several named protocols), scorers,
metrics and default gates. See ``docs/suite-format.md`` for the full reference.

Validation happens here, at the boundary: every problem becomes one ``UsageError`` line that names
the file, the line and the field (``path:line: field: message``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audit.errors import UsageError
from audit.types import GenParams

PROBES_DIR = Path(__file__).resolve().parent.parent / "probes"
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
METRIC_PARTS = {"stereoset": ("ss", "lms", "icat")}

_GAP_RE = re.compile(r"^gap\(\s*([^,\s]+)\s*,\s*([^)\s]+)\s*\)$")
_GROUP_FIG_RE = re.compile(r"^(?P<label>[^\[\]]+)\[(?P<attr>[^=\]]+)=(?P<value>[^\]]+)\]$")


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


# --------------------------------------------------------------------------- loading


def builtin_suite_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUILTIN_SUITES_DIR.glob("*.yaml"))}


def resolve_suite_path(name_or_path: str) -> Path:
    builtin = builtin_suite_paths()
    if name_or_path in builtin:
        return builtin[name_or_path]
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists() or "/" in name_or_path:
        if not p.is_file():
            raise UsageError(f"suite file not found: {name_or_path}")
        return p
    known = ", ".join(builtin) or "none"
    raise UsageError(f"unknown suite '{name_or_path}' (built-in: {known}; or pass a path to a .yaml file)")


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or of its deepest existing parent)."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for n, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if k.value == str(part):
                    nxt = k if n == len(loc) - 1 else v
                    break
            if nxt is None:
                break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


class _Where:
    """Formats one-line errors located in one YAML file: ``path:line: field: message``."""

    def __init__(self, path: Path, root: yaml.Node | None) -> None:
        self.path = path
        self.root = root

    def error(self, loc: tuple[Any, ...], msg: str) -> UsageError:
        line = _line_of(self.root, loc)
        where = f"{self.path}:{line}" if line else str(self.path)
        field_name = ".".join(str(p) for p in loc) or "(top level)"
        return UsageError(f"{where}: {field_name}: {msg}")


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the tags pydantic adds inside unions and validators (``str``, ``function-after[...]``)."""
    return tuple(p for p in loc if not (isinstance(p, str) and (p in _UNION_TAGS or "[" in p)))


# pydantic adds the union member's type name to the location of errors inside unions
_UNION_TAGS = {"str", "Lexicon", "list[DataSource]", "DataSource", "int", "float", "bool", "list[str | int]"}


def _format_validation_error(path: Path, root: yaml.Node | None, err: ValidationError) -> str:
    errors = [(_clean_loc(e["loc"]), e) for e in err.errors()]
    # inside a union, report the branch the user evidently meant (the deepest location); errors of
    # the other branches sit at a prefix of it and are not counted as further problems
    loc, e = max(errors, key=lambda x: len(x[0]))
    others = {lc for lc, _ in errors if lc != loc and lc != loc[: len(lc)]}
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        msg = f"unknown key '{loc[-1]}'" if loc else "unknown key"
    elif e["type"] == "missing":
        msg = "required field is missing"
    msg = msg.removeprefix("Value error, ")
    if e["type"] not in ("extra_forbidden", "missing") and "input" in e and not isinstance(e["input"], dict | list):
        got = repr(e["input"])
        if len(got) <= 40 and got not in msg:
            msg = f"{msg} (got {got})"
    more = f" (+{len(others)} more)" if others else ""
    return str(_Where(path, root).error(loc, msg + more))


def _read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{where}: invalid YAML: {problem}") from None
    return data, root


def load_suite_file(name_or_path: str) -> tuple[Suite, Path]:
    suite, path, _ = _load_suite_file(name_or_path)
    return suite, path


def _load_suite_file(name_or_path: str) -> tuple[Suite, Path, yaml.Node | None]:
    path = resolve_suite_path(name_or_path)
    data, root = _read_yaml(path)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise UsageError(f"{path}:1: (top level): a suite must be a YAML mapping, got {got}")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as err:
        raise UsageError(_format_validation_error(path, root, err)) from None
    _check_structure(suite, _Where(path, root))
    return suite, path, root


def _check_structure(suite: Suite, where: _Where) -> None:
    """Cross-field rules, each reported at the line of the field at fault."""
    if suite.default_protocol and suite.default_protocol not in suite.protocols:
        known = ", ".join(suite.protocols) or "none"
        raise where.error(("default_protocol",), f"'{suite.default_protocol}' is not in 'protocols' (known: {known})")
    listed = isinstance(suite.prompts.data, list)
    for i, s in enumerate(suite.prompts.sources()):
        fields_loc = ("prompts", "data", i, "fields") if listed else ("prompts", "fields")
        if suite.task == "likelihood" and len(s.fields.options) < 2:
            raise where.error(
                (*fields_loc, "options"), "task 'likelihood' needs at least two options (option name -> column)"
            )
        if suite.task == "generate" and not s.fields.prompt:
            raise where.error(fields_loc, "task 'generate' needs 'prompt' (the column holding the prompt)")
    if listed:
        names = [src.name for src in suite.prompts.sources()]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise where.error(("prompts", "data", i, "name"), f"duplicate data source name '{name}'")
    if suite.task == "likelihood" and suite.prompts.templates:
        raise where.error(("task",), "task 'likelihood' needs data files with options, not templates")
    seen: set[str] = set()
    for i, t in enumerate(suite.prompts.templates):
        if t.id in seen:
            raise where.error(("prompts", "templates", i, "id"), f"duplicate template id '{t.id}'")
        seen.add(t.id)
    for i, name in enumerate(suite.scorers):
        if name in suite.scorers[:i]:
            raise where.error(("scorers", i), f"scorer '{name}' is listed twice")


def load_suite(name_or_path: str, known_scorers: set[str] | None = None) -> LoadedSuite:
    """Load, validate and expand a suite. ``known_scorers`` enables the scorer-name check."""
    suite, path, root = _load_suite_file(name_or_path)
    where = _Where(path, root)
    if known_scorers is not None:
        for i, name in enumerate(suite.scorers):
            if name.partition(":")[0] not in known_scorers:
                raise where.error(
                    ("scorers", i), f"unknown scorer '{name}' (known: {', '.join(sorted(known_scorers)) or 'none'})"
                )
    _check_metrics(suite, where)
    hasher = hashlib.sha256()
    hasher.update(path.read_bytes())
    if suite.prompts.templates:
        items = _expand_templates(suite, where, hasher)
    else:
        items = _load_data_items(suite, where, hasher)
    if not items:
        raise where.error(("prompts",), "the suite produces no prompts (empty data file, or a filter that keeps nothing?)")
    seen: set[str] = set()
    for it in items:
        if it.item_id in seen:
            raise where.error(("prompts",), f"duplicate item id '{it.item_id}'")
        seen.add(it.item_id)
    _check_attributes(suite, where, items)
    if known_scorers is not None:
        _check_score_keys(suite, where, items)
    return LoadedSuite(suite=suite, path=path, items=items, data_hash=hasher.hexdigest()[:16])


# --------------------------------------------------------------------------- semantic checks


def known_metric_names() -> set[str]:
    """The metric registry of the statistics layer (imported lazily: it pulls in numpy)."""
    from audit.metrics import METRICS

    return set(METRICS)


def _check_metrics(suite: Suite, where: _Where) -> None:
    known = known_metric_names()
    labels: dict[str, int] = {}
    for i, m in enumerate(suite.metrics):
        if m.metric not in known:
            raise where.error(("metrics", i, "metric"), f"unknown metric '{m.metric}' (known: {', '.join(sorted(known))})")
        if m.metric in METRICS_NEEDING_SCORE and not m.score:
            raise where.error(("metrics", i), f"metric '{m.metric}' needs a 'score' (e.g. score: sentiment)")
        if m.metric in LIKELIHOOD_METRICS and suite.task != "likelihood":
            raise where.error(("metrics", i, "metric"), f"metric '{m.metric}' needs task: likelihood")
        if m.label in labels:
            raise where.error(
                ("metrics", i), f"duplicate metric label '{m.label}' (give each metric a distinct 'name')"
            )
        labels[m.label] = i
    if suite.task == "likelihood":
        option_names = {o for s in suite.prompts.sources() for o in s.fields.options}
        for i, m in enumerate(suite.metrics):
            needed = LIKELIHOOD_METRICS.get(m.metric)
            if needed and m.metric == "pct_stereotype":
                needed = (str(m.params.get("more", needed[0])), str(m.params.get("less", needed[1])))
            missing = [o for o in needed or () if o not in option_names]
            if missing:
                raise where.error(
                    ("metrics", i, "metric"),
                    f"metric '{m.metric}' compares option '{missing[0]}', which no data source defines "
                    f"(options: {', '.join(sorted(option_names))})",
                )
    for i, g in enumerate(suite.gates):
        fig = g.metric.strip()
        gap = _GAP_RE.match(fig)
        if gap:
            attr = gap.group(2)
            if attr not in suite.group_attributes:
                raise where.error(
                    ("gates", i, "metric"),
                    f"gap attribute '{attr}' is not in group_attributes ({', '.join(suite.group_attributes) or 'none'})",
                )
            continue
        if fig.startswith("gap("):
            raise where.error(("gates", i, "metric"), f"cannot read '{fig}': write gap(<score>, <attribute>)")
        grp = _GROUP_FIG_RE.match(fig)
        label = grp["label"].strip() if grp else fig
        parts = {f"{lbl}.{p}" for lbl, i2 in labels.items() for p in METRIC_PARTS.get(suite.metrics[i2].metric, ())}
        bare_parts = {p for i2 in labels.values() for p in METRIC_PARTS.get(suite.metrics[i2].metric, ())}
        if label not in labels and label not in parts and label not in bare_parts:
            known_figs = sorted(labels) + sorted(parts)
            raise where.error(
                ("gates", i, "metric"),
                f"gate names '{label}', which is not a metric of this suite (metrics: {', '.join(known_figs) or 'none'})",
            )


def _check_attributes(suite: Suite, where: _Where, items: list[Item]) -> None:
    present: set[str] = set()
    for it in items:
        present.update(it.attributes)
    known = ", ".join(sorted(present)) or "none"
    for i, a in enumerate(suite.group_attributes):
        if a not in present:
            raise where.error(("group_attributes", i), f"attribute '{a}' is not on any item (attributes: {known})")
    for i, m in enumerate(suite.metrics):
        for j, a in enumerate(m.by):
            if a not in present:
                raise where.error(("metrics", i, "by", j), f"attribute '{a}' is not on any item (attributes: {known})")
    for i, g in enumerate(suite.gates):
        grp = _GROUP_FIG_RE.match(g.metric.strip())
        if grp:
            attr, value = grp["attr"].strip(), grp["value"].strip()
            values = {str(it.attributes[attr]) for it in items if attr in it.attributes}
            if not values:
                raise where.error(("gates", i, "metric"), f"attribute '{attr}' is not on any item (attributes: {known})")
            if value not in values:
                raise where.error(
                    ("gates", i, "metric"), f"no item has {attr}={value} (values: {', '.join(sorted(values))})"
                )


def _scorer_outputs(name: str) -> set[str] | None:
    """Score keys a scorer produces, when knowable without building it (None: unknown)."""
    if ":" in name:
        return None
    try:
        from audit.scorers.registry import _factory

        factory = _factory(name)
    except Exception:
        return None
    outputs = getattr(factory, "outputs", None)
    if outputs:
        return {o.key for o in outputs}
    return _DEFAULT_SCORE_KEYS.get(name)


# score keys of the built-in scorers whose factory is a function (docs/architecture.md, "Score keys")
_DEFAULT_SCORE_KEYS = {
    "toxicity": {"toxicity"},
    "refusal": {"refusal"},
    "factuality": {"factual", "factual_exact", "factual_contains", "factual_semantic"},
}


def _check_score_keys(suite: Suite, where: _Where, items: list[Item]) -> None:
    """Every metric's score key must come from a scorer of the suite (when that is knowable)."""
    if suite.task == "likelihood":
        keys = {f"ll_{o}" for it in items for o in it.options}
    else:
        keys = set()
        for name in suite.scorers:
            out = _scorer_outputs(name)
            if out is None:
                return
            keys |= out
    for i, m in enumerate(suite.metrics):
        if m.score and m.score not in keys:
            raise where.error(
                ("metrics", i, "score"),
                f"score '{m.score}' is not produced by this suite (scores: {', '.join(sorted(keys)) or 'none'})",
            )


# --------------------------------------------------------------------------- templates


def _load_lexicon(ref: str | Lexicon, where: _Where, i: int) -> Lexicon:
    if isinstance(ref, Lexicon):
        return ref
    base = where.path.parent
    candidates = [base / ref, base / f"{ref}.yaml", BUILTIN_LEXICONS_DIR / f"{ref}.yaml", BUILTIN_LEXICONS_DIR / ref]
    for c in candidates:
        if c.is_file():
            data, lroot = _read_yaml(c)
            if not isinstance(data, dict):
                got = "an empty file" if data is None else f"a {type(data).__name__}"
                raise UsageError(f"{c}:1: (top level): a lexicon must be a YAML mapping with 'attribute' and 'groups', got {got}")
            try:
                return Lexicon.model_validate(data)
            except ValidationError as err:
                raise UsageError(_format_validation_error(c, lroot, err)) from None
    raise where.error(("prompts", "lexicons", i), f"lexicon '{ref}' not found (next to the suite or built in)")


def builtin_lexicon_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUILTIN_LEXICONS_DIR.glob("*.yaml"))}


def load_lexicon_file(path: Path) -> Lexicon:
    """Validate one lexicon file (for ``lm-audit validate``)."""
    return _load_lexicon(str(path.resolve()), _Where(path, None), 0)


def _expand_templates(suite: Suite, where: _Where, hasher: Any) -> list[Item]:
    src = suite.prompts
    if not src.lexicons:
        raise where.error(("prompts", "templates"), "templates need at least one lexicon under 'prompts.lexicons'")
    lexicons = [_load_lexicon(ref, where, i) for i, ref in enumerate(src.lexicons)]
    seen_attr: dict[str, int] = {}
    seen_group: dict[str, str] = {}
    template_attrs = {a for t in src.templates for a in t.attributes}
    for i, lex in enumerate(lexicons):
        if lex.attribute in seen_attr:
            raise where.error(("prompts", "lexicons", i), f"two lexicons set the attribute '{lex.attribute}'")
        if lex.attribute in template_attrs:
            raise where.error(
                ("prompts", "lexicons", i), f"lexicon attribute '{lex.attribute}' clashes with a template attribute"
            )
        seen_attr[lex.attribute] = i
        for g in lex.groups:
            if g in seen_group:
                raise where.error(
                    ("prompts", "lexicons", i),
                    f"group '{g}' is in both '{seen_group[g]}' and '{lex.attribute}' (group names must be unique)",
                )
            seen_group[g] = lex.attribute
        hasher.update(json.dumps(lex.model_dump(), sort_keys=True).encode())
    items: list[Item] = []
    for ti, tpl in enumerate(src.templates):
        slots = SLOT_RE.findall(tpl.text)
        if set(slots) != {"group"}:
            unknown = sorted(set(slots) - {"group"})
            what = (
                f"unknown slot(s) {', '.join('{' + u + '}' for u in unknown)}; only {{group}} is filled"
                if unknown
                else "template has no {group} slot"
            )
            raise where.error(("prompts", "templates", ti, "text"), what)
        for lex in lexicons:
            for fi in range(lex.n_forms):
                seed_key = f"{tpl.id}:{lex.attribute}:{fi}"
                for group, forms in lex.groups.items():
                    term = forms[fi]
                    prompt = tpl.text.replace("{group}", term)
                    if tpl.text.startswith("{group}"):
                        prompt = prompt[0].upper() + prompt[1:]
                    attrs: dict[str, Any] = {
                        **tpl.attributes,
                        "axis": lex.attribute,
                        "group": group,
                        lex.attribute: group,
                        "term": term,
                        "pair_id": seed_key,
                    }
                    if lex.form_kinds:
                        attrs["form"] = lex.form_kinds[fi]
                    items.append(
                        Item(
                            item_id=f"{tpl.id}:{lex.attribute}:{group}:{fi}",
                            prompt=prompt,
                            template_id=tpl.id,
                            seed_key=seed_key,
                            attributes=attrs,
                        )
                    )
    return items


# --------------------------------------------------------------------------- data files


def _read_rows(data_path: Path) -> list[dict[str, Any]]:
    suffix = data_path.suffix.lower()
    try:
        if suffix == ".jsonl":
            rows = []
            with data_path.open(encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise UsageError(f"{data_path}:{n}: invalid JSON line: {exc.msg}") from None
            return rows
        if suffix == ".json":
            data = json.loads(data_path.read_text(encoding="utf-8"))
            if not isinstance(data, list):
                raise UsageError(f"{data_path}:1: a .json data file must hold a list of objects")
            return data
        if suffix == ".csv":
            with data_path.open(encoding="utf-8", newline="") as fh:
                return list(csv.DictReader(fh))
        if suffix == ".txt":
            with data_path.open(encoding="utf-8") as fh:
                return [{"prompt": line.rstrip("\n")} for line in fh if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{data_path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{data_path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    raise UsageError(f"{data_path}: unsupported data format '{suffix}' (use .jsonl, .json, .csv or .txt)")


def _as_list(v: Any) -> list[str]:
    if v is None or v == "":
        return []
    if isinstance(v, list):
        return [str(x) for x in v if str(x).strip()]
    return [str(v)]


def _load_data_items(suite: Suite, where: _Where, hasher: Any) -> list[Item]:
    listed = isinstance(suite.prompts.data, list)
    items: list[Item] = []
    for si, src in enumerate(suite.prompts.sources()):
        base: tuple[Any, ...] = ("prompts", "data", si) if listed else ("prompts",)
        file_loc = (*base, "file") if listed else ("prompts", "data")
        data_path = where.path.parent / src.file
        if not data_path.is_file():
            raise where.error(file_loc, f"data file not found: {src.file} (paths are relative to the suite file)")
        hasher.update(data_path.read_bytes())
        rows = _read_rows(data_path)
        f = src.fields
        needed = [c for c in [f.id, f.prompt, f.context, f.correct, f.incorrect, *f.options.values(), *f.attributes] if c]
        needed += list(src.filter)
        clash = sorted(set(f.attributes) & set(src.attributes))
        if clash:
            raise where.error((*base, "attributes"), f"attribute '{clash[0]}' is both a column and a constant")
        row_of: dict[str, int] = {}
        for n, row in enumerate(rows):
            if not isinstance(row, dict):
                raise UsageError(f"{data_path}:{n + 1}: row {n + 1} is not an object")
            missing = [c for c in needed if c not in row]
            if missing:
                raise where.error(
                    (*base, "fields"), f"column '{missing[0]}' not in {data_path.name} (row {n + 1})"
                )
            if any(row[col] not in allowed for col, allowed in src.filter.items()):
                continue
            row_id = str(row[f.id]) if f.id else str(n)
            item_id = f"{src.name}:{row_id}" if src.name else row_id
            if item_id in row_of:
                raise where.error(
                    file_loc, f"duplicate item id '{row_id}' in {data_path.name} (rows {row_of[item_id]} and {n + 1})"
                )
            row_of[item_id] = n + 1
            prompt = str(row[f.prompt]) if f.prompt else ""
            if src.format and f.prompt:
                prompt = src.format.replace("{prompt}", prompt)
            attrs: dict[str, Any] = {**src.attributes, **{a: row[a] for a in f.attributes}}
            items.append(
                Item(
                    item_id=item_id,
                    prompt=prompt,
                    seed_key=item_id,
                    attributes=attrs,
                    context=str(row[f.context]) if f.context else "",
                    options={name: str(row[col]) for name, col in f.options.items()},
                    correct=_as_list(row[f.correct]) if f.correct else [],
                    incorrect=_as_list(row[f.incorrect]) if f.incorrect else [],
                )
            )
    return items


# --------------------------------------------------------------------------- sampling


def stratified_limit(items: list[Item], limit: int | None, seed: int, by: list[str]) -> list[Item]:
    """Keep about ``limit`` items, reproducibly, covering every group.

    Strata are the ``axis`` of template suites, else the combination of the ``by`` attributes (a
    suite's ``group_attributes``) present on the items. Every stratum contributes at least one
    counterfactual set (items sharing ``seed_key``, kept whole so pairs stay complete), then strata
    are visited round-robin until ``limit`` items are reached. So the result may exceed ``limit``:
    by up to one set, or up to one set per stratum when ``limit`` is smaller than that. It keeps the
    suite's item order and depends only on the items, the limit and the seed.
    """
    if limit is None or limit >= len(items):
        return items
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    sets: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        sets[it.seed_key or it.item_id].append(it)
    if any("axis" in it.attributes for it in items):
        attrs = ["axis"]
    else:
        attrs = [a for a in by if any(a in it.attributes for it in items)]
    strata: dict[str, list[str]] = defaultdict(list)
    for key, members in sets.items():
        stratum = json.dumps([str(members[0].attributes.get(a, "")) for a in attrs])
        strata[stratum].append(key)
    rng = random.Random(seed)
    order = sorted(strata)
    for s in order:
        strata[s].sort()
        rng.shuffle(strata[s])
    # the first round takes one set from every stratum whatever the limit, so every group is covered
    chosen = [strata[s].pop() for s in order]
    count = sum(len(sets[k]) for k in chosen)
    while count < limit and any(strata[s] for s in order):
        for s in order:
            if strata[s] and count < limit:
                key = strata[s].pop()
                chosen.append(key)
                count += len(sets[key])
    keep = set(chosen)
    return [it for it in items if (it.seed_key or it.item_id) in keep]
