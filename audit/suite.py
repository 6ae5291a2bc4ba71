"""Suites: declarative YAML probe definitions, validated at load, expanded into prompt items.

A suite is a YAML file (built-in ones live in ``probes/suites/``; a user's can live anywhere).
It names its prompts (templates x lexicons, or a data file), the group attributes carried into
every record, generation parameters (optionally several named protocols), scorers, metrics and
default gates. See ``docs/suite-format.md`` for the full reference.

Validation happens here, at the boundary: every problem becomes one ``UsageError`` line that names
the file, the field and the line.
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


class Lexicon(_Strict):
    """Groups of one attribute (axis), each with aligned surface forms.

    Forms are aligned by position across groups (``woman``/``man``, ``mother``/``father``) so that
    the prompts built from form ``i`` of every group form one counterfactual set.
    """

    attribute: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    groups: dict[str, list[str]]
    source: str | None = None

    @field_validator("groups")
    @classmethod
    def _groups_ok(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        if len(v) < 2:
            raise ValueError("a lexicon needs at least two groups to compare")
        lengths = {g: len(forms) for g, forms in v.items()}
        for g, forms in v.items():
            if not forms:
                raise ValueError(f"group '{g}' has no surface forms")
            if any(not isinstance(f, str) or not f.strip() for f in forms):
                raise ValueError(f"group '{g}' has an empty surface form")
        if len(set(lengths.values())) != 1:
            raise ValueError(f"groups must have the same number of aligned forms, got {lengths}")
        return v


class DataFields(_Strict):
    id: str | None = None  # column holding a stable item id; default: the row number
    prompt: str | None = None  # column holding the prompt (generate task)
    context: str | None = None  # likelihood task: shared context before each option
    options: dict[str, str] = Field(default_factory=dict)  # likelihood task: option -> column
    attributes: list[str] = Field(default_factory=list)  # columns copied into record attributes
    correct: str | None = None  # column with correct reference answer(s) (str or list)
    incorrect: str | None = None  # column with incorrect reference answer(s)


class PromptSource(_Strict):
    templates: list[Template] = Field(default_factory=list)
    lexicons: list[str | Lexicon] = Field(default_factory=list)
    data: str | None = None
    fields: DataFields | None = None
    filter: dict[str, list[str | int]] = Field(default_factory=dict)  # keep rows whose column is in list

    @model_validator(mode="after")
    def _one_source(self) -> PromptSource:
        if bool(self.templates) == bool(self.data):
            raise ValueError("give either 'templates' or 'data', not both and not neither")
        if self.data and self.fields is None:
            raise ValueError("'data' needs 'fields' naming its columns")
        if self.templates and self.fields is not None:
            raise ValueError("'fields' goes with 'data', not with 'templates'")
        return self


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
    metric: str  # a metric label, or gap(score, attribute)
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

    @model_validator(mode="after")
    def _consistent(self) -> Suite:
        if self.default_protocol and self.default_protocol not in self.protocols:
            raise ValueError(f"default_protocol '{self.default_protocol}' is not in 'protocols'")
        if self.task == "likelihood":
            f = self.prompts.fields
            if f is None or len(f.options) < 2:
                raise ValueError("task 'likelihood' needs a data file with at least two 'fields.options'")
        elif self.prompts.data and (self.prompts.fields is None or not self.prompts.fields.prompt):
            raise ValueError("task 'generate' with 'data' needs 'fields.prompt'")
        ids = [t.id for t in self.prompts.templates]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate template ids: {', '.join(dup)}")
        return self

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
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if k.value == str(part):
                    nxt = k if part == loc[-1] else v
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


def _format_validation_error(path: Path, root: yaml.Node | None, err: ValidationError) -> str:
    e = err.errors()[0]
    loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p in {"str", "Lexicon"}))
    field_name = ".".join(str(p) for p in loc) or "(top level)"
    line = _line_of(root, loc)
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    elif e["type"] == "missing":
        msg = "required field is missing"
    msg = msg.removeprefix("Value error, ")
    more = f" (+{len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    where = f"{path}:{line}" if line else str(path)
    return f"{where}: {field_name}: {msg}{more}"


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
    path = resolve_suite_path(name_or_path)
    data, root = _read_yaml(path)
    if not isinstance(data, dict):
        raise UsageError(f"{path}:1: a suite must be a YAML mapping, got {type(data).__name__}")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as err:
        raise UsageError(_format_validation_error(path, root, err)) from None
    return suite, path


def load_suite(name_or_path: str, known_scorers: set[str] | None = None) -> LoadedSuite:
    """Load, validate and expand a suite. ``known_scorers`` enables the scorer-name check."""
    suite, path = load_suite_file(name_or_path)
    root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    if known_scorers is not None:
        for i, name in enumerate(suite.scorers):
            if name.partition(":")[0] not in known_scorers:
                line = _line_of(root, ("scorers", i))
                raise UsageError(
                    f"{path}:{line}: scorers.{i}: unknown scorer '{name}' "
                    f"(known: {', '.join(sorted(known_scorers))})"
                )
    hasher = hashlib.sha256()
    hasher.update(path.read_bytes())
    if suite.prompts.templates:
        items = _expand_templates(suite, path, root, hasher)
    else:
        items = _load_data_items(suite, path, root, hasher)
    if not items:
        raise UsageError(f"{path}: prompts: the suite produces no prompts")
    ids = [it.item_id for it in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        line = _line_of(root, ("prompts",))
        raise UsageError(f"{path}:{line}: prompts: duplicate item id '{dup}'")
    return LoadedSuite(suite=suite, path=path, items=items, data_hash=hasher.hexdigest()[:16])


def _load_lexicon(ref: str | Lexicon, suite_path: Path, root: yaml.Node | None, i: int) -> Lexicon:
    if isinstance(ref, Lexicon):
        return ref
    candidates = [suite_path.parent / ref, BUILTIN_LEXICONS_DIR / f"{ref}.yaml", BUILTIN_LEXICONS_DIR / ref]
    for c in candidates:
        if c.is_file():
            data, lroot = _read_yaml(c)
            if not isinstance(data, dict):
                raise UsageError(f"{c}:1: a lexicon must be a YAML mapping")
            try:
                return Lexicon.model_validate(data)
            except ValidationError as err:
                raise UsageError(_format_validation_error(c, lroot, err)) from None
    line = _line_of(root, ("prompts", "lexicons", i))
    raise UsageError(f"{suite_path}:{line}: prompts.lexicons.{i}: lexicon '{ref}' not found")


def _expand_templates(suite: Suite, path: Path, root: yaml.Node | None, hasher: Any) -> list[Item]:
    src = suite.prompts
    if not src.lexicons:
        line = _line_of(root, ("prompts",))
        raise UsageError(f"{path}:{line}: prompts.lexicons: templates need at least one lexicon")
    lexicons = [_load_lexicon(ref, path, root, i) for i, ref in enumerate(src.lexicons)]
    for lex in lexicons:
        hasher.update(json.dumps(lex.model_dump(), sort_keys=True).encode())
    items: list[Item] = []
    for ti, tpl in enumerate(src.templates):
        slots = set(SLOT_RE.findall(tpl.text))
        if slots != {"group"}:
            line = _line_of(root, ("prompts", "templates", ti, "text"))
            unknown = sorted(slots - {"group"})
            what = (
                f"unknown slot(s) {', '.join('{' + u + '}' for u in unknown)}; only {{group}} is filled"
                if unknown
                else "template has no {group} slot"
            )
            raise UsageError(f"{path}:{line}: prompts.templates.{ti}.text: {what}")
        for lex in lexicons:
            n_forms = len(next(iter(lex.groups.values())))
            for fi in range(n_forms):
                seed_key = f"{tpl.id}:{lex.attribute}:{fi}"
                for group, forms in lex.groups.items():
                    term = forms[fi]
                    prompt = tpl.text.replace("{group}", term)
                    if tpl.text.startswith("{group}"):
                        prompt = prompt[0].upper() + prompt[1:]
                    items.append(
                        Item(
                            item_id=f"{tpl.id}:{lex.attribute}:{group}:{fi}",
                            prompt=prompt,
                            template_id=tpl.id,
                            seed_key=seed_key,
                            attributes={
                                **tpl.attributes,
                                "axis": lex.attribute,
                                "group": group,
                                "term": term,
                                "pair_id": seed_key,
                            },
                        )
                    )
    return items


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
                raise UsageError(f"{data_path}: a .json data file must hold a list of objects")
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
        raise UsageError(f"{data_path}: invalid JSON: {exc.msg}") from None
    raise UsageError(f"{data_path}: unsupported data format '{suffix}' (use .jsonl, .json, .csv or .txt)")


def _as_list(v: Any) -> list[str]:
    if v is None or v == "":
        return []
    if isinstance(v, list):
        return [str(x) for x in v if str(x).strip()]
    return [str(v)]


def _load_data_items(suite: Suite, path: Path, root: yaml.Node | None, hasher: Any) -> list[Item]:
    src = suite.prompts
    assert src.data is not None and src.fields is not None
    data_path = (path.parent / src.data).resolve()
    if not data_path.is_file():
        line = _line_of(root, ("prompts", "data"))
        raise UsageError(f"{path}:{line}: prompts.data: data file not found: {src.data}")
    hasher.update(data_path.read_bytes())
    rows = _read_rows(data_path)
    f = src.fields
    needed = [c for c in [f.id, f.prompt, f.context, f.correct, f.incorrect, *f.options.values(), *f.attributes] if c]
    needed += list(src.filter)
    items: list[Item] = []
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            raise UsageError(f"{data_path}: row {n + 1} is not an object")
        missing = [c for c in needed if c not in row]
        if missing:
            line = _line_of(root, ("prompts", "fields"))
            raise UsageError(
                f"{path}:{line}: prompts.fields: column '{missing[0]}' not in {data_path.name} (row {n + 1})"
            )
        if any(row[col] not in allowed for col, allowed in src.filter.items()):
            continue
        item_id = str(row[f.id]) if f.id else str(n)
        attrs = {a: row[a] for a in f.attributes}
        items.append(
            Item(
                item_id=item_id,
                prompt=str(row[f.prompt]) if f.prompt else "",
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

    Counterfactual sets (items sharing ``seed_key``) are kept whole, so pairs stay complete; the
    limit is therefore rounded up to whole sets. Strata are the values of the first attribute in
    ``by`` present on the items (``axis`` for template suites), visited round-robin.
    """
    if limit is None or limit >= len(items):
        return items
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    sets: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        sets[it.seed_key or it.item_id].append(it)
    strat_attr = next((a for a in ["axis", *by] if any(a in it.attributes for it in items)), None)
    strata: dict[str, list[str]] = defaultdict(list)
    for key, members in sets.items():
        strata[str(members[0].attributes.get(strat_attr, "")) if strat_attr else ""].append(key)
    rng = random.Random(seed)
    order = sorted(strata)
    for s in order:
        rng.shuffle(strata[s])
    chosen: list[str] = []
    count = 0
    while count < limit and any(strata[s] for s in order):
        for s in order:
            if strata[s] and count < limit:
                key = strata[s].pop()
                chosen.append(key)
                count += len(sets[key])
    keep = set(chosen)
    return [it for it in items if (it.seed_key or it.item_id) in keep]
