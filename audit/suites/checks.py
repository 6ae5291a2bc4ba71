"""Semantic checks of a validated suite: metric names, gate figures, attributes, score keys."""

from __future__ import annotations

from audit.suites.cells import parse_selector
from audit.suites.schema import (
    CELL_SEP,
    GAP_RE,
    GROUP_FIG_RE,
    LIKELIHOOD_METRICS,
    METRIC_PARTS,
    METRICS_NEEDING_SCORE,
    Item,
    Suite,
)
from audit.suites.yamlsafe import Where


def known_metric_names() -> set[str]:
    """The metric registry of the statistics layer (imported lazily: it pulls in numpy)."""
    from audit.metrics.registry import METRICS

    return set(METRICS)


def check_metrics(suite: Suite, where: Where) -> None:
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
        gap = GAP_RE.match(fig)
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
        grp = GROUP_FIG_RE.match(fig)
        label = grp["label"].strip() if grp else fig
        parts = {f"{lbl}.{p}" for lbl, i2 in labels.items() for p in METRIC_PARTS.get(suite.metrics[i2].metric, ())}
        bare_parts = {p for i2 in labels.values() for p in METRIC_PARTS.get(suite.metrics[i2].metric, ())}
        if label not in labels and label not in parts and label not in bare_parts:
            known_figs = sorted(labels) + sorted(parts)
            raise where.error(
                ("gates", i, "metric"),
                f"gate names '{label}', which is not a metric of this suite (metrics: {', '.join(known_figs) or 'none'})",
            )


def referenced_attributes(suite: Suite) -> list[str]:
    """Attributes the suite's group_attributes, metric breakdowns and gap gates name (cells included)."""
    names = list(suite.group_attributes)
    for m in suite.metrics:
        names += m.by
    for g in suite.gates:
        gap = GAP_RE.match(g.metric.strip())
        if gap:
            names.append(gap.group(2))
    return list(dict.fromkeys(names))


def _check_selector(suite: Suite, where: Where, items: list[Item], i: int, label: str, text: str, known: str) -> None:
    loc = ("gates", i, "metric")
    pairs = parse_selector(text)
    if pairs is None:
        raise where.error(loc, f"cannot read the selector [{text}]: write [attr=value] or [attr=value,attr=value]")
    for attr, value in pairs:
        values = {str(it.attributes[attr]) for it in items if attr in it.attributes}
        if not values:
            raise where.error(loc, f"attribute '{attr}' is not on any item (attributes: {known})")
        if value not in values:
            raise where.error(loc, f"no item has {attr}={value} (values: {', '.join(sorted(values))})")
    if len(pairs) > 1:
        wanted = {a for a, _ in pairs}
        metric = next((m for m in suite.metrics if m.label == label), None)
        cells = [b for b in (metric.by if metric else []) if set(b.split(CELL_SEP)) == wanted and CELL_SEP in b]
        if metric is not None and not cells:
            raise where.error(
                loc,
                f"metric '{label}' has no cross-tab of {', '.join(a for a, _ in pairs)}: "
                f"add by: [[{', '.join(a for a, _ in pairs)}]] to it",
            )
        d = dict(pairs)
        if cells and not any(all(str(it.attributes.get(a)) == v for a, v in d.items()) for it in items):
            raise where.error(loc, f"no item has {text} (that cell is empty)")


def check_attributes(suite: Suite, where: Where, items: list[Item]) -> None:
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
        grp = GROUP_FIG_RE.match(g.metric.strip())
        if grp:
            text = f"{grp['attr'].strip()}={grp['value'].strip()}"
            _check_selector(suite, where, items, i, grp["label"].strip(), text, known)


def _scorer_outputs(name: str) -> set[str] | None:
    """Score keys a scorer produces, when knowable without building it (None: unknown)."""
    if ":" in name:
        return None
    try:
        from audit.scorers.registry import scorer_factory

        factory = scorer_factory(name)
    except Exception:
        return None
    outputs = getattr(factory, "outputs", None)
    if outputs:
        return {o.key for o in outputs}
    return _DEFAULT_SCORE_KEYS.get(name)


# score keys of the built-in scorers whose factory is a function (docs/architecture.md, "Score keys")
_DEFAULT_SCORE_KEYS = {
    "toxicity": {"toxicity"},
    "refusal": {"refusal", "refusal_full", "refusal_partial", "refusal_class", "refusal_context"},  # the keys the XSTest refusal scorer writes
    "factuality": {"factual", "factual_exact", "factual_contains", "factual_semantic"},
}


def check_score_keys(suite: Suite, where: Where, items: list[Item]) -> None:
    """Every metric's score key must come from a scorer of the suite (when that is knowable)."""
    if suite.task == "likelihood":
        keys = {f"ll_{o}" for it in items for o in it.options}
        if suite.prompts.continuations is not None:
            keys |= set(suite.prompts.continuations.score_keys())
        if suite.prompts.answers is not None:
            keys.add("logit_yes")  # suites/answers.py
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
