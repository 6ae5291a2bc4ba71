"""The runner end to end on tiny models: files written, resume after SIGKILL, cache, offline errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audit.cli import main
from tests.mini_runs import PAIRS, bias_suite, run_records, write_pairs_suite


def _suite(tmp_path: Path, samples: int = 2, tokens: int = 8) -> Path:
    p = tmp_path / "mini.yaml"
    p.write_text(bias_suite(description="three templates over two gender groups, for runner tests",
                            samples=samples, max_new_tokens=tokens))
    return p


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "audit", *args]


def test_run_writes_manifest_records_and_summary(tmp_path: Path) -> None:
    code = main(["run", "--suite", str(_suite(tmp_path)), "--model", "tiny-random-gpt2", "--out", str(tmp_path / "o"),
                 "--name", "x", "--no-progress"])
    assert code == 0
    run = tmp_path / "o" / "x"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["model"]["name"] == "tiny-random-gpt2" and manifest["model"]["random_weights"] is True
    assert manifest["suites"]["mini-bias"]["generation"]["samples"] == 2
    assert manifest["suites"]["mini-bias"]["data_hash"]
    assert {"torch", "transformers", "lm-audit"} <= set(manifest["packages"])
    rows = run_records(run)
    assert len(rows) == 3 * 2 * 3 * 2  # templates x groups x forms x samples
    assert len({r["key"] for r in rows}) == len(rows)
    r0 = rows[0]
    assert set(r0["attributes"]) >= {"axis", "group", "term", "pair_id", "context"}
    assert r0["prompt"].startswith("The ")
    assert (run / "summary.json").is_file()


def test_counterfactual_pairs_share_their_random_stream(tmp_path: Path) -> None:
    """Same template, form and sample across groups -> same seed (different prompt, so other text)."""
    from audit.run.work_units import SuiteRequest, plan_suites, plan_work

    planned = plan_suites([SuiteRequest(suite=str(_suite(tmp_path)))], seed=0)
    units = plan_work(planned, seed=0, done=set())
    entries = [e for u in units for e in u.entries]
    by_pair: dict[tuple[str, int], set[str]] = {}
    for e in entries:
        by_pair.setdefault((e.item.attributes["pair_id"], e.sample), set()).add(e.seed_key)
    assert all(len(keys) == 1 for keys in by_pair.values())
    assert len(by_pair) == 3 * 3 * 2


def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path: Path) -> None:
    suite = _suite(tmp_path, samples=20, tokens=16)
    env = {**os.environ, "LM_AUDIT_UNIT_SIZE": "8", "LM_AUDIT_CACHE_DIR": str(tmp_path / "cache-a")}
    args = ["run", "--suite", str(suite), "--model", "tiny-random-gpt-neo", "--out", str(tmp_path / "o"), "--name", "r",
            "--batch-size", "4", "--no-progress"]
    proc = subprocess.Popen(_cli(*args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = tmp_path / "o" / "r" / "records.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if records.exists() and records.read_text().count("\n") >= 24:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = records.read_text().count("\n")
    assert 0 < n_before < 360, "the kill must land mid-run"
    with records.open("a") as fh:  # and a torn line, as if the kill had cut a write
        fh.write('{"key": "mini-bias/worked:gender:female:0/19", "completion": "tor')
    # resume: same --out and --name; a fresh cache, so nothing can come from it
    env["LM_AUDIT_CACHE_DIR"] = str(tmp_path / "cache-b")
    done = subprocess.run(_cli(*args), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{n_before} records already done" in done.stderr
    # the uninterrupted reference run
    env["LM_AUDIT_CACHE_DIR"] = str(tmp_path / "cache-c")
    ref_args = [a if a != "r" else "ref" for a in args]
    ref = subprocess.run(_cli(*ref_args), env=env, capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    resumed, reference = run_records(tmp_path / "o" / "r"), run_records(tmp_path / "o" / "ref")
    assert len(resumed) == 360
    assert resumed == reference


def test_cached_rerun_regenerates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LM_AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    base = ["run", "--suite", str(_suite(tmp_path)), "--model", "tiny-random-gpt2", "--out", str(tmp_path / "o"),
            "--no-progress"]
    assert main([*base, "--name", "a"]) == 0
    from audit.models.hf import HFBackend

    def boom(*a, **k):
        raise AssertionError("generation was not served from the cache")

    monkeypatch.setattr(HFBackend, "_generate_batch", boom)
    assert main([*base, "--name", "b"]) == 0
    rows_b = [json.loads(x) for x in (tmp_path / "o" / "b" / "records.jsonl").read_text().splitlines()]
    assert all(r["extra"]["cached"] for r in rows_b)
    assert run_records(tmp_path / "o" / "a") == run_records(tmp_path / "o" / "b")


def test_resume_refuses_a_different_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["run", "--suite", str(_suite(tmp_path)), "--out", str(tmp_path / "o"), "--name", "x", "--no-progress"]
    assert main([*base, "--model", "tiny-random-gpt2"]) == 0
    assert main([*base, "--model", "tiny-random-gpt-neo"]) == 2
    assert "different model" in capsys.readouterr().err


def test_likelihood_task_records(tmp_path: Path) -> None:
    pairs = write_pairs_suite(tmp_path, PAIRS[:2])
    assert main(["run", "--suite", str(pairs), "--model", "tiny-random-gpt2", "--out",
                 str(tmp_path / "o"), "--name", "l", "--no-progress"]) == 0
    rows = run_records(tmp_path / "o" / "l")
    assert [r["item_id"] for r in rows] == ["p0", "p1"]
    for r in rows:
        assert r["completion"] == ""
        assert r["scores"]["ll_stereotype"] < 0 and r["scores"]["ll_anti_stereotype"] < 0
        assert r["scores"]["ll_stereotype"] != r["scores"]["ll_anti_stereotype"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--suite", "no-such-suite"], "unknown suite"),
        (["--suite", "missing.yaml"], "suite file not found"),
        (["--limit", "0"], "--limit must be at least 1"),
        (["--model", "/nonexistent/model"], "model path not found"),
        (["--name", "../escape"], "invalid run name"),
    ],
)
def test_user_mistakes_get_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    full = ["run", "--out", str(tmp_path / "o"), "--no-progress", *args]
    if "--suite" not in args:
        full += ["--suite", str(_suite(tmp_path))]
    if "--model" not in args:
        full += ["--model", "tiny-random-gpt2"]
    proc = subprocess.run(_cli(*full), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_hub_id_fails_fast_offline(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        _cli("run", "--suite", str(_suite(tmp_path)), "--model", "EleutherAI/gpt-neo-125M", "--out", str(tmp_path)),
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert proc.returncode == 2
    assert "is not in the local Hugging Face cache" in proc.stderr
    assert "hf download EleutherAI/gpt-neo-125M" in proc.stderr
    assert "Traceback" not in proc.stderr
