"""Statistics: cluster bootstrap confidence intervals, paired permutation tests, Holm, effect sizes.

Everything is vectorized with numpy. The central idea is the *column bank*: every estimate we
report is a smooth function ``f`` of a few per-cluster totals (sums and counts over the records of
one prompt or one counterfactual set). A bootstrap resample is a vector of cluster weights
``w`` (how often each cluster was drawn), so a replicate of every estimate at once is
``f(w @ X)`` for the bank matrix ``X`` (clusters x columns). One weight matrix, drawn once per suite
from a seed, serves every metric, group and gap — so all of them are resampled jointly and the
whole computation is a handful of matrix products, not Python loops over records.

The resampling unit (the cluster) is a prompt, or a counterfactual set when the suite has pairs,
so the samples of one prompt (and the members of one pair) always stay together.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import product

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_PERMUTATIONS = 10000
DEFAULT_CI_LEVEL = 0.95
# largest number of weights drawn at once (rows x clusters); bounds memory for 100k-record runs
_CHUNK_CELLS = 20_000_000
# the label-permutation tests draw their chunks with Generator.random / Generator.permuted, which
# take their numbers from the stream in order, so the chunk size changes memory, not the p-value
# (at 20 M cells a 1,560-prompt test held ~470 MiB of temporaries)
_PERM_CELLS = 1_000_000
# sign-flip tests with at most this many pairs are enumerated exactly
EXACT_SIGNFLIP_MAX = 15
# fewer resampling units than this: no bootstrap CI (it would be a zero-width point)
MIN_CLUSTERS = 2


# --------------------------------------------------------------------------- bootstrap


def bootstrap_weights(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """A (resamples x n) matrix of multinomial counts: how often each of ``n`` clusters was drawn."""
    idx = rng.integers(0, n, size=(resamples, n))
    w = np.empty((resamples, n), dtype=np.float64)
    for r in range(resamples):  # a loop over resamples (not records): each bincount stays in cache
        w[r] = np.bincount(idx[r], minlength=n)
    return w


def bootstrap_totals(x: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Replicates of the column totals of ``x`` (clusters x columns) under cluster resampling.

    Returns a (resamples x columns) array. Drawn in chunks so memory stays bounded; the result
    depends only on ``seed``, ``resamples`` and the number of clusters.
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    if n == 0:
        return np.zeros((resamples, x.shape[1]))
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, _CHUNK_CELLS // max(n, 1)))
    out = np.empty((resamples, x.shape[1]))
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        w = bootstrap_weights(n, stop - start, rng)
        out[start:stop] = w @ x
    return out


def percentile_ci(replicates: np.ndarray, level: float = DEFAULT_CI_LEVEL) -> tuple[float, float]:
    """The percentile interval of bootstrap replicates (NaN replicates — e.g. a group absent from a
    resample — are ignored; all-NaN gives NaN bounds)."""
    r = np.asarray(replicates, dtype=float)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return (math.nan, math.nan)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(r, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def ratio(t: np.ndarray, num: int = 0, den: int = 1) -> np.ndarray:
    """``t[..., num] / t[..., den]`` with NaN where the denominator is 0."""
    t = np.asarray(t, dtype=float)
    d = t[..., den]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 0, t[..., num] / np.where(d > 0, d, 1.0), np.nan)


@dataclass
class Estimate:
    estimate: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, float | None]:
        return {
            "estimate": clean_float(self.estimate),
            "ci_low": clean_float(self.ci_low),
            "ci_high": clean_float(self.ci_high),
        }


def clean_float(v: float) -> float | None:
    """JSON-friendly float: NaN/inf become None, others rounded to 6 significant digits."""
    if v is None or not np.isfinite(v):
        return None
    return float(f"{float(v):.6g}")


@dataclass
class ColumnBank:
    """Per-cluster columns registered by many estimators, bootstrapped together in one pass.

    ``add`` returns a slice into the bank; an estimator is then ``f(totals[..., slice])``.
    """

    n_clusters: int
    _blocks: list[np.ndarray] = field(default_factory=list)
    _width: int = 0
    _x: np.ndarray | None = None
    point: np.ndarray | None = None
    replicates: np.ndarray | None = None

    def add(self, columns: np.ndarray) -> slice:
        cols = np.asarray(columns, dtype=float)
        if cols.ndim == 1:
            cols = cols[:, None]
        if cols.shape[0] != self.n_clusters:
            raise ValueError(f"expected {self.n_clusters} rows, got {cols.shape[0]}")
        sl = slice(self._width, self._width + cols.shape[1])
        self._blocks.append(cols)
        self._width += cols.shape[1]
        return sl

    def run(self, resamples: int, seed: int) -> None:
        x = np.hstack(self._blocks) if self._blocks else np.zeros((self.n_clusters, 0))
        self.point = x.sum(axis=0)
        self.replicates = bootstrap_totals(x, resamples, seed)
        self._x = x

    def n_contributing(self, sl: slice) -> int:
        """How many clusters hold data for the columns in ``sl``."""
        assert self._x is not None, "call run() first"
        return int(np.count_nonzero(np.any(self._x[:, sl] != 0, axis=1)))

    def estimate(
        self, sl: slice, fn: Callable[[np.ndarray], np.ndarray], level: float = DEFAULT_CI_LEVEL
    ) -> Estimate:
        """Point estimate and percentile CI; no CI (NaN) from fewer than ``MIN_CLUSTERS`` clusters,
        where a bootstrap interval would be a meaningless zero-width point."""
        assert self.point is not None and self.replicates is not None, "call run() first"
        est = float(fn(self.point[sl]))
        if self.n_contributing(sl) < MIN_CLUSTERS:
            return Estimate(est, math.nan, math.nan)
        lo, hi = percentile_ci(fn(self.replicates[:, sl]), level)
        return Estimate(est, lo, hi)

    def replicate_values(self, sl: slice, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        assert self.replicates is not None, "call run() first"
        return np.asarray(fn(self.replicates[:, sl]), dtype=float)


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_CI_LEVEL,
    clusters: Sequence[object] | np.ndarray | None = None,
) -> Estimate:
    """Mean of ``values`` with a percentile bootstrap CI; with ``clusters``, whole clusters are
    resampled (the samples of one prompt stay together)."""
    v = np.asarray(values, dtype=float)
    if clusters is None:
        codes = np.arange(v.size)
    else:
        _, codes = np.unique(np.asarray(clusters, dtype=object).astype(str), return_inverse=True)
    n = int(codes.max()) + 1 if codes.size else 0
    bank = ColumnBank(n)
    sl = bank.add(np.column_stack([np.bincount(codes, v, n), np.bincount(codes, minlength=n)]))
    bank.run(resamples, seed)
    return bank.estimate(sl, ratio, level)


# --------------------------------------------------------------------------- paired tests


@dataclass
class PairedTest:
    n_pairs: int
    mean_diff: float
    effect_size: float  # Cohen's dz = mean(d) / sd(d)
    p_value: float
    method: str

    def to_dict(self) -> dict[str, object]:
        return {
            "n_pairs": self.n_pairs,
            "mean_diff": clean_float(self.mean_diff),
            "effect_size": clean_float(self.effect_size),
            "effect_size_kind": "Cohen's dz",
            "p_value": clean_float(self.p_value),
            "method": self.method,
        }


def cohens_dz(diffs: np.ndarray) -> float:
    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        return math.nan
    sd = d.std(ddof=1)
    if sd == 0:
        return 0.0 if d.mean() == 0 else math.copysign(math.inf, d.mean())
    return float(d.mean() / sd)


def sign_flip_test(
    diffs: Sequence[float] | np.ndarray, permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0
) -> PairedTest:
    """Two-sided paired permutation test of mean(d) == 0 by random sign flips.

    Exact (all 2^n sign patterns) for n <= 15 pairs, else Monte Carlo with ``permutations`` draws
    and the (1 + hits) / (1 + draws) correction, so the p-value is never 0.
    """
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    n = d.size
    if n == 0:
        return PairedTest(0, math.nan, math.nan, math.nan, "paired permutation (no pairs)")
    obs = abs(d.sum())
    tol = 1e-12 * max(1.0, np.abs(d).sum())
    if n <= EXACT_SIGNFLIP_MAX:
        signs = np.array(list(product((1.0, -1.0), repeat=n)))
        stats = np.abs(signs @ d)
        p = float(np.mean(stats >= obs - tol))
        method = f"paired permutation (exact, {len(signs)} sign patterns)"
    else:
        rng = np.random.default_rng(seed)
        hits = 0
        chunk = max(1, min(permutations, _CHUNK_CELLS // n))
        for start in range(0, permutations, chunk):
            m = min(chunk, permutations - start)
            signs = rng.integers(0, 2, size=(m, n), dtype=np.int8) * 2 - 1
            hits += int(np.count_nonzero(np.abs(signs @ d) >= obs - tol))
        p = (1 + hits) / (1 + permutations)
        method = f"paired permutation ({permutations} sign flips)"
    return PairedTest(n, float(d.mean()), cohens_dz(d), p, method)


def paired_permutation_totals(
    xa: np.ndarray,
    xb: np.ndarray,
    fn: Callable[[np.ndarray], np.ndarray],
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> tuple[float, float]:
    """Paired permutation test of ``fn(B) - fn(A)`` for any metric given as per-cluster columns.

    ``xa`` and ``xb`` are (clusters x columns) for the same clusters under conditions A and B.
    Under the null the labels A/B are exchangeable within a cluster, so each permutation swaps
    the two rows of a random subset of clusters. Returns (observed difference, two-sided p).
    """
    xa = np.asarray(xa, dtype=float)
    xb = np.asarray(xb, dtype=float)
    n = xa.shape[0]
    obs = float(fn(xb.sum(0)) - fn(xa.sum(0)))
    if n == 0 or not np.isfinite(obs):
        return obs, math.nan
    rng = np.random.default_rng(seed)
    hits = 0
    tol = 1e-12 * max(1.0, abs(obs))
    chunk = max(1, min(permutations, _CHUNK_CELLS // n))
    for start in range(0, permutations, chunk):
        m = min(chunk, permutations - start)
        s = rng.integers(0, 2, size=(m, n)).astype(float)
        ta = s @ xa + (1 - s) @ xb
        tb = s @ xb + (1 - s) @ xa
        diff = fn(tb) - fn(ta)
        hits += int(np.count_nonzero(np.abs(diff) >= abs(obs) - tol))
    return obs, (1 + hits) / (1 + permutations)


def _range(m: np.ndarray) -> np.ndarray:
    """max - min over the last axis, ignoring NaN; NaN when fewer than two finite values."""
    finite = np.isfinite(m)
    hi = np.where(finite, m, -np.inf).max(axis=-1)
    lo = np.where(finite, m, np.inf).min(axis=-1)
    return np.where(finite.sum(axis=-1) >= 2, hi - lo, np.nan)


def gap_test_within_sets(
    cells: np.ndarray, permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0
) -> tuple[float, float]:
    """Permutation test of "no group differs" for counterfactual sets.

    ``cells`` is (sets x groups): the mean score of each group in each counterfactual set (NaN
    where a set lacks a group). The statistic is the range (max - min) of the group means over
    sets; under the null the group labels are exchangeable within a set, so each permutation
    shuffles every row. Returns (observed range, p = (1 + hits) / (1 + permutations)).
    """
    cells = np.asarray(cells, dtype=float)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a group with no finite cell: NaN mean
        col = np.nanmean(np.where(np.isfinite(cells), cells, np.nan), axis=0) if cells.size else cells
    obs = float(_range(col[None, :])[0]) if cells.size else math.nan
    if not np.isfinite(obs):
        return obs, math.nan
    rng = np.random.default_rng(seed)
    n_sets, n_groups = cells.shape
    finite = np.isfinite(cells)
    vals = np.where(finite, cells, 0.0)
    hits = 0
    chunk = max(1, min(permutations, _PERM_CELLS // max(cells.size, 1)))
    tol = 1e-12 * max(1.0, abs(obs))
    for start in range(0, permutations, chunk):
        m = min(chunk, permutations - start)
        order = np.argsort(rng.random((m, n_sets, n_groups)), axis=2)
        v = np.take_along_axis(np.broadcast_to(vals, (m, n_sets, n_groups)), order, axis=2)
        f = np.take_along_axis(np.broadcast_to(finite, (m, n_sets, n_groups)), order, axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = v.sum(axis=1) / np.where(f.sum(axis=1) > 0, f.sum(axis=1), np.nan)
        hits += int(np.count_nonzero(_range(means) >= obs - tol))
    return obs, (1 + hits) / (1 + permutations)


def gap_test_between_units(
    sums: np.ndarray,
    counts: np.ndarray,
    labels: np.ndarray,
    n_groups: int,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> tuple[float, float]:
    """Permutation test of "no group differs" when each unit (prompt) belongs to one group.

    ``sums``/``counts`` are per-unit totals of the score, ``labels`` each unit's group code. The
    statistic is the range of the record-weighted group means; each permutation shuffles the
    labels across units (all samples of a prompt move together).
    """
    sums, counts = np.asarray(sums, dtype=float), np.asarray(counts, dtype=float)
    labels = np.asarray(labels, dtype=int)
    n = labels.size

    def stat(lab: np.ndarray) -> np.ndarray:  # lab: (m, n) -> (m,)
        m = lab.shape[0]
        idx = (lab + (np.arange(m) * n_groups)[:, None]).ravel()
        s = np.bincount(idx, np.tile(sums, m), minlength=m * n_groups).reshape(m, n_groups)
        c = np.bincount(idx, np.tile(counts, m), minlength=m * n_groups).reshape(m, n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            return _range(np.where(c > 0, s / np.where(c > 0, c, 1.0), np.nan))

    obs = float(stat(labels[None, :])[0]) if n else math.nan
    if not np.isfinite(obs):
        return obs, math.nan
    rng = np.random.default_rng(seed)
    hits = 0
    tol = 1e-12 * max(1.0, abs(obs))
    chunk = max(1, min(permutations, _PERM_CELLS // max(n, 1)))
    for start in range(0, permutations, chunk):
        m = min(chunk, permutations - start)
        perm = rng.permuted(np.broadcast_to(labels, (m, n)), axis=1)
        hits += int(np.count_nonzero(stat(perm) >= obs - tol))
    return obs, (1 + hits) / (1 + permutations)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1). None/NaN pass through."""
    idx = [i for i, p in enumerate(p_values) if p is not None and np.isfinite(p)]
    out: list[float | None] = [None] * len(p_values)
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: p_values[i])):  # type: ignore[arg-type,return-value]
        adj = min(1.0, (m - rank) * float(p_values[i]))  # type: ignore[arg-type]
        running = max(running, adj)
        out[i] = running
    return out
