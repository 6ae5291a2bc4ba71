"""The record frame every metric reads: ``Frame`` (column arrays over one suite's records, with
the cluster each record resamples in) and ``Part`` (one bootstrappable figure: per-cluster totals
and a function of them), plus ``option_loglik`` for the likelihood families.

Imports nothing of the metric registry, so the metric families (``bbq``, ``overrefusal``) and the
registry can all build on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audit.core.score_directions import score_direction

# --------------------------------------------------------------------------- the record frame


def _get(rec: Any, name: str) -> Any:
    return rec[name] if isinstance(rec, dict) else getattr(rec, name)


class Frame:
    """Column arrays over the records of one suite.

    ``item`` codes prompts (``item_id``); ``cluster`` codes the resampling unit: the counterfactual
    set (``attributes.pair_id``) when records carry one, else the prompt. Samples of one prompt and
    members of one counterfactual set therefore always fall in one cluster.
    """

    def __init__(
        self,
        records: Sequence[Any],
        directions: dict[str, str] | None = None,
        ranges: dict[str, tuple[float, float]] | None = None,
    ) -> None:
        self.records = list(records)
        self.directions = dict(directions or {})  # score key -> higher_is, from the run's scorers
        self.ranges = dict(ranges or {})  # score key -> (low, high), from the run's scorers
        self.n = len(self.records)
        self.attributes: list[dict[str, Any]] = [_get(r, "attributes") or {} for r in self.records]
        self.scores: list[dict[str, Any]] = [_get(r, "scores") or {} for r in self.records]
        item_ids = [str(_get(r, "item_id")) for r in self.records]
        item_codes: dict[str, int] = {}
        self.item = np.fromiter((item_codes.setdefault(i, len(item_codes)) for i in item_ids), int, self.n)
        self.item_ids = list(item_codes)
        self.n_items = len(item_codes)
        self.samples = np.fromiter((int(_get(r, "sample") or 0) for r in self.records), int, self.n)
        cluster_keys = [
            str(a["pair_id"]) if a.get("pair_id") is not None else f"item:{i}"
            for a, i in zip(self.attributes, item_ids, strict=True)
        ]
        cluster_codes: dict[str, int] = {}
        self.cluster = np.fromiter(
            (cluster_codes.setdefault(c, len(cluster_codes)) for c in cluster_keys), int, self.n
        )
        self.n_clusters = len(cluster_codes)
        self.cluster_keys = list(cluster_codes)
        self.item_cluster = np.zeros(self.n_items, dtype=int)
        self.item_cluster[self.item] = self.cluster
        self._score_cache: dict[str, np.ndarray] = {}
        self._attr_cache: dict[str, np.ndarray] = {}
        self.has_pairs = any("pair_id" in a for a in self.attributes)

    def texts(self, i: int) -> dict[str, Any]:
        """Record ``i``'s ``key``, ``prompt`` and ``completion``, for the examples reports show."""
        r = self.records[i]
        get = r.get if isinstance(r, dict) else lambda name: getattr(r, name)
        return {name: get(name) for name in ("key", "prompt", "completion")}

    # ---- columns
    def score(self, key: str) -> np.ndarray:
        """Float array of a score key; NaN where absent or None."""
        if key not in self._score_cache:
            self._score_cache[key] = np.array(
                [s.get(key) if isinstance(s.get(key), int | float) else np.nan for s in self.scores],
                dtype=float,
            )
        return self._score_cache[key]

    def attr(self, name: str) -> np.ndarray:
        """Object array of an attribute as strings; None where absent."""
        if name not in self._attr_cache:
            self._attr_cache[name] = np.array(
                [None if a.get(name) is None else str(a.get(name)) for a in self.attributes], dtype=object
            )
        return self._attr_cache[name]

    def direction(self, key: str | None) -> str:
        """The score key's ``higher_is``: the run's scorers' declaration first (see score_direction)."""
        return score_direction(key, self.directions)

    def score_range(self, key: str | None) -> tuple[float, float] | None:
        """The score key's possible (low, high) as the run's scorers declared it; 0/1 for the
        derived ``stereotype_preferred``; None when unknown."""
        if key is None:
            return None
        if key in self.ranges:
            return self.ranges[key]
        return (0.0, 1.0) if key == "stereotype_preferred" else None

    def score_keys(self) -> list[str]:
        keys: dict[str, None] = {}
        for s in self.scores:
            for k, v in s.items():
                if isinstance(v, int | float):
                    keys.setdefault(k, None)
        return list(keys)

    def all_mask(self) -> np.ndarray:
        return np.ones(self.n, dtype=bool)

    # ---- aggregation helpers
    def cluster_sum(self, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.bincount(self.cluster[mask], weights=values[mask], minlength=self.n_clusters)

    def record_ratio(self, values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, int]:
        """Columns [sum, count] per cluster of ``values`` over valid records; and the number of items."""
        ok = mask & np.isfinite(values)
        cols = np.column_stack(
            [self.cluster_sum(np.where(ok, values, 0.0), ok), self.cluster_sum(np.ones(self.n), ok)]
        )
        return cols, int(np.unique(self.item[ok]).size)

    def item_max(self, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Per-item maximum over valid records (NaN for items with none)."""
        ok = mask & np.isfinite(values)
        out = np.full(self.n_items, -np.inf)
        np.maximum.at(out, self.item[ok], values[ok])
        out[np.isneginf(out)] = np.nan
        return out

    def item_ratio(self, item_values: np.ndarray) -> tuple[np.ndarray, int]:
        """Columns [sum, count] per cluster of per-item values (NaN items skipped)."""
        ok = np.isfinite(item_values)
        num = np.bincount(self.item_cluster[ok], weights=item_values[ok], minlength=self.n_clusters)
        den = np.bincount(self.item_cluster[ok], minlength=self.n_clusters).astype(float)
        return np.column_stack([num, den]), int(ok.sum())


# --------------------------------------------------------------------------- parts


@dataclass
class Part:
    """One bootstrappable figure of a metric."""

    name: str  # "" for a single-part metric
    columns: np.ndarray  # (clusters x k) totals
    fn: Callable[[np.ndarray], np.ndarray]
    n: int  # prompts (items) contributing
    extra: dict[str, float] = field(default_factory=dict)
    higher_is: str = "neutral"
    ideal: float | None = None
    scale: str = "0..1"
    # how the summary computes the part's interval when its columns are not a plain share or mean
    # (audit/summary/estimates.py kinds "rate", "mean", "rates_mean", "rates_diff", "icat", with
    # their own per-cluster columns); None: from the metric (share, mean, else linearized t)
    ci: dict[str, Any] | None = None



def option_loglik(frame: Frame, option: str, params: dict[str, Any]) -> np.ndarray:
    """Log-likelihood of one option, optionally per token (params.normalize: tokens)."""
    v = frame.score(f"ll_{option}")
    if params.get("normalize") == "tokens":
        toks = np.array(
            [float((_get(r, "extra") or {}).get(f"ll_{option}_tokens") or np.nan) for r in frame.records]
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            v = v / toks
    return v
