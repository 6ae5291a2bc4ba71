"""A tiny OpenAI-compatible server on loopback, for testing the ``openai`` backend.

Standard library only (``http.server``), bound to 127.0.0.1 on a free port, serving at most
``max_requests`` requests (then HTTP 410) so a retry bug cannot loop forever. Its answers are a
pure function of the request, so tests can check what the client sent:

- ``/v1/completions`` and ``/v1/chat/completions`` answer ``"<prompt tail>|seed=<seed>|T=<temp>"``;
- ``/v1/completions`` with ``echo`` + ``logprobs`` splits the prompt (plus ``max_tokens`` generated
  words) into whitespace-led words and gives word ``w`` the log-prob ``-len(w)/10`` (the first gets
  ``None``, as real servers do), unless ``logprobs_supported`` is false (then HTTP 400, like hosted
  APIs); ``echo_zero_tokens_ok=False`` refuses ``max_tokens=0`` like some vLLM versions;
- ``/v1/models`` lists ``served_model``.

``script`` is a list of behaviours consumed one per request before normal service: ``"429"``
(with ``Retry-After: 0``), ``"500"``, ``"400"``, ``"slow"`` (sleeps ``slow_s`` before answering),
``"malformed"`` (valid JSON without ``choices``), ``"notjson"``.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WORD = re.compile(r"\s*\S+")


def stub_words(text: str) -> list[tuple[str, int]]:
    """The stub's tokenization: whitespace-led words with their character offsets."""
    return [(m.group(0), m.start()) for m in WORD.finditer(text)]


def stub_completion(prompt: str, seed: Any, temperature: Any) -> str:
    return f"{prompt[-12:]}|seed={seed}|T={temperature}"


class StubOpenAI:
    def __init__(
        self,
        *,
        served_model: str = "stub-model",
        script: list[str] | None = None,
        logprobs_supported: bool = True,
        echo_zero_tokens_ok: bool = True,
        slow_s: float = 2.0,
        max_requests: int = 500,
        delay_s: float = 0.0,
    ) -> None:
        self.served_model = served_model
        self.script = list(script or [])
        self.logprobs_supported = logprobs_supported
        self.echo_zero_tokens_ok = echo_zero_tokens_ok
        self.slow_s = slow_s
        self.max_requests = max_requests
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []  # {"path", "body", "headers"}
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> StubOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ behaviour
    def _next_action(self) -> str | None:
        with self._lock:
            return self.script.pop(0) if self.script else None

    def respond(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if len(self.requests) > self.max_requests:
            return 410, {}, b'{"error": "stub request budget exhausted"}'
        action = self._next_action()
        if action == "429":
            return 429, {"Retry-After": "0"}, b'{"error": {"message": "rate limited"}}'
        if action == "400":
            return 400, {}, b'{"error": {"message": "bad request: max_tokens too large"}}'
        if action == "500":
            return 500, {}, b'{"error": {"message": "boom"}}'
        if action == "slow":
            self._stop.wait(self.slow_s)
        if action == "malformed":
            return 200, {}, json.dumps({"id": "x", "object": "text_completion"}).encode()
        if action == "notjson":
            return 200, {}, b"<html>proxy error</html>"
        if self.delay_s:
            self._stop.wait(self.delay_s)
        if path.endswith("/models"):
            data = [{"id": self.served_model, "object": "model", "root": "/weights/stub", "owned_by": "stub"}]
            return 200, {}, json.dumps({"object": "list", "data": data}).encode()
        if path.endswith("/chat/completions"):
            prompt = body["messages"][-1]["content"]
            text = stub_completion(prompt, body.get("seed"), body.get("temperature"))
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "length",
            }
            return 200, {}, self._completion_payload(choice, text)
        if path.endswith("/completions"):
            if body.get("echo") and body.get("logprobs"):
                return self._echo(body)
            text = stub_completion(body["prompt"], body.get("seed"), body.get("temperature"))
            choice = {"index": 0, "text": text, "finish_reason": "length", "logprobs": None}
            return 200, {}, self._completion_payload(choice, text)
        return 404, {}, b'{"error": "not found"}'

    def _completion_payload(self, choice: dict[str, Any], text: str) -> bytes:
        usage = {"prompt_tokens": 3, "completion_tokens": len(stub_words(text)), "total_tokens": 0}
        return json.dumps(
            {"id": "cmpl-1", "model": self.served_model, "choices": [choice], "usage": usage}
        ).encode()

    def _echo(self, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if not self.logprobs_supported:
            return 400, {}, b'{"error": {"message": "echo is not supported with max_tokens=0"}}'
        if body.get("max_tokens") == 0 and not self.echo_zero_tokens_ok:
            return 400, {}, b'{"error": {"message": "max_tokens must be at least 1"}}'
        text = body["prompt"] + " generated" * int(body.get("max_tokens") or 0)
        words = stub_words(text)
        tokens = [w for w, _ in words]
        lps: list[float | None] = [None] + [-len(w) / 10 for w in tokens[1:]]
        top = [None] + [{w: -len(w) / 10} for w in tokens[1:]]
        logprobs = {
            "tokens": tokens,
            "token_logprobs": lps,
            "text_offset": [o for _, o in words],
            "top_logprobs": top,
        }
        choice = {"index": 0, "text": text, "logprobs": logprobs, "finish_reason": "length"}
        return 200, {}, json.dumps({"id": "cmpl-2", "choices": [choice]}).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _serve(self, body: dict[str, Any]) -> None:
                with stub._lock:
                    stub.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                try:
                    status, headers, payload = stub.respond(self.path, body)
                finally:
                    with stub._lock:
                        stub.in_flight -= 1
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

            def do_GET(self) -> None:
                self._serve({})

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b"{}"
                if len(raw) < n:  # the client was cancelled mid-request and left: nothing to answer
                    return
                self._serve(json.loads(raw or b"{}"))

        return Handler
