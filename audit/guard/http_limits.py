"""HTTP plumbing of the gated server: OpenAI-shaped errors, a body size limit (ASGI middleware)
and bounded concurrency with a queue (429 when full, 504 on timeout)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.responses import JSONResponse


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param


def error_response(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": {"message": message, "type": kind, "param": param, "code": None}}
    )


class BodyLimit:
    """ASGI middleware: refuse bodies over the limit (413) before the app parses them. The body
    is read here, at most ``max_bytes + 1`` bytes, and replayed to the app."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_big = error_response(413, f"request body over {self.max_bytes} bytes", param="body")
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await (too_big if length.isdigit() else error_response(400, "bad Content-Length header"))(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await too_big(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class Slots:
    """Bounded concurrency: ``limit`` running, ``queue`` waiting, the rest refused with 429.
    A slot is freed when its work really ends, even after the request itself timed out."""

    def __init__(self, limit: int, queue: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="gate-gen")
        self.sem = asyncio.Semaphore(limit)
        self.queue, self.waiting = queue, 0
        self.busy = 0
        self.lock = threading.Lock()

    async def run(self, fn: Callable[[], Any], timeout: float) -> Any:
        if self.sem.locked() and self.waiting >= self.queue:
            raise ApiError(429, "server busy: too many queued requests, retry later", "rate_limit_error")
        self.waiting += 1
        deadline = time.monotonic() + timeout
        try:
            await asyncio.wait_for(self.sem.acquire(), timeout)
        except TimeoutError:
            raise ApiError(504, f"timed out after {timeout:g} s waiting for a slot", "timeout") from None
        finally:
            self.waiting -= 1
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.executor, fn)
        future.add_done_callback(lambda _f: self.sem.release())
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(0.001, deadline - time.monotonic()))
        except TimeoutError:
            raise ApiError(504, f"generation timed out after {timeout:g} s", "timeout") from None
