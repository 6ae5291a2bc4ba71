"""Which topic pages a suite belongs on, from what the suite declares (its task, metrics and
scorers in the manifest, and the metric kinds in summary.json), never from its id: the id
"bias-counterfactual" contains "factual"."""

from __future__ import annotations

from typing import Any

from dashboard.loading import Run

KINDS = ("toxicity", "bias", "stereotypes", "factuality", "misuse")
TOXICITY_METRICS = {"expected_max_toxicity", "toxicity_probability"}  # the RealToxicityPrompts protocol
STEREOTYPE_METRICS = {"pct_stereotype", "stereoset"}
FACTUAL_SCORES = {"factual", "factual_exact", "factual_contains", "factual_semantic"}

# the range of a score key, for chart axes (rates and shares run 0..1)
SCORE_RANGE: dict[str, tuple[float, float]] = {
    "toxicity": (0.0, 1.0),
    "sentiment": (-1.0, 1.0),
    "sentiment_negative": (0.0, 1.0),
    "sentiment_positive": (0.0, 1.0),
    "regard": (-1.0, 1.0),
    "refusal": (0.0, 1.0),
    "stereotype_preferred": (0.0, 1.0),
    **{k: (0.0, 1.0) for k in FACTUAL_SCORES},
}


def _list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def declared(run: Run, suite: str) -> tuple[str, set[str], set[str], set[str]]:
    """(task, metric kinds, metric scores, scorer names) the suite declares."""
    s, m = run.suite_summary(suite), run.suite_manifest(suite)
    specs = [x for x in [*_list(m.get("metrics")), *_list(s.get("metrics"))] if isinstance(x, dict)]
    metrics = {str(x.get("metric")) for x in specs}
    scores = {str(x.get("score")) for x in specs if x.get("score")}
    scorers = {str(x).split(":")[0] for x in _list(m.get("scorers"))}
    task = str(m.get("task") or s.get("task") or "generate")
    return task, metrics, scores, scorers


def suite_kinds(run: Run, suite: str) -> set[str]:
    task, metrics, scores, scorers = declared(run, suite)
    kinds: set[str] = set()
    if metrics & TOXICITY_METRICS:
        kinds.add("toxicity")
    if task == "likelihood" or metrics & STEREOTYPE_METRICS:
        kinds.add("stereotypes")
    if "accuracy" in metrics and (scores & FACTUAL_SCORES or "factuality" in scorers or not scores):
        kinds.add("factuality")
    if "refusal_rate" in metrics or "refusal" in scorers:
        kinds.add("misuse")
    groups = _list(run.suite_manifest(suite).get("group_attributes"))
    if _list(run.suite_summary(suite).get("tests")) or (task == "generate" and groups and not kinds):
        kinds.add("bias")  # counterfactual sets with paired tests, or a generation suite over groups
    return kinds


def suites_of_kind(run: Run, kind: str) -> list[str]:
    return [s for s in run.suite_ids if kind in suite_kinds(run, s)]


def rate_range(scale: str | None, score: str | None = None) -> tuple[float, float] | None:
    """The y axis of a chart: 0..1 for rates and shares, 0..100 for percentages, a score's range."""
    if scale == "0..1":
        return (0.0, 1.0)
    if scale == "0..100":
        return (0.0, 100.0)
    return SCORE_RANGE.get(score or "")
