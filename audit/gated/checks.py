"""Running a policy's checks on one text: normalize, window, score with a timeout, redact.

Scorer calls run on a thread pool so a hung or slow scorer cannot hold the caller past
``policy.scorer_timeout_s``: the call is abandoned (the thread finishes in the background) and the
check fails closed, or open when the policy says so.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout

from audit.gated.decision import CheckResult
from audit.gated.normalize import NormalizedText, drop_terms, normalize, variants
from audit.gated.policy import Check, Policy
from audit.gated.windows import spans, word_spans
from audit.scorers.base import Scorer


class ScorerFailure(Exception):
    """A scorer raised, timed out or returned something unusable."""


def _terms_pattern(terms: Sequence[str], norm_options) -> re.Pattern[str]:  # type: ignore[no-untyped-def]
    folded = sorted({normalize(t, norm_options).text.strip() for t in terms if t.strip()}, key=len, reverse=True)
    return re.compile(r"(?<![^\W_])(?:" + "|".join(re.escape(t) for t in folded) + r")(?![^\W_])")


def identity(text: str) -> NormalizedText:
    return NormalizedText(original=text, text=text, starts=list(range(len(text))), ends=list(range(1, len(text) + 1)))


class CheckRunner:
    """Evaluates checks of one policy. Build once; thread-safe for concurrent calls."""

    def __init__(self, policy: Policy, executor: Executor, scorers: dict[int, Scorer]) -> None:
        self.policy = policy
        self.executor = executor
        self.scorers = scorers  # id(check) -> scorer
        self.norm_options = policy.normalize.options()
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
    def _score(self, check: Check, texts: list[str]) -> list[float]:
        if check.terms:
            pattern = self.patterns[id(check)]
            return [1.0 if pattern.search(t) else 0.0 for t in texts]
        scorer = self.scorers[id(check)]
        future = self.executor.submit(scorer.score, texts)
        try:
            out = future.result(timeout=self.policy.scorer_timeout_s)
        except FutureTimeout:
            future.cancel()
            raise ScorerFailure(
                f"scorer '{check.scorer_name}' timed out after {self.policy.scorer_timeout_s:g} s"
            ) from None
        except Exception as exc:
            raise ScorerFailure(f"scorer '{check.scorer_name}' failed: {type(exc).__name__}: {exc}") from None
        if not isinstance(out, list) or len(out) != len(texts):
            raise ScorerFailure(f"scorer '{check.scorer_name}' returned {type(out).__name__}, not one dict per text")
        values: list[float] = []
        for row in out:
            value = row.get(check.score_key) if isinstance(row, dict) else None
            if value is None or value != value:  # missing, None or NaN
                raise ScorerFailure(f"scorer '{check.scorer_name}' returned no '{check.score_key}' score")
            values.append(float(value))
        return values

    def run_check(self, check: Check, stage: str, norms: Sequence[NormalizedText]) -> CheckResult:
        t0 = time.perf_counter()
        win = self.policy.windows
        pieces: list[tuple[NormalizedText, int, int]] = []
        for norm in norms:
            if check.windows:
                found = spans(norm.text, win.size_words, win.stride_words, win.sentences)
            else:
                found = [(0, len(norm.text))]
            pieces.extend((norm, a, b) for a, b in found)
        base = dict(
            stage=stage,
            name=check.name,
            scorer=check.scorer_name,
            key=check.score_key,
            threshold=check.threshold,
            direction=check.direction,
            action=check.action,
        )
        try:
            values = self._score(check, [norm.text[a:b] for norm, a, b in pieces])
        except ScorerFailure as exc:
            fail_open = self.policy.fail_mode_for(check) == "open"
            return CheckResult(
                **base,
                score=None,
                flagged=not fail_open,
                error=str(exc),
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
        if not checks:
            return []
        norms = self.prepare(text)
        return [self.run_check(c, stage, norms) for c in checks]

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
