"""The pandas API: ``from audit import load_run, load_runs``."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from export_fixtures import audit_run, records_of, summary_of

from audit import load_run, load_runs


def test_import_audit_stays_light() -> None:
    code = "import sys, audit; from audit import load_run; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_records_one_row_per_record(tmp_path: Path) -> None:
    from synthetic_runs import record

    run_dir = audit_run(tmp_path, extra_records=[record("tox", "p-x", 0, {"toxicity": None}, {"category": "insult"})])
    run = load_run(run_dir)
    raw = records_of(run_dir)
    df = run.records
    assert len(df) == len(raw) and list(df["key"]) == [r["key"] for r in raw]
    assert set(run.attribute_columns) == {"axis", "group", "term", "pair_id", "context", "category"}
    assert set(run.score_columns) == {"sentiment", "toxicity"}
    assert df["toxicity"].dtype == "float64"
    assert math.isnan(df.set_index("key").loc["tox/p-x/0", "toxicity"])  # not computed -> NaN
    # a planted gap of 0.3 between female and male shows in a plain groupby
    bias = df[df.suite == "bias"].groupby("group")["sentiment"].mean()
    assert bias["male"] - bias["female"] == pytest.approx(0.3, abs=0.1)
    assert set(df["run_id"]) == {"run-a"} and not df["overridden"].any()


def test_figure_frames_match_summary(tmp_path: Path) -> None:
    run_dir = audit_run(tmp_path)
    run = load_run(run_dir)
    summary = summary_of(run_dir)
    assert run.summary == summary and run.manifest["run_id"] == "run-a"
    m = run.metrics
    overall = m[m.attribute.isna() & (m.kind == "metric")].set_index(["suite", "figure"])
    for sid, s in summary["suites"].items():
        for fig in s["metrics"]:
            assert overall.loc[(sid, fig["name"]), "estimate"] == pytest.approx(fig["estimate"])
            assert overall.loc[(sid, fig["name"]), "ci_high"] == pytest.approx(fig["ci_high"])
    gap = m[(m.kind == "gap")].set_index("figure").loc["gap(sentiment, gender)"]
    g = summary["suites"]["bias"]["groups"][0]
    assert gap["estimate"] == pytest.approx(g["gap"]["estimate"]) and gap["max_group"] == g["gap"]["max_group"]
    groups = run.groups.set_index(["suite", "attribute", "group"])
    assert groups.loc[("bias", "gender", "female"), "estimate"] == pytest.approx(g["by_group"]["female"]["estimate"])
    gates = run.gates
    assert list(gates.verdict) == ["FAIL", "PASS"] and list(gates.passed) == [False, True]
    assert gates.loc[0, "value"] == pytest.approx(summary["suites"]["bias"]["gates"][0]["value"])


def test_load_runs_stacks_with_run_id(tmp_path: Path) -> None:
    audit_run(tmp_path, "run-a", gap=0.3)
    audit_run(tmp_path, "run-b", gap=0.0, seed=1)
    (tmp_path / "not-a-run").mkdir()
    runs = load_runs(tmp_path)
    assert runs.run_ids == ["run-a", "run-b"] and len(runs) == 2
    assert runs.records.groupby("run_id").size().to_dict() == {r: len(records_of(tmp_path / r)) for r in runs.run_ids}
    wide = runs.metrics[runs.metrics.attribute.isna()].pivot_table(index="figure", columns="run_id", values="estimate")
    assert wide.loc["gap(sentiment, gender)", "run-a"] > wide.loc["gap(sentiment, gender)", "run-b"]
    assert set(runs.gates.run_id) == {"run-a", "run-b"}
    assert runs["run-b"].run_id == "run-b"
    assert load_runs([tmp_path / "run-b"]).run_ids == ["run-b"]


def test_overrides_apply_like_the_summary(tmp_path: Path) -> None:
    run_dir = audit_run(tmp_path)
    key = "tox/p0/0"
    from audit.store.overrides import append_override  # writes the line with its hash chain

    append_override(run_dir, key, score="toxicity", value=0.99, who="ana", why="test", when="2026-12-01T00:00:00Z")
    reviewed = load_run(run_dir).records.set_index("key")
    assert reviewed.loc[key, "toxicity"] == 0.99 and reviewed.loc[key, "overridden"]
    raw = load_run(run_dir, reviewed=False).records.set_index("key")
    assert raw.loc[key, "toxicity"] != 0.99 and not raw["overridden"].any()


def test_bad_folder_is_a_usage_error(tmp_path: Path) -> None:
    from audit.core.errors import UsageError

    with pytest.raises(UsageError, match="not a run folder"):
        load_run(tmp_path)
    with pytest.raises(UsageError, match="not a folder"):
        load_runs(tmp_path / "missing")
