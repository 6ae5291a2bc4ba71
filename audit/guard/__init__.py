"""Gated generation: moderation around any model backend (see ``docs/filter.md``).

``GatedGenerator(model, policy)`` checks the prompt and the completion with a policy of scorer
checks and acts on failures (block, regenerate, redact), after normalizing text against common
obfuscations and scoring long texts in sliding windows. Every call returns the text and a
structured ``Decision``.
"""

from audit.guard.decision import CheckResult, Decision, GateResult
from audit.guard.generator import GatedGenerator
from audit.guard.normalize import NormalizedText, normalize
from audit.guard.policy import Check, Policy, load_policy
from audit.guard.stream_gate import StreamEvent

__all__ = [
    "Check",
    "CheckResult",
    "Decision",
    "GateResult",
    "GatedGenerator",
    "NormalizedText",
    "Policy",
    "StreamEvent",
    "load_policy",
    "normalize",
]
