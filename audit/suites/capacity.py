"""What a suite can hold for a gate: the units (prompts, likelihood items or counterfactual sets)
its figure is estimated from when the whole suite runs, the groups a gap compares, and the
figure's scale (for the plan's default effect and spread). Read from the expanded suite, no run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_GAP_RE = re.compile(r"^gap\(\s*([^,\s]+)\s*,\s*([^)\s]+)\s*\)$")
_CELL_RE = re.compile(r"^(?P<label>[^\[\]]+)\[(?P<cell>[^\]]+)\]$")
_PERCENT = {"pct_stereotype", "stereoset"}
_PROPORTION = {"rate", "refusal_rate", "toxic_fraction", "toxicity_probability", "accuracy", "over_refusal"}


@dataclass(frozen=True)
class Capacity:
    """``held``: units the whole suite gives the figure; ``unit``: sets, prompts or items;
    ``groups``: groups a gap compares (1 otherwise); ``scale``: see ``scale_of``."""

    held: int
    unit: str
    groups: int
    scale: str


def _matches(attrs: dict[str, Any], cell: str) -> bool:
    for part in cell.split(","):
        if "=" not in part:
            return False
        k, v = (x.strip() for x in part.split("=", 1))
        if str(attrs.get(k)) != v:
            return False
    return True


def _metric_of(loaded: Any, label: str) -> tuple[Any, str]:
    """The suite's metric spec a figure label names, and the part ('' for a one-part metric)."""
    for m in loaded.suite.metrics:
        if m.name == label:
            return m, ""
    if "." in label:
        name, part = label.split(".", 1)
        for m in loaded.suite.metrics:
            if m.name == name:
                return m, part
    for m in loaded.suite.metrics:  # a bare part name (``icat``)
        if m.metric in ("stereoset", "bbq") and label in ("ss", "lms", "icat", "bias_ambig", "bias_disambig"):
            return m, label
    return None, ""


def scale_of(metric: str, part: str = "") -> str:
    """percent (0-100), proportion (0-1 share of outcomes), bias (a -1..1 bias score such as BBQ's,
    whose items each count about +-1) or score (a mean of a scorer's output)."""
    if metric in _PERCENT:
        return "percent"
    if metric in _PROPORTION or (metric == "bbq" and part.startswith(("accuracy", "invalid"))):
        return "proportion"
    return "bias" if metric == "bbq" else "score"


def suite_capacity(loaded: Any, figure: str) -> Capacity | None:
    """Units, groups and scale of ``figure`` in the whole suite ``loaded`` (``audit.suites.LoadedSuite``);
    None when the figure names nothing the suite can compute."""
    items = loaded.items
    paired = any(it.attributes.get("pair_id") for it in items)
    template = any("axis" in it.attributes and "group" in it.attributes for it in items)
    unit = "sets" if paired else ("items" if loaded.suite.task == "likelihood" else "prompts")

    def units(sel: list[Any]) -> int:
        if paired:
            return len({it.attributes.get("pair_id") or it.item_id for it in sel})
        return len({it.item_id for it in sel})

    gap = _GAP_RE.match(figure.strip())
    if gap:
        attribute = gap.group(2)
        if template and any(it.attributes.get("axis") == attribute for it in items):
            sel = [it for it in items if it.attributes.get("axis") == attribute]
            groups = {it.attributes.get("group") for it in sel}
        else:
            sel = [it for it in items if it.attributes.get(attribute) is not None]
            groups = {str(it.attributes[attribute]) for it in sel}
        if len(groups) < 2:
            return None
        return Capacity(units(sel), unit, len(groups), "score")
    cell = _CELL_RE.match(figure.strip())
    label = cell["label"].strip() if cell else figure.strip()
    spec, part = _metric_of(loaded, label)
    if spec is None:
        return None
    sel = [it for it in items if _matches(it.attributes, cell["cell"])] if cell else list(items)
    sel = [it for it in sel if _reads(spec, part, it)]
    return Capacity(units(sel), unit, 1, scale_of(spec.metric, part))


def _reads(spec: Any, part: str, item: Any) -> bool:
    """Whether the metric reads ``item`` (likelihood metrics read only their own dataset's items)."""
    if spec.metric == "pct_stereotype":
        return str(spec.params.get("more", "sent_more")) in item.options
    if spec.metric == "stereoset":
        return "stereotype" in item.options and "unrelated" in item.options
    if spec.metric == "bbq" and part.endswith("ambig"):
        want = "ambig" if part.endswith("_ambig") else "disambig"
        return str(item.attributes.get("context_condition")) == want
    if spec.metric == "over_refusal" and part != "balanced_error":
        want = "unsafe" if part == "harmful_compliance" else "safe"
        return str(item.attributes.get(str(spec.params.get("label_attribute", "label")))) == want
    return True
