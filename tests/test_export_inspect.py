"""``lm-audit export --format inspect``: every file is read back by inspect-ai itself
(``read_eval_log``, ``samples_df``, ``evals_df``) and samples, scores and figures round-trip."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from export_fixtures import audit_run, hostile_record, records_of, summary_of

from audit.cli import main

inspect_log = pytest.importorskip("inspect_ai.log", reason="inspect-ai is in the dev extra")


def _export(run: Path, capsys: pytest.CaptureFixture[str]) -> list[Path]:
    assert main(["export", str(run), "--format", "inspect"]) == 0
    out = capsys.readouterr().out
    paths = [Path(line.split(": ", 1)[1]) for line in out.splitlines() if line.startswith("inspect: ")]
    assert f"view: inspect view --log-dir {run / 'export' / 'inspect'}" in out
    return paths


def test_samples_scores_and_metadata_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = audit_run(tmp_path, extra_records=[hostile_record()])
    paths = _export(run, capsys)
    assert len(paths) == 2  # one log per suite
    records = records_of(run)
    manifest = json.loads((run / "manifest.json").read_text())
    for path in paths:
        log = inspect_log.read_eval_log(str(path))
        suite = log.eval.task
        mine = [r for r in records if r["suite"] == suite]
        assert log.status == "success"
        assert log.eval.model == "hf/synthetic-model"
        assert log.eval.config.epochs == manifest["suites"][suite]["generation"]["samples"]
        assert log.eval.model_generate_config.seed == manifest["seed"]
        assert log.eval.model_generate_config.top_p == manifest["suites"][suite]["generation"]["top_p"]
        assert log.eval.metadata["lm_audit"]["protocol"]["text"] == summary_of(run)["suites"][suite]["protocol"]["text"]
        assert len(log.samples) == len(mine) == log.results.total_samples
        by_key = {s.metadata["lm_audit"]["key"]: s for s in log.samples}
        for r in mine:
            s = by_key[r["key"]]
            assert (s.id, s.epoch) == (r["item_id"], r["sample"] + 1)
            assert s.input == r["prompt"]
            assert s.output.completion == r["completion"]
            assert s.messages[-1].text == r["completion"]
            assert {k: sc.value for k, sc in s.scores.items()} == {
                k: v for k, v in r["scores"].items() if v is not None
            }
            for attr, value in r["attributes"].items():
                assert s.metadata[attr] == value
    # the hostile record's markup and control characters are kept as data, not dropped
    tox = inspect_log.read_eval_log(str(next(p for p in paths if "_tox_" in p.name)))
    hostile = next(s for s in tox.samples if s.id == "p-hostile")
    assert hostile.output.completion.startswith("<script>")


def test_results_carry_every_figure_with_its_ci(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = audit_run(tmp_path)
    summary = summary_of(run)
    for path in _export(run, capsys):
        log = inspect_log.read_eval_log(str(path))
        suite = summary["suites"][log.eval.task]
        scores = {s.name: s for s in log.results.scores}
        metric = suite["metrics"][0]
        got = scores[metric["name"]].metrics
        assert got["estimate"].value == pytest.approx(metric["estimate"])
        assert got["ci_low"].value == pytest.approx(metric["ci_low"])
        assert got["ci_high"].value == pytest.approx(metric["ci_high"])
        attr = next(iter(metric["by"]))
        for value, cell in metric["by"][attr].items():
            m = got[f"{attr}:{value}"]
            assert (m.group, m.name) == (attr, value)
            assert m.value == pytest.approx(cell["estimate"])
            assert m.metadata["ci_high"] == pytest.approx(cell["ci_high"])
        for g in suite["groups"]:
            gap = scores[f"gap({g['score']}, {g['attribute']})"].metrics
            assert gap["ci_high"].value == pytest.approx(g["gap"]["ci_high"])
        gates = log.results.metadata["lm_audit"]["gates"]
        assert [g["verdict"] for g in gates] == [g["verdict"] for g in suite["gates"]]


def test_inspect_dataframes_read_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from inspect_ai.analysis import evals_df, samples_df

    run = audit_run(tmp_path)
    paths = _export(run, capsys)
    evals = evals_df(str(paths[0].parent))
    assert sorted(evals["task_name"]) == ["bias", "tox"]
    samples = samples_df(str(paths[0].parent))
    assert len(samples) == len(records_of(run))
    tox = samples[samples["score_toxicity"].notna()]
    want = [r["scores"]["toxicity"] for r in records_of(run) if r["suite"] == "tox"]
    assert sorted(tox["score_toxicity"]) == pytest.approx(sorted(want))
    assert set(samples["metadata_group"].dropna()) == {"female", "male"}


def test_none_scores_left_out_and_random_weights_tagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from synthetic_runs import record

    extra = [record("tox", "p-unscored", 0, {"toxicity": None}, {"category": "insult"})]
    run = audit_run(tmp_path, random_weights=True, extra_records=extra)
    paths = _export(run, capsys)
    tox = inspect_log.read_eval_log(str(next(p for p in paths if "_tox_" in p.name)))
    unscored = next(s for s in tox.samples if s.id == "p-unscored")
    assert unscored.scores == {}
    assert "random-weights" in tox.eval.tags
    assert all(math.isfinite(m.value) for s in tox.results.scores for m in s.metrics.values())


def test_not_a_run_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path / "missing"), "--format", "inspect"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: not a run folder") and err.count("\n") == 1
