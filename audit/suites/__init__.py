"""Suites: declarative YAML probe definitions, validated at load, expanded into prompt items.

This package is the stable import point; the code lives in its modules:
``schema`` (pydantic models, ``Item``), ``yamlsafe`` (safe YAML reading, located errors),
``loader`` (``load_suite``), ``checks`` (cross-field checks), ``expand`` (templates x lexicons),
``data`` (data files) and ``limit`` (``stratified_limit``).

Validation happens at the boundary: every problem becomes one ``UsageError`` line that names
the file, the line and the field (``path:line: field: message``).
"""

from __future__ import annotations

from audit.suites.checks import known_metric_names
from audit.suites.expand import builtin_lexicon_paths, load_lexicon_file
from audit.suites.limit import limit_by_axis, stratified_limit
from audit.suites.loader import builtin_suite_paths, load_suite, load_suite_file, resolve_suite_path
from audit.suites.schema import (
    ATTR_RE,
    BUILTIN_LEXICONS_DIR,
    BUILTIN_SUITES_DIR,
    ID_RE,
    LIKELIHOOD_METRICS,
    METRIC_PARTS,
    METRICS_NEEDING_SCORE,
    PROBES_DIR,
    RESERVED_ATTRIBUTES,
    SLOT_RE,
    DataFields,
    DataSource,
    GateSpec,
    GenerationSpec,
    Item,
    Lexicon,
    LoadedSuite,
    MetricSpec,
    PromptSource,
    Suite,
    Template,
)

__all__ = [
    "ATTR_RE",
    "BUILTIN_LEXICONS_DIR",
    "BUILTIN_SUITES_DIR",
    "ID_RE",
    "LIKELIHOOD_METRICS",
    "METRICS_NEEDING_SCORE",
    "METRIC_PARTS",
    "PROBES_DIR",
    "RESERVED_ATTRIBUTES",
    "SLOT_RE",
    "DataFields",
    "DataSource",
    "GateSpec",
    "GenerationSpec",
    "Item",
    "Lexicon",
    "LoadedSuite",
    "MetricSpec",
    "PromptSource",
    "Suite",
    "Template",
    "builtin_lexicon_paths",
    "builtin_suite_paths",
    "known_metric_names",
    "limit_by_axis",
    "load_lexicon_file",
    "load_suite",
    "load_suite_file",
    "resolve_suite_path",
    "stratified_limit",
]
