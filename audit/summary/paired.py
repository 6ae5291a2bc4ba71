"""Paired tests of one suite's summary: sign-flip tests between every two groups of a comparison
on per-counterfactual-set means, with Cohen's dz and Holm-corrected p-values.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from audit.gates.evaluate import StatsSettings
from audit.metrics.frame import Frame
from audit.stats.resampling import clean_float, holm, sign_flip_test
from audit.summary.groups import MAX_GROUPS


def paired_tests(
    frame: Frame, comparisons: list[tuple[str, str, np.ndarray]], keys: list[str], stats: StatsSettings
) -> list[dict[str, Any]]:
    """Sign-flip tests between every two groups of a comparison, on per-counterfactual-set means."""
    if not frame.has_pairs:
        return []
    pair = frame.attr("pair_id")
    tests: list[dict[str, Any]] = []
    for label, attr, mask in comparisons:
        values = frame.attr(attr)
        m = mask & (pair != None)  # noqa: E711 - elementwise on an object array
        groups = sorted({v for v in values[m] if v is not None})
        if not 2 <= len(groups) <= MAX_GROUPS:
            continue
        pair_codes = {p: i for i, p in enumerate(sorted({p for p in pair[m]}))}
        g_codes = {g: i for i, g in enumerate(groups)}
        sel = m & np.isin(values, groups)
        pi = np.array([pair_codes[p] for p in pair[sel]], dtype=int)
        gi = np.array([g_codes[g] for g in values[sel]], dtype=int)
        cell = pi * len(groups) + gi
        size = len(pair_codes) * len(groups)
        for key in keys:
            v = frame.score(key)[sel]
            ok = np.isfinite(v)
            sums = np.bincount(cell[ok], weights=v[ok], minlength=size).reshape(-1, len(groups))
            cnts = np.bincount(cell[ok], minlength=size).reshape(-1, len(groups))
            with np.errstate(invalid="ignore", divide="ignore"):
                means = np.where(cnts > 0, sums / np.maximum(cnts, 1), np.nan)
            for a in range(len(groups)):
                for b in range(a + 1, len(groups)):
                    both = np.isfinite(means[:, a]) & np.isfinite(means[:, b])
                    if both.sum() < 2:
                        continue
                    d = means[both, a] - means[both, b]
                    seed = stats.seed + zlib.crc32(f"{label}/{key}/{groups[a]}/{groups[b]}".encode())
                    t = sign_flip_test(d, stats.permutations, seed)
                    tests.append(
                        {
                            "score": key,
                            "attribute": label,
                            "group_a": groups[a],
                            "group_b": groups[b],
                            **t.to_dict(),
                        }
                    )
    for row, p in zip(tests, holm([row["p_value"] for row in tests]), strict=True):
        row["p_holm"] = clean_float(p) if p is not None else None
    return tests
