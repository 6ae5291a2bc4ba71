"""Verdicts that are right, not only decided (#25 item 7), by seeded simulation at the sizes the
``standard`` profile runs: a group-blind model (its scores do not depend on the group) must pass a
bias gap gate with probability >= 0.8, and a planted gap of 1.5 δ on one group must fail it with
probability >= 0.8. The gate is the real one: ``audit.stats.intervals.pairwise_gap`` judged as
``gap <= δ`` on the CI (PASS: upper bound <= δ; FAIL: lower bound > δ).

Noise models, measured on SmolLM2-135M (docs/statistics.md, "Bias thresholds"):
- likelihood suites (bias-likelihood): one forward pass, no sampling; a group-blind model's set
  members then differ only by float rounding (SD 1e-6 here; <= 1e-4 measured across batch sizes);
- sampled suites (bias-counterfactual, names-intersectional): VADER sentiment of one completion
  has SD 0.40 around its prompt's mean (256 gender records, k=3), set effects SD 0.3 cancel in the
  pairs, and shared seeds do not correlate the members' samples (variance_split crn reduction
  -0.13, i.e. none), so the samples are independent.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from scipy import stats as sps

from audit.run.work_units import load_profile, plan_suites
from audit.stats.intervals import pairwise_gap

REPS = 200  # default replications
RECORD_SD = 0.40
ROUNDING_SD = 1e-6


def _sets_for_power(sd_diff: float, delta: float, n_pairs: int, power: float = 0.8) -> int:
    """docs/statistics.md's planning formula: n = ((z_0.975 + z_((1+p)/2)) * SD_diff / δ)^2, each
    of m pairs at power p^(1/m)."""
    per_pair = power ** (1.0 / n_pairs)
    z = sps.norm.ppf(0.975) + sps.norm.ppf((1 + per_pair) / 2)
    return int(np.ceil((z * sd_diff / delta) ** 2))


def _verdict(cells: np.ndarray, delta: float) -> str:
    res = pairwise_gap([str(i) for i in range(cells.shape[1])], 0.95, cells=cells)
    if res["ci_high"] <= delta:
        return "PASS"
    return "FAIL" if res["ci_low"] > delta else "INCONCLUSIVE"


def _rates(
    n_sets: int, n_groups: int, k: int, sd: float, delta: float, planted: float, seed: int, reps: int = REPS
) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    out: dict[str, float] = defaultdict(float)
    for _ in range(reps):
        base = rng.normal(0, 0.3, (n_sets, 1))
        cells = base + rng.normal(0, sd, (n_sets, n_groups, k)).mean(axis=2)
        cells[:, 0] -= planted
        out[_verdict(cells, delta)] += 1 / reps
    return dict(out)


def _profile_gates() -> list[tuple[str, str, int, int, int, float]]:
    """(suite, axis, sets, groups, samples, δ) of every gap gate of the bias suites in ``standard``."""
    out = []
    for ps in plan_suites(load_profile("standard"), seed=0):
        suite = ps.loaded.suite
        for gate in suite.gates:
            if not gate.metric.startswith("gap("):
                continue
            axis = gate.metric[4:-1].split(",")[1].strip()
            sets: dict[str, set[str]] = defaultdict(set)
            for it in ps.items:
                if axis in it.attributes:
                    sets[it.attributes["pair_id"]].add(str(it.attributes[axis]))
            n_groups = max(len(g) for g in sets.values())
            full = sum(len(g) == n_groups for g in sets.values())
            # a marginal of a crossed suite (gender of gender×race) averages its cells
            cells_per_group = max(1, round(len({it.item_id for it in ps.items if it.attributes["pair_id"] in sets})
                                          / max(1, len(sets)) / n_groups))
            out.append((suite.id, axis, full, n_groups, ps.generation.samples * cells_per_group, gate.threshold))
    return out


GATES = _profile_gates()
LIKELIHOOD = [g for g in GATES if g[0] == "bias-likelihood"]
SAMPLED = [g for g in GATES if g[0] != "bias-likelihood"]


def test_the_profile_holds_every_bias_gap_gate() -> None:
    suites = {g[0] for g in GATES}
    assert suites == {"bias-likelihood", "bias-counterfactual", "names-intersectional"}
    assert len(LIKELIHOOD) == 7 and len(SAMPLED) == 10
    assert all(g[2] >= 30 for g in GATES)


@pytest.mark.parametrize("gate", LIKELIHOOD, ids=lambda g: f"{g[0]}:{g[1]}")
def test_likelihood_gates_pass_a_blind_model_and_fail_a_planted_gap(gate: tuple) -> None:
    _, _axis, n_sets, n_groups, k, delta = gate
    blind = _rates(n_sets, n_groups, k, ROUNDING_SD, delta, 0.0, seed=1, reps=40)
    planted = _rates(n_sets, n_groups, k, ROUNDING_SD, delta, 1.5 * delta, seed=2, reps=40)
    assert blind.get("PASS", 0) >= 0.8, blind
    assert planted.get("FAIL", 0) >= 0.8, planted


def _sets_to_fail(sd_diff: float, delta: float, n_pairs: int, power: float = 0.8) -> int:
    """Sets at which a true gap of 1.5 δ puts the Bonferroni lower bound above δ with ``power``."""
    z = sps.norm.ppf(1 - 0.025 / n_pairs) + sps.norm.ppf(power)
    return int(np.ceil((z * sd_diff / (0.5 * delta)) ** 2))


REPRESENTATIVE = [g for g in SAMPLED if g[:2] in (("bias-counterfactual", "gender"), ("bias-counterfactual", "age"),
                                                  ("bias-counterfactual", "nationality"))]


@pytest.mark.parametrize("gate", REPRESENTATIVE, ids=lambda g: f"{g[0]}:{g[1]}")
def test_sampled_gates_decide_right_at_the_size_the_planning_formula_gives(gate: tuple) -> None:
    """At the sets the planning formulas give for power 0.9 (the larger of passing a blind model
    and failing a 1.5 δ gap; z in place of t, so sized with a margin), the simulated gate is right
    with probability >= 0.8 both ways."""
    _, _axis, _, n_groups, k, delta = gate
    sd_diff = RECORD_SD * np.sqrt(2 / k)
    m = n_groups * (n_groups - 1) // 2
    n = max(_sets_for_power(sd_diff, delta, m, 0.9), _sets_to_fail(sd_diff, delta, m, 0.9))
    blind = _rates(n, n_groups, k, RECORD_SD, delta, 0.0, seed=3, reps=100)
    planted = _rates(n, n_groups, k, RECORD_SD, delta, 1.5 * delta, seed=4, reps=100)
    assert blind.get("PASS", 0) >= 0.8, (n, blind)
    assert planted.get("FAIL", 0) >= 0.8, (n, planted)


@pytest.mark.xfail(strict=True, reason="the sampled sentiment gaps (δ = 0.1, VADER SD 0.40) need about 340-740 "
                   "sets per axis at k=1; the 30-minute standard profile runs 100: a blind model passes "
                   "them far less often than 0.8 (docs/statistics.md)")
@pytest.mark.parametrize("gate", [g for g in SAMPLED if g[0] == "bias-counterfactual" and g[1] in ("gender", "nationality")],
                         ids=lambda g: f"{g[0]}:{g[1]}")
def test_sampled_gates_at_the_profile_size(gate: tuple) -> None:
    _, _axis, n_sets, n_groups, k, delta = gate
    blind = _rates(n_sets, n_groups, k, RECORD_SD, delta, 0.0, seed=5, reps=100)
    assert blind.get("PASS", 0) >= 0.8, blind


@pytest.mark.parametrize("gate", [g for g in SAMPLED if g[0] == "names-intersectional"], ids=lambda g: f"{g[0]}:{g[1]}")
def test_names_gates_at_the_profile_size(gate: tuple) -> None:
    """names-intersectional holds 72 sets, so the standard profile samples each prompt five times:
    there a blind model passes its gaps with probability >= 0.8. A planted 1.5 δ gap fails with
    probability 0.59-0.70 only (never passes): below #25's 0.8, since deciding it takes more sets
    than the suite holds (more names or templates)."""
    _, _axis, n_sets, n_groups, k, delta = gate
    assert n_sets == 72 and k >= 5  # k: samples x the cells a marginal averages
    blind = _rates(n_sets, n_groups, k, RECORD_SD, delta, 0.0, seed=6, reps=100)
    planted = _rates(n_sets, n_groups, k, RECORD_SD, delta, 1.5 * delta, seed=7, reps=100)
    assert blind.get("PASS", 0) >= 0.8, blind
    assert planted.get("FAIL", 0) >= 0.55 and planted.get("PASS", 0) == 0, planted
