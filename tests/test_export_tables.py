"""``lm-audit export --format csv|parquet``: read back with pandas (and pyarrow), the tables hold
the records and figures of the run; CSV cells a spreadsheet would execute are defused."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from export_fixtures import audit_run, hostile_record, records_of, summary_of

from audit.cli import main


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tables_round_trip(tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    run = audit_run(tmp_path, extra_records=[hostile_record()])
    assert main(["export", str(run), "--format", fmt]) == 0
    out = run / "export" / "tables"
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    records = read(out / f"records.{fmt}")
    raw = records_of(run)
    assert len(records) == len(raw)
    by_key = records.set_index("key")
    for r in raw:
        row = by_key.loc[r["key"]]
        for k, v in r["scores"].items():
            assert row[k] == pytest.approx(v)
        for k, v in r["attributes"].items():
            assert str(row[k]) == str(v)
    hostile = by_key.loc["tox/p-hostile/0"]
    if fmt == "csv":
        assert hostile["prompt"] == "'=HYPERLINK(\"http://x\")"  # not a live formula in a spreadsheet
    else:
        assert hostile["prompt"] == '=HYPERLINK("http://x")' and hostile["completion"].startswith("<script>")
    metrics = read(out / f"metrics.{fmt}")
    summary = summary_of(run)
    emt = summary["suites"]["tox"]["metrics"][0]
    row = metrics[(metrics.suite == "tox") & (metrics.figure == "expected_max_toxicity") & metrics.attribute.isna()]
    assert len(row) == 1
    assert row.iloc[0][["estimate", "ci_low", "ci_high"]].tolist() == pytest.approx(
        [emt["estimate"], emt["ci_low"], emt["ci_high"]])
    cells = metrics[(metrics.figure == "expected_max_toxicity") & (metrics.attribute == "category")]
    assert sorted(cells.group) == sorted(emt["by"]["category"])
    gates = read(out / f"gates.{fmt}")
    assert sorted(gates.verdict) == sorted(g["verdict"] for s in summary["suites"].values() for g in s["gates"])
    assert len(read(out / f"groups.{fmt}")) == sum(len(g["by_group"]) for s in summary["suites"].values() for g in s["groups"])


def test_out_folder_and_several_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = audit_run(tmp_path)
    out = tmp_path / "tables"
    assert main(["export", str(run), "--format", "csv", "--format", "parquet", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{t}.{x}" for t in ("records", "metrics", "groups", "gates") for x in ("csv", "parquet"))
    assert main(["export", str(run), "--format", "csv", "--format", "inspect", "--out", str(out)]) == 2
