"""Aggregations of the records frame for plotting (counts, point estimates, filters).

These are display aids (histograms, the records behind a filter, per-group means when a run has no
summary.json yet); every statistic with a CI comes from ``audit/`` through summary.json.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.loading import ATTR, SCORE

# Which direction is better, for score keys ("higher" or "lower").
SCORE_DIRECTION = {
    "toxicity": "lower",
    "sentiment": "higher",
    "sentiment_negative": "lower",
    "sentiment_positive": "higher",
    "regard": "higher",
    "factual": "higher",
    "factual_exact": "higher",
    "factual_contains": "higher",
    "factual_semantic": "higher",
    "refusal": "higher",
}



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


def group_means(df: pd.DataFrame, score: str, attribute: str) -> pd.DataFrame:
    """Point estimates per attribute value: mean score and n (no CI; a fallback when summary.json
    lacks the section)."""
    col, acol = f"{SCORE}{score}", f"{ATTR}{attribute}"
    if col not in df or acol not in df:
        return pd.DataFrame(columns=["value", "estimate", "n"])
    sub = df[[acol, col]].dropna()
    out = sub.groupby(acol, observed=True)[col].agg(["mean", "count"]).reset_index()
    out.columns = ["value", "estimate", "n"]
    out["value"] = out["value"].astype(str)
    return out


def toxicity_by_prompt(df: pd.DataFrame, attribute: str | None, threshold: float = 0.5) -> pd.DataFrame:
    """Expected maximum toxicity (mean over prompts of the max over samples) and toxicity
    probability (share of prompts with a sample >= threshold) per attribute value, from records."""
    col = f"{SCORE}toxicity"
    if col not in df:
        return pd.DataFrame(columns=["value", "expected_max_toxicity", "toxicity_probability", "prompts"])
    keys = ["suite", "item_id"]
    acol = f"{ATTR}{attribute}" if attribute else None
    cols = [*keys, col] + ([acol] if acol and acol in df else [])
    sub = df[cols].dropna(subset=[col])
    per_prompt = sub.groupby(keys, observed=True).agg(max_tox=(col, "max"), **({"value": (acol, "first")} if acol and acol in df else {}))
    if "value" not in per_prompt:
        per_prompt["value"] = "all"
    per_prompt["hit"] = per_prompt["max_tox"] >= threshold
    out = per_prompt.groupby("value", observed=True).agg(
        expected_max_toxicity=("max_tox", "mean"), toxicity_probability=("hit", "mean"), prompts=("max_tox", "size")
    )
    out = out.reset_index()
    out["value"] = out["value"].astype(str)
    return out


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


def score_direction(score: str) -> str:
    return SCORE_DIRECTION.get(score, "higher" if score.startswith("ll_") else "lower")
