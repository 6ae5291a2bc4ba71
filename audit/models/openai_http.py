"""HTTP plumbing of the ``openai`` backend: its errors (``EndpointError``, a ``UsageError``, and
``LoglikelihoodUnsupportedError``), which statuses are retried or mean "not supported", the retry
delay (exponential backoff with jitter that honours ``Retry-After``), and running its coroutines
from sync code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from audit.core.errors import UsageError

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
UNSUPPORTED_STATUSES = frozenset({400, 404, 405, 422, 501})

T = TypeVar("T")


class EndpointError(UsageError):
    """The endpoint could not be reached, refused the request, or answered something unreadable.

    ``status`` is the HTTP status of a refused request; ``gave_up`` is true when retries ran out.
    """

    def __init__(self, message: str, *, status: int | None = None, gave_up: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.gave_up = gave_up


class LoglikelihoodUnsupportedError(EndpointError):
    """The endpoint does not return prompt log-probabilities (``echo`` + ``logprobs``)."""


def retry_delay(
    attempt: int, retry_after: str | None, base: float = 0.5, cap: float = 30.0, jitter: bool = True
) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based).

    A ``Retry-After`` header (seconds or an HTTP date) wins, capped at ``cap``; otherwise
    ``base * 2**attempt`` capped at ``cap``, with up to 25 % random jitter so clients spread out.
    """
    if retry_after:
        seconds: float | None
        try:
            seconds = float(retry_after)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(retry_after)
                seconds = when.timestamp() - time.time()
            except (TypeError, ValueError):
                seconds = None
        if seconds is not None:
            return min(max(seconds, 0.0), cap)
    delay = min(base * (2**attempt), cap)
    return delay * (1.0 + 0.25 * random.random()) if jitter else delay


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine from sync code, also when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())  # type: ignore[arg-type]
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()  # type: ignore[arg-type]


def short(text: str, n: int = 200) -> str:
    """``text`` on one line, cut to ``n`` characters (an endpoint's answer in an error message)."""
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."
