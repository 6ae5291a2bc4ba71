"""What ``lm-audit serve`` accepts: the OpenAI request bodies (``CompletionRequest``,
``ChatRequest``, strict types: a wrong type is a 400, never coerced) and the server's limits
(``ServerLimits``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

Number = StrictFloat | StrictInt


@dataclass
class ServerLimits:
    """What one request and the server as a whole may ask (over a limit: 413, 400, 429 or 504)."""

    max_body_bytes: int = 64_000
    max_prompt_chars: int = 16_000
    max_tokens: int = 512
    max_prompts: int = 32
    max_n: int = 4
    max_concurrency: int = 2
    max_queue: int = 64
    timeout_s: float = 120.0


class RequestBase(BaseModel):
    """The sampling fields completions and chat requests share (unknown fields are ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: StrictStr | None = None
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    temperature: Number = Field(default=1.0, ge=0, le=2)
    top_p: Number = Field(default=1.0, gt=0, le=1)
    top_k: StrictInt = Field(default=0, ge=0)  # vLLM / llama.cpp extension; 0 = off
    n: StrictInt = Field(default=1, ge=1)
    seed: StrictInt | None = None
    stop: StrictStr | list[StrictStr] | None = None
    stream: StrictBool = False
    user: StrictStr | None = None


class CompletionRequest(RequestBase):
    prompt: StrictStr | list[StrictStr]
    echo: StrictBool = False
    logprobs: StrictInt | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer"]
    content: StrictStr


class ChatRequest(RequestBase):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    logprobs: StrictBool | None = None
