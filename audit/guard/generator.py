"""``GatedGenerator(model, policy)``: moderation around any model backend.

    gate = GatedGenerator(load_model("smollm2-135m"))          # built-in default policy
    result = gate.generate("Tell me about otters.")
    result.text                  # completion, redacted completion, or the refusal message
    result.decision.to_dict()    # scores, thresholds, action, reason, latency

Order of work for one prompt: input checks (block or redact the prompt) -> generate -> output
checks -> block / regenerate with a new seed (up to N times, then block) / redact. Every text is
normalized and windowed before scoring (``normalize.py``, ``windows.py``). A scorer error or
timeout blocks unless the policy fails open. ``stream()`` checks while tokens arrive and stops
the model as soon as a check fails. With a log path, each decision is appended to a JSONL file
(prompt and text only when ``policy.log_text`` is true; a prompt hash always).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit.core.types import GenParams, GenRequest, stable_hash
from audit.guard.checks import CheckRunner
from audit.guard.decision import CheckResult, Decision, GateResult
from audit.guard.policy import Check, Policy, load_policy
from audit.guard.stream_gate import stream_checked
from audit.models.base import ModelBackend, clean_completion, clean_text
from audit.scorers.base import Scorer

DEFAULT_PARAMS = GenParams(max_new_tokens=48, temperature=0.7, top_p=0.9)


def _describe(r: CheckResult) -> str:
    if r.error:
        mode = "failed open" if r.failed_open else "fail closed"
        return f"{r.stage} check '{r.name}' could not score ({mode}): {r.error}"
    if r.action == "block_all":
        return f"{r.stage} check '{r.name}' blocks every text (action block_all)"
    op = ">=" if r.direction == "above" else "<"
    return f"{r.stage} check '{r.name}' flagged: {r.key} {r.score:.3f} {op} {r.threshold:g}"


def _resample(params: GenParams) -> GenParams:
    """Parameters for a retry: greedy decoding would repeat itself, so retries sample."""
    if params.greedy:
        return replace(params, do_sample=True, temperature=1.0, top_p=min(params.top_p, 0.95))
    return params


class GatedGenerator:
    """Wraps a ``ModelBackend`` (or ``None`` for check-only use via ``moderate``) with a policy."""

    def __init__(
        self,
        model: ModelBackend | None = None,
        policy: Policy | dict[str, Any] | str | Path | None = None,
        *,
        params: GenParams | None = None,
        seed: int = 0,
        log_path: str | Path | None = None,
        max_scorer_threads: int = 4,
    ) -> None:
        from audit.scorers.registry import get_scorer

        self.model = model
        self.policy = load_policy(policy)
        self.params = params or DEFAULT_PARAMS
        self.seed = seed
        scorers: dict[int, Scorer] = {}
        for check in (*self.policy.input_checks, *self.policy.output_checks):
            if isinstance(check.scorer, Scorer):
                scorers[id(check)] = check.scorer
            elif check.scorer is not None:
                scorers[id(check)] = get_scorer(check.scorer, **check.options)
        self.runner = CheckRunner(self.policy, scorers, threads_per_check=max_scorer_threads)
        log = log_path or self.policy.log_path
        self.log_path = Path(log) if log else None
        self._log_lock = threading.Lock()

    # ------------------------------------------------------------------ stages
    def screen(
        self, text: str, checks: Sequence[Check], stage: str
    ) -> tuple[list[CheckResult], list[tuple[Check, CheckResult]], str, str | None]:
        """Run one stage's checks: (results, the flagged (check, result) pairs, the reason, and the
        action when the flags alone decide it: "none" when nothing is flagged, "block" when a flagged
        check errored or blocks; None when redaction or regeneration decides)."""
        results = self.runner.run(text, checks, stage)
        flagged = [(c, r) for c, r in zip(checks, results, strict=True) if r.flagged]
        if not flagged:
            return results, flagged, "", "none"
        reason = "; ".join(_describe(r) for _, r in flagged)
        if any(r.error or c.action in ("block", "block_all") for c, r in flagged):
            return results, flagged, reason, "block"
        return results, flagged, reason, None

    def input_stage(self, prompt: str) -> tuple[str | None, list[CheckResult], str, str]:
        """(prompt to use or None when blocked, results, action, reason)."""
        checks = self.policy.input_checks
        results, _, reason, decided = self.screen(prompt, checks, "input")
        if decided:
            return (prompt if decided == "none" else None), results, decided, reason
        redacted, results = self.runner.redact(prompt, checks, "input")
        if redacted is None:
            return None, results, "block", reason + "; still flagged after redaction"
        return redacted, results, "redact", reason + "; prompt redacted"

    def output_stage(self, text: str) -> tuple[str | None, list[CheckResult], str, str]:
        """(text to show or None, results, kind, reason); kind is none/redact/regenerate/block."""
        checks = self.policy.output_checks
        results, flagged, reason, decided = self.screen(text, checks, "output")
        if decided:
            return (text if decided == "none" else None), results, decided, reason
        if any(c.action == "regenerate" for c, _ in flagged):
            return None, results, "regenerate", reason
        redact_checks = [c for c in checks if c.action == "redact"]
        redacted, red_results = self.runner.redact(text, redact_checks, "output")
        if redacted is None:
            return None, results, "block", reason + "; still flagged after redaction"
        others = [c for c in checks if c.action != "redact"]
        other_results = self.runner.run(redacted, others, "output")
        by_name = {id(c): r for c, r in zip(redact_checks, red_results, strict=True)}
        by_name.update({id(c): r for c, r in zip(others, other_results, strict=True)})
        final = [by_name[id(c)] for c in checks]
        if any(r.flagged for r in other_results):
            return None, final, "block", reason + "; redacted text failed another check"
        return redacted, final, "redact", reason + "; redacted"

    def _retry_budget(self, results: Sequence[CheckResult]) -> int:
        flagged = {r.name for r in results if r.flagged and r.action == "regenerate"}
        budgets = [self.policy.retries_for(c) for c in self.policy.output_checks if c.name in flagged]
        return min(budgets) if budgets else 0

    # ------------------------------------------------------------------ public API
    def moderate(self, text: str, stage: str = "output") -> GateResult:
        """Apply the input or output checks to a given text, without a model (no regeneration:
        a ``regenerate`` check blocks)."""
        t0 = time.perf_counter()
        text, repaired = clean_text(text)
        if stage == "input":
            final, results, action, reason = self.input_stage(text)
        elif stage == "output":
            final, results, action, reason = self.output_stage(text)
        else:
            raise ValueError(f"stage must be 'input' or 'output', not {stage!r}")
        if final is None:
            action = "block"
        decision = Decision(
            allowed=final is not None,
            action=action,
            stage=stage if action != "none" else None,
            reason=reason or "passed all checks",
            policy=self.policy.name,
            checks=results,
            latency={"generate_s": 0.0, "filter_s": time.perf_counter() - t0, "total_s": time.perf_counter() - t0},
            text_repaired=repaired,
        )
        result = GateResult(
            text=final if final is not None else self.policy.refusal_message, decision=decision, prompt=text
        )
        self.log_result(result)
        return result

    def generate(
        self, prompt: str, params: GenParams | None = None, seed: int | None = None, key: str | None = None
    ) -> GateResult:
        """Generate one gated completion."""
        return self.generate_many([prompt], params, seed, [key] if key else None)[0]

    def generate_many(
        self,
        prompts: Sequence[str],
        params: GenParams | None = None,
        seed: int | None = None,
        keys: Sequence[str] | None = None,
        input_texts: Sequence[str] | None = None,
        build_prompt: Callable[[int, str], str | None] | None = None,
    ) -> list[GateResult]:
        """Gated completions for several prompts; generation is batched, retries too.

        By default the input checks read the prompt itself. A chat server passes the messages'
        text as ``input_texts`` and ``build_prompt(i, checked_text)`` to render the model prompt
        from the checked (possibly redacted) text; ``None`` from it blocks the prompt."""
        if self.model is None:
            raise ValueError("this GatedGenerator has no model; use moderate() to check texts")
        params = params or self.params
        seed = self.seed if seed is None else seed
        prompts, repaired = self._clean_all(prompts)
        if input_texts is not None:
            input_texts, repaired_in = self._clean_all(input_texts)
            repaired = [sorted({*a, *b}) for a, b in zip(repaired, repaired_in, strict=True)]
        keys = list(keys) if keys else [f"gate/{stable_hash(p)}" for p in prompts]
        n = len(prompts)
        starts = [time.perf_counter()] * n
        filter_s = [0.0] * n
        generate_s = [0.0] * n
        state: list[dict[str, Any]] = []
        for i, prompt in enumerate(prompts):
            t0 = time.perf_counter()
            checked = input_texts[i] if input_texts is not None else prompt
            used, in_results, in_action, in_reason = self.input_stage(checked)
            if used is not None and build_prompt is not None:
                used = build_prompt(i, used)
                if used is None:
                    in_action, in_reason = "block", in_reason + "; the redacted messages could not be rebuilt"
            filter_s[i] += time.perf_counter() - t0
            state.append(
                {
                    "prompt": used,
                    "in_results": in_results,
                    "in_action": in_action,
                    "in_reason": in_reason,
                    "out": None,
                    "attempts": [],
                    "raw": None,
                    "n_tokens": 0,
                    "repaired": list(repaired[i]),
                }
            )
        pending = [i for i in range(n) if state[i]["prompt"] is not None]
        attempt = 0
        while pending:
            p = params if attempt == 0 else _resample(params)
            requests = [GenRequest(key=keys[i], prompt=state[i]["prompt"], sample=attempt) for i in pending]
            t0 = time.perf_counter()
            completions = self.model.generate(requests, p, seed)
            share = (time.perf_counter() - t0) / len(pending)
            retry = []
            for i, comp in zip(pending, completions, strict=True):
                comp, notes = clean_completion(comp)  # untrusted text: valid Unicode
                state[i]["repaired"] = sorted({*state[i]["repaired"], *(f"completion: {x}" for x in notes)})
                generate_s[i] += share
                t1 = time.perf_counter()
                final, results, kind, reason = self.output_stage(comp.text)
                filter_s[i] += time.perf_counter() - t1
                s = state[i]
                s["raw"], s["n_tokens"] = comp.text, comp.n_tokens
                s["attempts"].append(
                    {
                        "attempt": attempt,
                        "action": kind,
                        "flagged": [r.name for r in results if r.flagged],
                        "n_tokens": comp.n_tokens,
                    }
                )
                if kind == "regenerate" and attempt < self._retry_budget(results):
                    retry.append(i)
                    continue
                if kind == "regenerate":
                    reason += f"; still flagged after {attempt} regeneration(s)"
                    kind = "block"
                s["out"] = (final, results, kind, reason)
            pending = retry
            attempt += 1
        out = []
        for i in range(n):
            out.append(self._finish(prompts[i], state[i], starts[i], generate_s[i], filter_s[i]))
        return out

    def _finish(self, prompt: str, s: dict[str, Any], start: float, gen_s: float, filt_s: float) -> GateResult:
        total = time.perf_counter() - start
        latency = {"generate_s": gen_s, "filter_s": filt_s, "total_s": max(total, gen_s + filt_s)}
        if s["prompt"] is None:
            decision = Decision(
                allowed=False,
                action="block",
                stage="input",
                reason=s["in_reason"],
                policy=self.policy.name,
                checks=s["in_results"],
                latency=latency,
                text_repaired=s["repaired"],
            )
            result = GateResult(self.policy.refusal_message, decision, prompt)
            self.log_result(result)
            return result
        final, results, kind, reason = s["out"]
        retried = len(s["attempts"]) > 1
        if final is None:
            action, stage = "block", "output"
        elif kind == "redact":
            action, stage = "redact", "output"
        elif retried:
            action, stage = "regenerate", "output"
            reason = f"regenerated {len(s['attempts']) - 1} time(s); the last completion passed"
        elif s["in_action"] == "redact":
            action, stage, reason = "redact", "input", s["in_reason"]
        else:
            action, stage, reason = "none", None, "passed all checks"
        if s["in_action"] == "redact" and stage == "output":
            reason = f"{s['in_reason']}; {reason}"
        decision = Decision(
            allowed=final is not None,
            action=action,
            stage=stage,
            reason=reason,
            policy=self.policy.name,
            checks=[*s["in_results"], *results],
            attempts=s["attempts"],
            latency=latency,
            text_repaired=s["repaired"],
        )
        text = final if final is not None else self.policy.refusal_message
        result = GateResult(text, decision, s["prompt"], raw_text=s["raw"], n_tokens=s["n_tokens"])
        self.log_result(result)
        return result

    # ------------------------------------------------------------------ streaming
    # ``gate.stream(prompt, params=None, seed=None, key=None, input_text=None, build_prompt=None)``:
    # yield checked text as the model produces it, stop the model once a check fails
    # (audit/guard/stream_gate.py).
    stream = stream_checked

    # ------------------------------------------------------------------ logging
    def log_result(self, result: GateResult) -> None:
        if self.log_path is None:
            return
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "policy": self.policy.name,
            "model": self._model_name(),
            "prompt_sha256": hashlib.sha256(result.prompt.encode("utf-8", "surrogatepass")).hexdigest()[:16],
            "decision": result.decision.to_dict(),
        }
        if self.policy.log_text:
            entry["prompt"] = result.prompt
            entry["text"] = result.text
        line = json.dumps(entry, ensure_ascii=False, sort_keys=True)
        with self._log_lock:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    def _model_name(self) -> str | None:
        if self.model is None:
            return None
        if not hasattr(self, "_model_name_cache"):
            try:
                self._model_name_cache = self.model.info().name
            except Exception:
                self._model_name_cache = type(self.model).__name__
        return self._model_name_cache

    @staticmethod
    def _clean_all(texts: Sequence[str]) -> tuple[list[str], list[list[str]]]:
        """Untrusted texts made valid Unicode, with what was repaired in each."""
        pairs = [clean_text(t) for t in texts]
        return [t for t, _ in pairs], [n for _, n in pairs]

    def checks(self) -> list[Check]:
        return [*self.policy.input_checks, *self.policy.output_checks]

    def close(self) -> None:
        self.runner.close()
