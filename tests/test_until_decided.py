"""``--until-decided``: rounds of whole counterfactual sets until every gate is decided, valid
under optional stopping (Bonferroni alpha spending over the looks), and the records equal a fixed
run over the same prompts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audit.cli import main
from audit.run.until_decided import schedule, spent_level
from audit.stats.intervals import t_cluster_mean
from tests.mini_runs import bias_suite, run_records

SUITE = bias_suite(
    "mini-seq",
    title="Mini suite for sequential runs",
    description="two groups over three templates, with one easy and one undecidable gate",
    samples=1,
    max_new_tokens=4,
    body="""
scorers: [sentiment]
metrics:
  - {name: always, metric: rate, score: sentiment, params: {threshold: -100}}
gates:
  - {metric: always, op: "<=", threshold: 1.0}
""",
)


def test_schedule_and_level() -> None:
    assert schedule(4, 16) == [4, 8, 16]
    assert schedule(10, 400)[-1] == 400 and len(schedule(10, 400)) == 4
    assert spent_level(0.95, 4) == 0.9875


def test_error_rate_under_optional_stopping_is_at_most_alpha() -> None:
    """A mean exactly at the threshold (0): any PASS or FAIL is an error. Looking 4 times and
    stopping at the first decision keeps the error rate <= 5% with the spent level; judging every
    look at 95% inflates it."""
    rng = np.random.default_rng(5)
    looks = schedule(10, 80)
    level = spent_level(0.95, len(looks))
    err_spent = err_naive = 0
    reps = 1000
    for _ in range(reps):
        y = rng.normal(0, 1, looks[-1])
        decided_spent = decided_naive = False
        for n in looks:
            s, m = y[:n], np.ones(n)
            a, b = t_cluster_mean(s, m, level), t_cluster_mean(s, m, 0.95)
            decided_spent |= a["ci_low"] > 0 or a["ci_high"] < 0
            decided_naive |= b["ci_low"] > 0 or b["ci_high"] < 0
        err_spent += decided_spent
        err_naive += decided_naive
    assert err_spent / reps <= 0.05
    assert err_naive / reps > err_spent / reps


def test_stops_early_when_easy_and_spends_the_budget_when_hard(tmp_path: Path) -> None:
    suite = tmp_path / "seq.yaml"
    suite.write_text(SUITE)
    base = ["run", "--suite", str(suite), "--model", "tiny-random-gpt2", "--no-progress", "--limit", "4"]
    assert main([*base, "--out", str(tmp_path / "o"), "--name", "easy", "--until-decided", "--budget", "16"]) == 0
    easy = json.loads((tmp_path / "o" / "easy" / "summary.json").read_text())
    assert easy["sequential"]["stopped_early"] is True and len(easy["sequential"]["rounds"]) == 1
    assert easy["suites"]["mini-seq"]["gates"][0]["verdict"] == "PASS"
    # p = 1 exactly, gate ">= 1": the CI always straddles, so every look is spent
    hard_suite = tmp_path / "hard.yaml"
    hard_suite.write_text(SUITE.replace('op: "<="', 'op: ">="'))
    hard = ["run", "--suite", str(hard_suite), "--model", "tiny-random-gpt2", "--no-progress", "--limit", "4"]
    assert main([*hard, "--out", str(tmp_path / "o"), "--name", "hard", "--until-decided", "--budget", "16"]) == 1
    s = json.loads((tmp_path / "o" / "hard" / "summary.json").read_text())
    seq = s["sequential"]
    assert [r["limit"] for r in seq["rounds"]] == [4, 8, 16] and seq["stopped_early"] is False
    assert s["suites"]["mini-seq"]["gates"][0]["verdict"] == "INCONCLUSIVE"
    assert seq["ci_level_per_look"] == spent_level(0.95, 3)
    # the same records as one fixed run over the final prompts
    fixed = ["run", "--suite", str(hard_suite), "--model", "tiny-random-gpt2", "--no-progress", "--limit", "16"]
    main([*fixed, "--out", str(tmp_path / "f"), "--name", "fixed", "--no-cache"])
    got = run_records(tmp_path / "o" / "hard")
    assert len(got) >= 16 and got == run_records(tmp_path / "f" / "fixed")
    # gate and report judge the sequential run at its spent level, not at 95%
    manifest = json.loads((tmp_path / "o" / "hard" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["sequential"]["look_status"] == "complete"
    from audit.summary.build import build_summary

    rebuilt = build_summary(tmp_path / "o" / "hard", self_audit=False)
    assert rebuilt["stats"]["ci_level"] == spent_level(0.95, 3) == rebuilt["sequential"]["ci_level_per_look"]
    fixed_summary = build_summary(tmp_path / "f" / "fixed", self_audit=False)
    assert fixed_summary["stats"]["ci_level"] == 0.95 and "sequential" not in fixed_summary
    g_seq = rebuilt["suites"]["mini-seq"]["gates"][0]
    g_fix = fixed_summary["suites"]["mini-seq"]["gates"][0]
    assert g_seq["ci_low"] < g_fix["ci_low"]  # the same records, a wider interval


def _config(suite: Path, limit: int) -> object:
    from audit.run.config import RunConfig
    from audit.run.work_units import SuiteRequest

    return RunConfig(suites=[SuiteRequest(suite=str(suite), limit=limit)], model="tiny-random-gpt2")


def test_a_look_that_adds_no_records_spends_no_alpha(tmp_path: Path) -> None:
    """The suite holds 18 prompts: of the planned limits 4, 11, 26, 64 the last keeps no prompt the
    one before did not, so it is dropped before the run and alpha is spent over three looks."""
    from audit.run.until_decided import plan_looks
    from audit.stats.sequential import looks_that_add

    suite = tmp_path / "seq.yaml"
    suite.write_text(SUITE)
    ids, planned, looks, sizes = plan_looks(_config(suite, 4), 64, 4)
    assert ids == ["mini-seq"] and planned == [4, 11, 26, 64]
    assert sizes(26) == sizes(64) == [18] and looks == [4, 11, 26]
    assert spent_level(0.95, len(looks)) == spent_level(0.95, 3)
    assert looks_that_add([2, 4, 8], lambda n: [min(n, 4), min(n, 9)]) == [2, 4, 8]  # one suite still grows
    assert looks_that_add([2, 4, 8], lambda n: [min(n, 3)]) == [2, 4]


def test_a_resume_with_another_budget_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "seq.yaml"
    suite.write_text(SUITE)
    run = tmp_path / "o" / "r"
    run.mkdir(parents=True)
    sequential = {"planned_limits": [4, 8, 16], "schedule": [4, 8, 16], "budget": 16, "ci_level": 0.95,
                  "look": 2, "look_status": "running", "limits": {"mini-seq": 8}, "rounds": []}
    (run / "manifest.json").write_text(json.dumps({"run_id": "r", "status": "running", "suites": {"mini-seq": {
        "path": str(suite)}}, "sequential": sequential}))
    base = ["run", "--suite", str(suite), "--model", "tiny-random-gpt2", "--no-progress", "--limit", "4",
            "--until-decided", "--out", str(tmp_path / "o"), "--name", "r"]
    assert main([*base, "--budget", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert "different planned limits" in err and err.count("\n") == 0


# --------------------------------------------------------------------------- resume after SIGKILL

KILLS = 20
PER_CHAIN = 7  # kills before a chain is resumed to its end (three chains)


def _rows(run_dir: Path) -> dict[str, dict]:
    """Records by key (timings and the cache flag dropped); a torn last line is skipped, as a resume cuts it."""
    path = run_dir / "records.jsonl"
    out = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        r.pop("timings")
        r["extra"].pop("cached", None)
        out[r["key"]] = r
    return out


def _manifest(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def test_twenty_sigkills_resume_to_the_uninterrupted_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILLs at seeded random points of a three-look run: a killed folder reads ``interrupted``
    unless the run had finished before the kill landed (then it says ``complete`` and holds the whole
    run), every record it holds is the uninterrupted run's, and re-running the same
    command finishes with exactly the uninterrupted run's records, looks and verdict. The runs are
    forked from a forkserver that imported lm-audit once (it runs no torch op), so a kill and resume
    costs a fork, not a Python start-up."""
    import multiprocessing
    import random
    import time

    from audit.store.status import run_status

    suite = tmp_path / "hard.yaml"  # never decided: every look of [4, 8, 16] is taken
    suite.write_text(SUITE.replace('op: "<="', 'op: ">="'))
    out = tmp_path / "o"

    def args(name: str) -> list[str]:
        return ["run", "--suite", str(suite), "--model", "tiny-random-gpt2", "--no-progress", "--limit", "4",
                "--until-decided", "--budget", "16", "--no-cache", "--out", str(out), "--name", name]

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # tiny products: threads only contend
        monkeypatch.setenv(var, "1")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["audit.cli", "audit.run.until_decided", "audit.models.hf", "audit.summary.build"])
    ref = ctx.Process(target=main, args=(args("ref"),))
    ref.start()
    ref.join(300)
    assert ref.exitcode == 0 and _manifest(out / "ref")["status"] == "complete"
    reference = _rows(out / "ref")
    verdict = json.loads((out / "ref" / "summary.json").read_text())["suites"]["mini-seq"]["gates"][0]["verdict"]
    assert len(reference) >= 16 and verdict == "INCONCLUSIVE"

    rng = random.Random(27)
    kills = chains = 0
    held_at_kill: list[int] = []
    while kills < KILLS:
        chains += 1
        run = out / f"chain{chains}"
        in_chain = 0
        finished_before_kill = False
        while True:
            # the kill point: once the folder holds a few more records (or none more), a random instant
            # later: in start-up, inside a look, between looks (its summary, the manifest update) or
            # while finishing. After PER_CHAIN kills (or the 20th) the chain is resumed to its end.
            present = len(_rows(run))
            target, extra = min(present + rng.randint(0, 4), len(reference)), rng.uniform(0.0, 1.0)
            p = ctx.Process(target=main, args=(args(run.name),))
            p.start()
            if in_chain == PER_CHAIN:
                p.join(300)
                break
            while p.is_alive() and len(_rows(run)) < target:
                time.sleep(0.01)
            p.join(extra)
            if p.exitcode is not None:  # it finished before the kill: this chain is done
                break
            p.kill()
            p.join()
            manifest = _manifest(run)
            if manifest is not None and manifest["status"] == "complete":
                # the kill landed after the run had finished its work (in the interpreter's exit):
                # the folder may say complete only if it is, which the checks below the loop assert
                finished_before_kill = True
                break
            kills += 1
            in_chain += 1
            if manifest is not None:
                assert run_status(run, manifest) == "interrupted"
            got = _rows(run)
            held_at_kill.append(len(got))
            assert all(reference[k] == r for k, r in got.items()), f"kill {kills}: a record differs"
            if kills == KILLS:  # resume the last chain to its end
                p = ctx.Process(target=main, args=(args(run.name),))
                p.start()
                p.join(300)
                break
        assert (finished_before_kill or p.exitcode == 0) and _manifest(run)["status"] == "complete"
        assert _rows(run) == reference, f"chain {chains}: the resumed records differ"
        summary = json.loads((run / "summary.json").read_text())
        assert [r["limit"] for r in summary["sequential"]["rounds"]] == [4, 8, 16]
        assert summary["suites"]["mini-seq"]["gates"][0]["verdict"] == verdict
    assert len(set(held_at_kill)) >= 3, f"the kills landed in too few phases: {held_at_kill}"
