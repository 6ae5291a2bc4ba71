"""Rendering fixes of issue 14 in report.md / report.html, and the summary side of group tables:
code spans without backslash escapes, the dashed line at the mean of the groups shown, no group a
metric's own dataset cannot hold."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from audit.report.format import md_code
from audit.report.write import write_reports
from audit.summary.build import build_summary
from tests.synthetic_runs import counterfactual_records, record, suite_manifest, write_run


def test_markdown_code_spans_show_no_backslashes() -> None:
    assert md_code("mean_sentiment[context=medical] <= 0.1") == "`mean_sentiment[context=medical] <= 0.1`"
    assert md_code("a`b") == "``a`b``" and md_code("<b>") == "`<b>`"
    assert md_code("x|y") == "`x\\|y`"  # GFM removes the pipe escape inside table cells


def test_report_gate_code_span_and_mean_of_groups_line(tmp_path: Path) -> None:
    recs = counterfactual_records("bias", n_pairs=12, samples=1, gap=0.4, seed=4)
    sm = suite_manifest(scorers=["sentiment"], group_attributes=["axis", "group"],
                        metrics=[{"name": "mean_sentiment", "metric": "mean", "score": "sentiment", "by": ["context"], "params": {}}],
                        gates=[{"metric": "mean_sentiment[context=occupation]", "op": ">=", "threshold": -5, "bound": "estimate"}])
    run = write_run(tmp_path / "r", {"bias": sm}, recs)
    summary = build_summary(run, self_audit=False)
    write_reports(run, summary)
    md = (run / "report.md").read_text()
    assert "`mean_sentiment[context=occupation] >= -5.000`" in md and "\\[" not in md.split("## Manifest")[0]
    g = summary["suites"]["bias"]["groups"][0]
    mean = float(np.mean([c["estimate"] for c in g["by_group"].values()]))
    assert abs(g["mean_of_groups"]["estimate"] - mean) < 1e-6
    html = (run / "report.html").read_text()
    assert "dashed: mean of the groups shown" in html and "dashed: overall" not in html


def test_group_tables_omit_groups_the_metrics_dataset_never_holds(tmp_path: Path) -> None:
    recs = []
    for i in range(8):  # CrowS-Pairs-like items (options sent_more / sent_less) of two bias types
        bt = ["gender", "religion"][i % 2]
        recs.append(record("s", f"crows-{i}", 0, {"ll_sent_more": -1.0 - i % 3, "ll_sent_less": -2.0},
                           {"source": "crows_pairs", "bias_type": bt}, completion=""))
    for i in range(8):  # StereoSet-like items of two other types
        bt = ["profession", "race"][i % 2]
        recs.append(record("s", f"ss-{i}", 0, {"ll_stereotype": -1.0, "ll_anti_stereotype": -1.5 - i % 2,
                                               "ll_unrelated": -4.0}, {"source": "stereoset", "bias_type": bt}, completion=""))
    sm = suite_manifest(task="likelihood", scorers=[], group_attributes=["source", "bias_type"], metrics=[
        {"name": "crows", "metric": "pct_stereotype", "by": ["bias_type"], "params": {"more": "sent_more", "less": "sent_less"}},
        {"name": "stereoset", "metric": "stereoset", "by": ["bias_type"], "params": {}},
    ])
    run = write_run(tmp_path / "s", {"s": sm}, recs)
    metrics = {m["name"]: m for m in build_summary(run, self_audit=False)["suites"]["s"]["metrics"]}
    assert set(metrics["crows"]["by"]["bias_type"]) == {"gender", "religion"}
    assert set(metrics["stereoset.ss"]["by"]["bias_type"]) == {"profession", "race"}
    write_reports(run, build_summary(run, self_audit=False))
    assert not re.search(r"bias_type=profession \| n/a", (run / "report.md").read_text())
