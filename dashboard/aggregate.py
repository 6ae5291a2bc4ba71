"""Aggregations of the records frame for plotting (counts, point estimates, filters).

These are display aids (histograms, the spread within counterfactual sets, the records behind a
filter); every figure comes from ``audit/`` through summary.json (or, for a run without one yet, the
summary audit/ computes from its records: ``loading.provisional_summary``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.records_frame import ATTR, SCORE


def histogram(values: pd.Series, bins: int = 40, lo: float | None = None, hi: float | None = None) -> pd.DataFrame:
    """Counts per bin (aggregated here, so a 100k-record run plots 40 bars, not 100k points)."""
    v = values.dropna().to_numpy(dtype=float)
    if v.size == 0:
        return pd.DataFrame(columns=["bin_left", "bin_right", "count"])
    lo = float(v.min()) if lo is None else lo
    hi = float(v.max()) if hi is None else hi
    if hi <= lo:
        hi = lo + 1e-9
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    return pd.DataFrame({"bin_left": edges[:-1], "bin_right": edges[1:], "count": counts})


def pair_differences(df: pd.DataFrame, suite: str, score: str) -> pd.DataFrame:
    """Per counterfactual set (``pair_id`` and sample): the spread of a score across its groups."""
    col, pcol, gcol = f"{SCORE}{score}", f"{ATTR}pair_id", f"{ATTR}group"
    if col not in df or pcol not in df or gcol not in df:
        return pd.DataFrame(columns=["pair_id", "sample", "spread", "groups"])
    sub = df.loc[df["suite"] == suite, [pcol, "sample", gcol, col]].dropna()
    if sub.empty:
        return pd.DataFrame(columns=["pair_id", "sample", "spread", "groups"])
    agg = sub.groupby([pcol, "sample"], observed=True)[col].agg(["max", "min", "count"]).reset_index()
    agg["spread"] = agg["max"] - agg["min"]
    agg = agg.rename(columns={pcol: "pair_id", "count": "groups"})
    return agg[["pair_id", "sample", "spread", "groups"]].sort_values("spread", ascending=False)


def filter_records(
    df: pd.DataFrame,
    suites: list[str] | None = None,
    attribute: str | None = None,
    values: list[str] | None = None,
    score: str | None = None,
    score_range: tuple[float, float] | None = None,
    text: str = "",
) -> pd.DataFrame:
    """The records matching every filter (substring text search, case-insensitive, not a regex)."""
    mask = pd.Series(True, index=df.index)
    if suites:
        mask &= df["suite"].isin(suites)
    if attribute and values and f"{ATTR}{attribute}" in df:
        mask &= df[f"{ATTR}{attribute}"].isin(values)
    if score and score_range and f"{SCORE}{score}" in df:
        s = df[f"{SCORE}{score}"]
        mask &= s.between(score_range[0], score_range[1])
    if text:
        needle = text.lower()
        mask &= df["prompt"].str.lower().str.contains(needle, regex=False) | df["completion"].str.lower().str.contains(
            needle, regex=False
        )
    return df[mask]

