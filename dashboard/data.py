"""The dashboard's data layer, in one namespace for the pages (``from dashboard import data``).

Modules: ``safe_io`` (confined, size- and depth-capped reading), ``loading`` (run listing, the
``Run`` object), ``records_frame`` (the records as one flat frame), ``tables`` (summary.json as tables), ``kinds`` (which page a
suite belongs on), ``aggregate`` (plot aggregations), ``comparing`` (comparisons computed by
``audit/``), ``drill`` (the records behind a figure, with their influence from ``audit.review.influence``).
Every statistic shown comes from ``audit/``; nothing here estimates a CI or runs a test.
"""

from __future__ import annotations

from dashboard.aggregate import filter_records, histogram, pair_differences
from dashboard.comparing import (
    leaderboard_frame,
    many_compare,
    official_compare,
    official_compare_frame,
    pairwise_frame,
)
from dashboard.kinds import KINDS, rate_range, suite_kinds, suites_of_kind
from dashboard.loading import Run, RunEntry, list_runs, open_run, run_path, runs_frame
from dashboard.records_frame import (
    ATTR,
    BASE_COLUMNS,
    SCORE,
    attr_columns,
    load_records,
    records_to_frame,
    score_columns,
)
from dashboard.safe_io import MANIFEST, RECORDS, REPORTS_ENV, SUMMARY, parse_records, reports_dir
from dashboard.tables import (
    gaps_frame,
    gates_frame,
    groups_frame,
    metric_by_frame,
    metrics_frame,
    number,
    scorer_audit,
    scorer_audit_frame,
    tests_frame,
    validity_frames,
    verdict_of,
)

__all__ = [
    "ATTR", "BASE_COLUMNS", "KINDS", "MANIFEST", "RECORDS", "REPORTS_ENV", "SCORE", "SUMMARY",
    "Run", "RunEntry", "attr_columns", "filter_records", "gaps_frame", "gates_frame", "groups_frame",
    "histogram", "leaderboard_frame", "list_runs", "load_records", "many_compare", "metric_by_frame",
    "metrics_frame", "number", "official_compare", "official_compare_frame", "open_run", "pair_differences",
    "pairwise_frame", "parse_records", "rate_range", "records_to_frame", "reports_dir", "run_path", "runs_frame",
    "score_columns", "scorer_audit", "scorer_audit_frame", "suite_kinds", "suites_of_kind",
    "tests_frame", "validity_frames", "verdict_of",
]
