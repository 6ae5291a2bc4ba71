"""The gate over a stream: ``GatedGenerator.stream`` checks text while the model produces it.

Output checks run every ``policy.stream_check_every`` tokens on the text so far; text is released
only after it passed, up to the last whitespace (a half-made word is held back), and the model is
stopped (``stream_text`` closed: no further forward passes) as soon as a check fails. A stream
cannot take back released text, so ``regenerate`` acts as ``block`` here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from audit.core.types import GenParams, GenRequest, stable_hash
from audit.guard.decision import CheckResult, Decision, GateResult
from audit.guard.streaming import stream_text
from audit.models.base import clean_text

if TYPE_CHECKING:
    from audit.guard.policy import Policy
    from audit.models.base import ModelBackend


class StreamGate(Protocol):
    """What the streaming loop needs of a gate (``GatedGenerator`` is one): the model, its sampling
    parameters and seed, the policy, the two check stages and the decision log."""

    model: ModelBackend | None
    policy: Policy
    params: GenParams
    seed: int

    def input_stage(self, prompt: str) -> tuple[str | None, list[CheckResult], str, str]: ...

    def output_stage(self, text: str) -> tuple[str | None, list[CheckResult], str, str]: ...

    def log_result(self, result: GateResult) -> None: ...


@dataclass
class StreamEvent:
    """One step of ``GatedGenerator.stream``: ``delta`` is new text that passed the checks.
    The last event has ``done=True`` and carries the decision; when a check failed mid-stream its
    ``delta`` is the refusal message (or empty when ``text`` was already partly released)."""

    delta: str
    done: bool = False
    decision: Decision | None = None
    text: str | None = None


def stream_checked(
    gate: StreamGate,
    prompt: str,
    params: GenParams | None = None,
    seed: int | None = None,
    key: str | None = None,
    input_text: str | None = None,
    build_prompt: Callable[[int, str], str | None] | None = None,
) -> Iterator[StreamEvent]:
    """``GatedGenerator.stream`` (this function is that method): yield checked text as
    ``gate.model`` produces it; the last event carries the decision (see the module text)."""
    if gate.model is None:
        raise ValueError("this GatedGenerator has no model")
    params = params or gate.params
    seed = gate.seed if seed is None else seed
    prompt, repaired = clean_text(prompt)
    if input_text is not None:
        input_text, more = clean_text(input_text)
        repaired = sorted({*repaired, *more})
    key = key or f"gate/{stable_hash(prompt)}"
    start = time.perf_counter()
    filt = 0.0
    used, in_results, in_action, in_reason = gate.input_stage(input_text if input_text is not None else prompt)
    if used is not None and build_prompt is not None:
        used = build_prompt(0, used)
        if used is None:
            in_action, in_reason = "block", in_reason + "; the redacted messages could not be rebuilt"
    filt += time.perf_counter() - start
    if used is None:
        decision = Decision(
            False, "block", "input", in_reason, gate.policy.name, in_results,
            latency={"generate_s": 0.0, "filter_s": filt, "total_s": time.perf_counter() - start},
            text_repaired=repaired,
        )
        gate.log_result(GateResult(gate.policy.refusal_message, decision, prompt))
        yield StreamEvent(gate.policy.refusal_message, True, decision, gate.policy.refusal_message)
        return
    released = ""
    raw, n_tokens, checked_at = "", 0, 0
    final_state: tuple[str | None, list[CheckResult], str, str] = (raw, [], "none", "")
    stopped = False
    tokens = stream_text(gate.model, GenRequest(key=key, prompt=used), params, seed)
    try:
        for raw_text, n_tokens in tokens:
            raw, notes = clean_text(raw_text)  # untrusted text: valid Unicode
            if notes:
                repaired = sorted({*repaired, *(f"completion: {x}" for x in notes)})
            if n_tokens - checked_at < gate.policy.stream_check_every:
                continue
            checked_at = n_tokens
            t1 = time.perf_counter()
            final_state = gate.output_stage(raw)
            filt += time.perf_counter() - t1
            shown = final_state[0]
            if shown is None or final_state[2] == "regenerate" or not shown.startswith(released):
                stopped = True
                break
            cut = max(shown.rfind(" "), shown.rfind("\n"))
            if cut > len(released):
                delta, released = shown[len(released) : cut], shown[:cut]
                yield StreamEvent(delta)
    finally:
        tokens.close()  # stops the decoding loop: no further forward passes
    if not stopped:
        t1 = time.perf_counter()
        final_state = gate.output_stage(raw)
        filt += time.perf_counter() - t1
    shown, results, kind, reason = final_state
    total = time.perf_counter() - start
    gen_s = max(0.0, total - filt)
    ok = shown is not None and kind != "regenerate" and shown.startswith(released)
    if not ok:
        if kind == "regenerate":
            reason += "; a stream cannot regenerate, blocked"
        elif shown is not None:
            reason += "; redaction would change text already sent, blocked"
        action, stage = "block", "output"
    elif kind == "redact":
        action, stage = "redact", "output"
    elif in_action == "redact":
        action, stage, reason = "redact", "input", in_reason
    else:
        action, stage, reason = "none", None, "passed all checks"
    decision = Decision(
        allowed=ok,
        action=action,
        stage=stage,
        reason=reason,
        policy=gate.policy.name,
        checks=[*in_results, *results],
        attempts=[{"attempt": 0, "action": kind, "n_tokens": n_tokens}],
        latency={"generate_s": gen_s, "filter_s": filt, "total_s": total},
        stopped_early=stopped,
        text_repaired=repaired,
    )
    if ok:
        assert shown is not None
        text = shown
        delta = shown[len(released) :]
    else:
        text = released + ("\n" if released else "") + gate.policy.refusal_message
        delta = ("\n" if released else "") + gate.policy.refusal_message
    gate.log_result(GateResult(text, decision, used, raw_text=raw, n_tokens=n_tokens))
    yield StreamEvent(delta, True, decision, text)
