"""``POST /v1/moderations``: the policy's checks as an OpenAI-compatible moderation endpoint.

Request: ``{"input": "text" | ["text", ...], "model": optional}`` plus our optional
``"stage": "output" | "input"`` (default ``output``: which of the policy's check lists to apply).
Response, in OpenAI's shape::

    {"id": "modr-...", "model": "...",
     "results": [{"flagged": true,
                  "categories": {"toxicity": true},
                  "category_scores": {"toxicity": 0.97},
                  "lm_audit": {"allowed": false, "action": "block", "reason": "...", ...}}]}

Categories are the policy's scorer checks of that stage, named by their score key (``toxicity``,
``refusal``, ...; the check name when two checks share a key), not OpenAI's categories (``hate``,
``harassment``, ...): our scorers do not measure those, and renaming would claim they do. A check
whose scorer failed has no score (``null``) and counts as flagged when the policy fails closed.
``flagged`` is true when the gate would not let the text through unchanged (blocked or
redacted). ``lm_audit`` holds our full decision (the same as ``Decision.to_dict()``, plus
``stage`` and, for a redaction, ``text``). Limits: the same body size, input count and
characters as the completion routes; errors are 400 with the OpenAI error shape.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, StrictStr

from audit.guard.decision import GateResult
from audit.guard.generator import GatedGenerator


class ModerationRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input: StrictStr | list[StrictStr]
    model: StrictStr | None = None
    stage: Literal["input", "output"] = "output"


def category_names(gate: GatedGenerator, stage: str) -> list[tuple[str, str]]:
    """(check name, category name) of every check of ``stage``."""
    checks = gate.policy.input_checks if stage == "input" else gate.policy.output_checks
    keys = [c.score_key for c in checks]
    return [(c.name, c.score_key if keys.count(c.score_key) == 1 else c.name) for c in checks]


def moderation_result(gate: GatedGenerator, result: GateResult, stage: str) -> dict[str, Any]:
    names = dict(category_names(gate, stage))
    categories: dict[str, bool] = {}
    scores: dict[str, float | None] = {}
    for check in result.decision.checks:
        name = names.get(check.name, check.name)
        categories[name] = bool(check.flagged)
        scores[name] = check.score
    decision = result.decision.to_dict()
    decision["stage"] = stage
    if result.decision.allowed and result.decision.action == "redact":
        decision["text"] = result.text
    return {
        "flagged": not (result.decision.allowed and result.decision.action == "none"),
        "categories": categories,
        "category_scores": scores,
        "lm_audit": decision,
    }


def add_moderation_route(
    app: FastAPI,
    gate: GatedGenerator,
    model_name: str,
    run: Callable[[Callable[[], Any]], Awaitable[Any]],
    check_size: Callable[[list[str], str], None],
    max_inputs: int,
    api_error: Callable[..., Exception],
) -> None:
    """Register ``POST /v1/moderations``; ``run`` executes work on the server's bounded slots."""

    @app.post("/v1/moderations", response_model=None)
    async def moderations(req: ModerationRequest) -> Any:
        texts = [req.input] if isinstance(req.input, str) else list(req.input)
        if not texts or len(texts) > max_inputs:
            raise api_error(400, f"input must hold 1 to {max_inputs} strings", param="input")
        check_size(texts, "input")
        results = await run(lambda: [gate.moderate(t, stage=req.stage) for t in texts])
        return {
            "id": "modr-" + secrets.token_hex(12),
            "model": req.model or model_name,
            "results": [moderation_result(gate, r, req.stage) for r in results],
        }
