"""What the gate returns: the text and a structured, explainable decision."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class CheckResult:
    """The outcome of one check on one text.

    ``score`` is the worst score over the scored spans (whole text, sentences, windows);
    ``span`` is where in the *original* text that worst span lies. ``error`` holds the scorer's
    error or timeout; then ``flagged`` follows the fail mode (closed: flagged, open: not).
    """

    stage: str  # "input" or "output"
    name: str
    scorer: str
    key: str
    threshold: float
    direction: str
    action: str
    score: float | None
    flagged: bool
    error: str | None = None
    failed_open: bool = False
    span: tuple[int, int] | None = None
    latency_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["span"] = list(self.span) if self.span else None
        return d


@dataclass
class Decision:
    """Why the gate let a text through, changed it or blocked it.

    ``action`` is what the gate did: ``"none"`` (passed unchanged), ``"block"``, ``"redact"`` or
    ``"regenerate"`` (passed after at least one retry). ``stage`` names the stage that triggered
    it (``"input"``/``"output"``, or ``None``). ``checks`` are the check results of the final
    attempt; ``attempts`` summarises every generation attempt. ``latency`` is in seconds:
    ``generate_s`` (model), ``filter_s`` (everything else: normalization, scoring, redaction),
    ``total_s``.
    """

    allowed: bool
    action: str
    stage: str | None
    reason: str
    policy: str
    checks: list[CheckResult] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    latency: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False
    text_repaired: list[str] = field(default_factory=list)  # invalid Unicode replaced in prompt/completion

    def __post_init__(self) -> None:
        opened = [c for c in self.checks if c.failed_open]
        if opened and "failed open" not in self.reason:
            notes = "; ".join(f"{c.stage} check '{c.name}' could not score (failed open): {c.error}" for c in opened)
            self.reason = f"{self.reason}; {notes}" if self.reason else notes

    @property
    def blocked(self) -> bool:
        return not self.allowed

    @property
    def scores(self) -> dict[str, float | None]:
        return {f"{c.stage}:{c.name}": c.score for c in self.checks}

    @property
    def thresholds(self) -> dict[str, float]:
        return {f"{c.stage}:{c.name}": c.threshold for c in self.checks}

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "action": self.action,
            "stage": self.stage,
            "reason": self.reason,
            "policy": self.policy,
            "scores": self.scores,
            "thresholds": self.thresholds,
            "checks": [c.to_dict() for c in self.checks],
            "attempts": self.attempts,
            "latency": {k: round(v, 6) for k, v in self.latency.items()},
            "stopped_early": self.stopped_early,
            "text_repaired": list(self.text_repaired),
        }


@dataclass
class GateResult:
    """``text`` is what the caller may show: the completion, its redacted form, or the refusal
    message. ``raw_text`` is the last unfiltered completion (``None`` when nothing was generated);
    do not show it to end users."""

    text: str
    decision: Decision
    prompt: str
    raw_text: str | None = None
    n_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "decision": self.decision.to_dict()}
