"""Running a policy's checks on one text: normalize, window, score with a timeout, redact.

Scorer calls run on a small thread pool per check, so a hung or slow scorer cannot hold the caller
past ``policy.scorer_timeout_s`` nor take threads from the other checks: the call is abandoned (the
thread finishes in the background) and the check fails closed, or open when the policy says so.
Every value a scorer returns must be a finite number inside the range its ``outputs`` declare;
anything else (NaN, +-inf, a string, a list, a complex, a wrong-length batch, out of range) is a
scorer fault and is handled the same way, with the reason in the decision.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from audit.guard.decision import CheckResult
from audit.guard.normalize import NormalizedText, drop_terms, normalize, variants
from audit.guard.policy import Check, Policy, check_thresholds
from audit.guard.windows import spans, word_spans
from audit.scorers.base import Scorer


class ScorerFailure(Exception):
    """A scorer raised, timed out or returned something unusable."""


class _CheckPool:
    """One check's own threads (``size`` of them). Calls queue only behind calls of the same check,
    and a call that times out is cancelled if still queued, so a hung scorer holds only its own
    threads and never starves the other checks."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"gate-{name[:12]}")

    def submit(self, fn: Callable[[list[str]], Any], texts: list[str]) -> Future[Any]:
        return self.executor.submit(fn, texts)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def _terms_pattern(terms: Sequence[str], norm_options) -> re.Pattern[str]:  # type: ignore[no-untyped-def]
    folded = sorted({normalize(t, norm_options).text.strip() for t in terms if t.strip()}, key=len, reverse=True)
    return re.compile(r"(?<![^\W_])(?:" + "|".join(re.escape(t) for t in folded) + r")(?![^\W_])")


def identity(text: str) -> NormalizedText:
    return NormalizedText(original=text, text=text, starts=list(range(len(text))), ends=list(range(1, len(text) + 1)))


