"""``lm-audit plan``: sample sizes per gate from a pilot SD or from a run's spread, and the
forecast matches simulation (the gap gate passes an unbiased model at the planned size)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from synthetic_runs import counterfactual_records, suite_manifest, write_run

from audit.cli import main
from audit.stats.intervals import pairwise_gap
from audit.stats.planning import n_for_equivalence


def test_planned_gap_size_passes_an_unbiased_model_with_the_stated_power() -> None:
    n = n_for_equivalence(0.2, 0.1, n_pairs=1, power=0.8)
    assert n is not None and 30 < n < 70
    rng = np.random.default_rng(3)
    passes = np.mean(
        [pairwise_gap(["a", "b"], cells=rng.normal(0, 0.3, (n, 1)) + rng.normal(0, 0.2 / np.sqrt(2), (n, 2)))["ci_high"] <= 0.1
         for _ in range(300)]
    )
    assert 0.7 <= passes <= 0.95


def test_plan_from_a_run_and_from_a_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gate = {"metric": "gap(sentiment, gender)", "op": "<=", "threshold": 0.1}
    run = write_run(tmp_path / "r", {"bias": suite_manifest(gates=[gate])}, counterfactual_records(n_pairs=20))
    assert main(["plan", "--from", str(run)]) == 0
    out = capsys.readouterr().out
    m = re.search(r"gap\(sentiment, gender\) <= 0.1: ≈ ([\d,]+) sets \(true gap 0, SD [\d.]+, have 20\)", out)
    assert m and 20 < int(m.group(1).replace(",", "")) < 200, out
    assert main(["plan", "--suite", "bias-counterfactual", "--sd", "0.2"]) == 0
    assert "sets (true gap 0, SD 0.2)" in capsys.readouterr().out
    assert main(["plan", "--power", "2", "--suite", "bias-counterfactual"]) == 2
