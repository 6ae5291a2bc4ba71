"""The Ray engine on a local 2-worker cluster: same records as the local engine, same cache, resume."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from audit.cli import main
from tests.mini_runs import PAIRS, bias_suite, run_records, write_pairs_suite

SUITE = bias_suite(samples=3, max_new_tokens=8)


@pytest.fixture(scope="module")
def ray_cluster():
    """One local 2-CPU Ray cluster for the module (the engine leaves a cluster it did not start)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture()
def suites(tmp_path: Path) -> list[str]:
    (tmp_path / "mini.yaml").write_text(SUITE)
    return [str(tmp_path / "mini.yaml"), str(write_pairs_suite(tmp_path))]


def _rows(run_dir: Path, keep_cached: bool = False) -> list[dict]:
    return run_records(run_dir, keep_cached, by_key=False)  # in the order written


def _run(suites: list[str], out: Path, name: str, *extra: str) -> int:
    args = ["run", "--model", "tiny-random-gpt2", "--out", str(out), "--name", name, "--no-progress"]
    for s in suites:
        args += ["--suite", s]
    return main([*args, *extra])


def test_ray_records_equal_local_records(
    ray_cluster, suites: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audit.run import runner

    monkeypatch.setattr(runner.plan_work, "__defaults__", (8,))  # many small units over both workers
    out = tmp_path / "o"
    assert _run(suites, out, "local", "--no-cache", "--seed", "7") == 0
    assert _run(suites, out, "ray", "--no-cache", "--seed", "7", "--engine", "ray", "--workers", "2") == 0
    local, distributed = _rows(out / "local"), _rows(out / "ray")
    assert len(local) == 3 * 2 * 3 * 3 + len(PAIRS)
    assert distributed == local  # same texts, scores and order
    assert len({r["completion"] for r in local if r["suite"] == "mini-bias"}) > 10  # real sampled text
    manifest = json.loads((out / "ray" / "manifest.json").read_text())
    assert manifest["engine"] == "ray" and manifest["status"] == "complete"
    assert manifest["model"]["details"]["ray_workers"] == 2
    assert (
        manifest["model"]["fingerprint"]
        == json.loads((out / "local" / "manifest.json").read_text())["model"]["fingerprint"]
    )
    # a different seed really changes the sampled texts (the equality above is not vacuous)
    assert _run(suites, out, "ray-seed8", "--no-cache", "--seed", "8", "--engine", "ray") == 0
    assert _rows(out / "ray-seed8") != local


def test_ray_shares_the_generation_cache_and_resumes(
    ray_cluster,
    suites: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LM_AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "o"
    gen_suite = suites[:1]
    assert _run(gen_suite, out, "cold", "--engine", "ray") == 0
    cold = _rows(out / "cold", keep_cached=True)
    assert not any(r["extra"]["cached"] for r in cold)
    # the cache the Ray run filled (on the driver) serves a Ray re-run and a local run completely
    assert _run(gen_suite, out, "warm-ray", "--engine", "ray") == 0
    assert _run(gen_suite, out, "warm-local") == 0
    for name in ("warm-ray", "warm-local"):
        warm = _rows(out / name, keep_cached=True)
        assert all(r["extra"]["cached"] for r in warm), name
        assert [{**r, "extra": {}} for r in warm] == [{**r, "extra": {}} for r in cold]
    # resume: cut the run short, then finish it with the Ray engine and no cache
    records = out / "cold" / "records.jsonl"
    lines = records.read_text().splitlines(keepends=True)
    records.write_text("".join(lines[:20]))
    capsys.readouterr()
    assert _run(gen_suite, out, "cold", "--engine", "ray", "--no-cache") == 0
    assert "20 records already done" in capsys.readouterr().err
    resumed = _rows(out / "cold")
    assert sorted(resumed, key=lambda r: r["key"]) == sorted(
        _rows(out / "warm-local"), key=lambda r: r["key"]
    )


def test_ray_engine_calls_an_endpoint_and_reports_its_errors(
    ray_cluster, suites: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stub_openai_server import StubOpenAI

    out = tmp_path / "o"
    with StubOpenAI(logprobs_supported=False) as stub:
        model = ["--model", f"openai:stub-model@{stub.base_url}"]
        base = ["run", "--suite", suites[0], "--out", str(out), "--no-progress", "--no-cache", *model]
        assert main([*base, "--name", "local"]) == 0
        assert main([*base, "--name", "ray", "--engine", "ray"]) == 0
        assert _rows(out / "ray") == _rows(out / "local")
        assert all("|seed=" in r["completion"] for r in _rows(out / "ray"))
        capsys.readouterr()
        code = main(
            [
                "run",
                "--suite",
                suites[1],
                "--out",
                str(out),
                "--name",
                "ll",
                "--no-progress",
                *model,
                "--engine",
                "ray",
            ]
        )
        assert code == 2  # the worker's UsageError reaches the user as one line
        err = capsys.readouterr().err
        assert "does not return prompt log-probabilities" in err
        assert "Traceback" not in err


def test_without_ray_the_engine_says_how_to_install(
    suites: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    monkeypatch.delitem(sys.modules, "audit.run.engines.ray_engine", raising=False)
    assert _run(suites[:1], tmp_path / "o", "x", "--engine", "ray") == 2
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "pip install 'lm-audit[ray]'" in lines[0]


def test_small_runs_are_cut_so_every_worker_gets_work() -> None:
    pytest.importorskip("ray")
    from audit.run.engines.ray_engine import split_units
    from audit.run.work_units import UnitEntry, WorkUnit
    from audit.suites import Item

    def unit(n: int, tag: str) -> WorkUnit:
        entries = [UnitEntry(f"{tag}{i}", 0, Item(item_id=f"{tag}{i}", prompt="p")) for i in range(n)]
        return WorkUnit("s", "generate", {}, 0, [], entries)

    units = [unit(64, "a"), unit(10, "b")]
    pieces = split_units(units, workers=2, batch_size=16)
    assert len(pieces) >= 4
    assert all(len(p.entries) <= 16 for p in pieces)
    assert [e.record_key for p in pieces for e in p.entries] == [
        e.record_key for u in units for e in u.entries
    ]
    big = [unit(64, str(i)) for i in range(20)]
    assert split_units(big, workers=2, batch_size=16) == big  # plenty of units: left alone