class CheckRunner:
    """Evaluates checks of one policy. Build once; thread-safe for concurrent calls."""

    def __init__(self, policy: Policy, scorers: dict[int, Scorer], threads_per_check: int = 4) -> None:
        self.policy = policy
        self.scorers = scorers  # id(check) -> scorer
        self.threads_per_check = threads_per_check
        self.pools: dict[int, _CheckPool] = {}
        self._pools_lock = threading.Lock()
        self.ranges: dict[int, tuple[float, float]] = {}
        for check_id, scorer in scorers.items():
            key = next(c.score_key for c in (*policy.input_checks, *policy.output_checks) if id(c) == check_id)
            spec = next((o for o in scorer.outputs if o.key == key), None)
            if spec is not None:
                self.ranges[check_id] = (float(spec.low), float(spec.high))
        check_thresholds(policy, self.ranges)  # strictly inside the declared range, or an explicit action
        self.norm_options = policy.normalize if policy.normalize.enabled else None
        self.patterns: dict[int, re.Pattern[str]] = {
            id(c): _terms_pattern(c.terms, self.norm_options)
            for c in (*policy.input_checks, *policy.output_checks)
            if c.terms
        }
        self.neutralize = [normalize(t, self.norm_options).text.strip() for t in policy.neutralize_terms]

    # ------------------------------------------------------------------ preparation
    def prepare(self, text: str) -> list[NormalizedText]:
        """The readings of ``text`` to score (usually one; see ``normalize.variants``)."""
        norms = variants(text, self.norm_options) if self.norm_options else [identity(text)]
        return [drop_terms(n, self.neutralize) for n in norms] if self.neutralize else norms

    # ------------------------------------------------------------------ scoring
    def _pool(self, check: Check) -> _CheckPool:
        pool = self.pools.get(id(check))
        if pool is None:
            with self._pools_lock:
                pool = self.pools.setdefault(id(check), _CheckPool(check.name, self.threads_per_check))
        return pool

    def _submit(self, check: Check, texts: list[str]) -> Future[Any] | None:
        """Start scoring on the check's own bounded pool (None for term lists)."""
        if check.terms:
            return None
        return self._pool(check).submit(self.scorers[id(check)].score, texts)

    def _collect(self, check: Check, texts: list[str], future: Future[Any] | None, deadline: float) -> list[float]:
        if check.terms:
            pattern = self.patterns[id(check)]
            return [1.0 if pattern.search(t) else 0.0 for t in texts]
        assert future is not None
        try:
            out = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            future.cancel()
            raise ScorerFailure(
                f"scorer '{check.scorer_name}' timed out after {self.policy.scorer_timeout_s:g} s"
            ) from None
        except ScorerFailure:
            raise
        except Exception as exc:
            raise ScorerFailure(f"scorer '{check.scorer_name}' failed: {type(exc).__name__}: {exc!s:.200}") from None
        return self._validate(check, out, len(texts))

    def _score(self, check: Check, texts: list[str]) -> list[float]:
        deadline = time.monotonic() + self.policy.scorer_timeout_s
        return self._collect(check, texts, self._submit(check, texts), deadline)

    def _validate(self, check: Check, out: Any, n: int) -> list[float]:
        """Every value a finite real number inside the scorer's declared range, else a fault."""
        name = check.scorer_name
        if not isinstance(out, list) or len(out) != n:
            got = f"{len(out)} results" if isinstance(out, list) else type(out).__name__
            raise ScorerFailure(f"scorer '{name}' returned {got}, not one dict per text ({n})")
        low, high = self.ranges.get(id(check), (-math.inf, math.inf))
        values: list[float] = []
        for row in out:
            if not isinstance(row, dict):
                raise ScorerFailure(f"scorer '{name}' returned a {type(row).__name__}, not a dict of scores")
            value = row.get(check.score_key)
            if value is None:
                raise ScorerFailure(f"scorer '{name}' returned no '{check.score_key}' score")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ScorerFailure(
                    f"scorer '{name}' returned {type(value).__name__} for '{check.score_key}', not a number"
                )
            value = float(value)
            if not math.isfinite(value):
                raise ScorerFailure(f"scorer '{name}' returned a non-finite '{check.score_key}' ({value})")
            if not low <= value <= high:
                raise ScorerFailure(
                    f"scorer '{name}' returned '{check.score_key}' = {value:g}, outside its range [{low:g}, {high:g}]"
                )
            values.append(value)
        return values

    def _start(self, check: Check, norms: Sequence[NormalizedText]) -> dict[str, Any]:
        t0 = time.perf_counter()
        win = self.policy.windows
        pieces: list[tuple[NormalizedText, int, int]] = []
        for norm in norms:
            if check.windows:
                found = spans(norm.text, win.size_words, win.stride_words, win.sentences)
            else:
                found = [(0, len(norm.text))]
            pieces.extend((norm, a, b) for a, b in found)
        texts = [norm.text[a:b] for norm, a, b in pieces]
        job: dict[str, Any] = {"t0": t0, "pieces": pieces, "texts": texts, "future": None, "error": None}
        job["deadline"] = time.monotonic() + self.policy.scorer_timeout_s
        try:
            job["future"] = self._submit(check, texts)
        except ScorerFailure as exc:
            job["error"] = str(exc)
        return job

    def run_check(self, check: Check, stage: str, norms: Sequence[NormalizedText]) -> CheckResult:
        return self._finish(check, stage, self._start(check, norms))

    def _finish(self, check: Check, stage: str, job: dict[str, Any]) -> CheckResult:
        t0, pieces = job["t0"], job["pieces"]
        base: dict[str, Any] = dict(
            stage=stage,
            name=check.name,
            scorer=check.scorer_name,
            key=check.score_key,
            threshold=check.threshold,
            direction=check.direction,
            action=check.action,
        )
        error = job["error"]
        values: list[float] = []
        if error is None:
            try:
                values = self._collect(check, job["texts"], job["future"], job["deadline"])
            except ScorerFailure as exc:
                error = str(exc)
            except Exception as exc:  # nothing a scorer does may escape as an exception
                error = f"scorer '{check.scorer_name}' fault: {type(exc).__name__}: {exc!s:.200}"
        if error is not None or not values:
            fail_open = self.policy.fail_mode_for(check) == "open"
            return CheckResult(
                **base,
                score=None,
                flagged=not fail_open,
                error=error or f"scorer '{check.scorer_name}' scored nothing",
                failed_open=fail_open,
                latency_s=time.perf_counter() - t0,
            )
        sign = 1.0 if check.direction == "above" else -1.0
        # the worst score; among ties, the shortest span (it explains the decision best)
        worst = max(range(len(values)), key=lambda i: (sign * values[i], -(pieces[i][2] - pieces[i][1])))
        norm, a, b = pieces[worst]
        return CheckResult(
            **base,
            score=values[worst],
            flagged=check.flags(values[worst]),
            span=norm.to_original(a, b) if b > a else None,
            latency_s=time.perf_counter() - t0,
        )

    def run(self, text: str, checks: Sequence[Check], stage: str) -> list[CheckResult]:
        """All checks of one stage; scorer checks run at once, each on its own bounded pool, so a
        slow or hung scorer delays only its own check (at most ``scorer_timeout_s``)."""
        if not checks:
            return []
        norms = self.prepare(text)
        jobs = [self._start(c, norms) for c in checks]
        return [self._finish(c, stage, job) for c, job in zip(checks, jobs, strict=True)]

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()


    # ------------------------------------------------------------------ redaction
    def flagged_word_spans(self, check: Check, norms: Sequence[NormalizedText]) -> list[tuple[int, int]]:
        """Original-text spans of the words that trip ``check`` on their own."""
        out: list[tuple[int, int]] = []
        for norm in norms:
            if check.terms:
                found = [(m.start(), m.end()) for m in self.patterns[id(check)].finditer(norm.text)]
            else:
                words = word_spans(norm.text)
                unique = sorted({norm.text[a:b] for a, b in words})
                if not unique:
                    continue
                values = dict(zip(unique, self._score(check, unique), strict=True))
                found = [(a, b) for a, b in words if check.flags(values[norm.text[a:b]])]
            out.extend(norm.to_original(a, b) for a, b in found)
        return out

    def mask(self, text: str, original_spans: Sequence[tuple[int, int]]) -> str:
        merged: list[list[int]] = []
        for a, b in sorted(s for s in original_spans if s[1] > s[0]):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        out, pos = [], 0
        for a, b in merged:
            out.append(text[pos:a])
            out.append(self.policy.mask)
            pos = b
        out.append(text[pos:])
        return "".join(out)

    def redact(self, text: str, checks: Sequence[Check], stage: str) -> tuple[str | None, list[CheckResult]]:
        """Mask what trips the redact ``checks``: flagged words first, then the worst spans
        (sentences or windows), up to three rounds. Returns the redacted text and the checks of
        the final text, or ``None`` when the text still fails."""
        current = text
        for round_no in range(4):
            results = self.run(current, checks, stage)
            flagged = [(c, r) for c, r in zip(checks, results, strict=True) if r.flagged]
            if not flagged:
                return current, results
            if round_no == 3 or any(r.error for _, r in flagged):
                return None, results
            norms = self.prepare(current)
            to_mask: list[tuple[int, int]] = []
            try:
                for check, result in flagged:
                    words = self.flagged_word_spans(check, norms) if round_no == 0 else []
                    if words:
                        to_mask.extend(words)
                    elif result.span:
                        to_mask.append(result.span)
            except ScorerFailure:
                return None, results
            if not to_mask:
                return None, results
            current = self.mask(current, to_mask)
        return None, results
