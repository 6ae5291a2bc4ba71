"""The gated OpenAI-compatible server, on loopback: bounded concurrent load, standard response
shapes with the gate decision, 4xx JSON errors for bad requests, 429 when full, 504 on timeout."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

from audit.core.types import Completion
from audit.guard import Check, GatedGenerator, Policy
from audit.guard.server import create_app
from audit.guard.server_requests import ServerLimits
from audit.models.base import LoglikelihoodResult, ModelBackend, ModelInfo
from audit.models.registry import load_model

pytestmark = pytest.mark.xdist_group("gated-server")

POLICY = Policy(
    name="server-test",
    refusal_message="Blocked by policy.",
    input_checks=[Check(name="banned-prompt", terms=["forbidden"], action="block")],
    output_checks=[Check(name="words", terms=["idiot"], action="redact")],
)


@contextmanager
def running(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Serve ``app`` with uvicorn on 127.0.0.1 and a free port; yield the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    assert server.started, "server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    gate = GatedGenerator(load_model("tiny-random-gpt2"), POLICY)
    limits = ServerLimits(max_body_bytes=4096, max_tokens=64, max_concurrency=2, max_queue=64, timeout_s=60)
    with running(create_app(gate, "tiny-random-gpt2", limits)) as url:
        yield url
    gate.close()


def _check_completion(body: dict, blocked: bool) -> None:
    assert body["object"] == "text_completion" and body["model"] == "tiny-random-gpt2"
    assert body["id"].startswith("cmpl-")
    choice = body["choices"][0]
    assert isinstance(choice["text"], str)
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert choice["gate"]["allowed"] is (not blocked)
    assert body["gate"]["allowed"] is (not blocked) and body["gate"]["policy"] == "server-test"
    if blocked:
        assert choice["text"] == "Blocked by policy." and choice["finish_reason"] == "content_filter"
        assert choice["gate"]["stage"] == "input" and "banned-prompt" in choice["gate"]["reason"]
    else:
        assert choice["finish_reason"] in ("stop", "length")


def _check_chat(body: dict, blocked: bool) -> None:
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert choice["gate"]["allowed"] is (not blocked)
    if blocked:
        assert choice["message"]["content"] == "Blocked by policy."
        assert choice["finish_reason"] == "content_filter"


def test_healthz_and_models(base_url: str) -> None:
    health = httpx.get(f"{base_url}/healthz").json()
    assert health["status"] == "ok" and health["model"] == "tiny-random-gpt2" and health["policy"] == "server-test"
    models = httpx.get(f"{base_url}/v1/models").json()
    assert models["data"][0]["id"] == "tiny-random-gpt2"


def test_bounded_concurrent_load_answers_every_request(base_url: str) -> None:
    """200 requests from 16 concurrent clients, mixed endpoints, a quarter of them blocked."""
    before = httpx.get(f"{base_url}/healthz").json()["served"]

    async def client(worker: int, jobs: list[int], results: list) -> None:  # type: ignore[type-arg]
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            for i in jobs:
                blocked = i % 4 == 0
                word = "forbidden" if blocked else "allowed"
                if i % 2:
                    body = {"model": "x", "prompt": f"request {i} is {word}", "max_tokens": 6, "seed": i}
                    resp = await http.post("/v1/completions", json=body)
                    results.append(("text", blocked, resp.status_code, resp.json()))
                else:
                    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"{word} {i}"}]
                    resp = await http.post("/v1/chat/completions", json={"messages": msgs, "max_tokens": 6})
                    results.append(("chat", blocked, resp.status_code, resp.json()))

    async def load() -> list:  # type: ignore[type-arg]
        results: list = []  # type: ignore[type-arg]
        jobs = [list(range(200))[w::16] for w in range(16)]
        await asyncio.gather(*(client(w, jobs[w], results) for w in range(16)))
        return results

    results = asyncio.run(load())
    assert len(results) == 200
    for kind, blocked, status, body in results:
        assert status == 200, body
        (_check_completion if kind == "text" else _check_chat)(body, blocked)
    assert sum(1 for r in results if r[1]) == 50
    health = httpx.get(f"{base_url}/healthz").json()
    assert health["status"] == "ok" and health["served"] - before == 200


def test_seeded_requests_are_reproducible(base_url: str) -> None:
    body = {"prompt": "Once upon a time", "max_tokens": 8, "seed": 42, "temperature": 0.9}
    first = httpx.post(f"{base_url}/v1/completions", json=body).json()
    second = httpx.post(f"{base_url}/v1/completions", json=body).json()
    assert first["choices"][0]["text"] == second["choices"][0]["text"]


def test_list_prompts_and_n_give_one_choice_each(base_url: str) -> None:
    body = {"prompt": ["a", "b forbidden", "c"], "max_tokens": 4, "n": 2}
    resp = httpx.post(f"{base_url}/v1/completions", json=body).json()
    assert [c["index"] for c in resp["choices"]] == list(range(6))
    assert [c["finish_reason"] == "content_filter" for c in resp["choices"]] == [False, False, True, True, False, False]
    assert resp["gate"]["allowed"] is False and len(resp["gate"]["decisions"]) == 6


def test_streaming_sends_events_and_a_final_decision(base_url: str) -> None:
    with httpx.stream(
        "POST", f"{base_url}/v1/completions", json={"prompt": "Hi", "max_tokens": 8, "stream": True, "seed": 1}
    ) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in resp.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    final = json.loads(lines[-2][6:])
    assert final["choices"][0]["finish_reason"] == "stop" and final["gate"]["allowed"] is True
    blocked = httpx.post(
        f"{base_url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "forbidden"}], "stream": True},
    )
    events = [json.loads(x[6:]) for x in blocked.text.splitlines() if x.startswith("data: {")]
    assert events[-1]["choices"][0]["finish_reason"] == "content_filter"
    assert events[-1]["choices"][0]["delta"]["content"] == "Blocked by policy."


BAD_REQUESTS = [
    ("/v1/completions", b'{"prompt": "unterminated', 400),
    ("/v1/completions", b"not json at all", 400),
    ("/v1/completions", b'["a", "list"]', 400),
    ("/v1/completions", b"{}", 400),
    ("/v1/completions", b'{"prompt": 123}', 400),
    ("/v1/completions", b'{"prompt": ["ok", 5]}', 400),
    ("/v1/completions", b'{"prompt": "hi", "max_tokens": "10"}', 400),
    ("/v1/completions", b'{"prompt": "hi", "max_tokens": 100000}', 400),
    ("/v1/completions", b'{"prompt": "hi", "max_tokens": 0}', 400),
    ("/v1/completions", b'{"prompt": "hi", "temperature": "hot"}', 400),
    ("/v1/completions", b'{"prompt": "hi", "temperature": 5}', 400),
    ("/v1/completions", b'{"prompt": "hi", "n": 99}', 400),
    ("/v1/completions", b'{"prompt": "hi", "stream": "yes"}', 400),
    ("/v1/completions", b'{"prompt": "hi", "echo": true, "logprobs": 1}', 400),
    ("/v1/completions", b'{"prompt": []}', 400),
    ("/v1/chat/completions", b'{"messages": "hi"}', 400),
    ("/v1/chat/completions", b'{"messages": []}', 400),
    ("/v1/chat/completions", b'{"messages": [{"role": "robot", "content": "hi"}]}', 400),
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": {"x": 1}}]}', 400),
    ("/v1/completions", b'{"prompt": "' + b"x" * 5000 + b'"}', 413),
    ("/v1/nothing-here", b"{}", 404),
]


@pytest.mark.parametrize("path, body, status", BAD_REQUESTS)
def test_bad_requests_get_a_4xx_json_error(base_url: str, path: str, body: bytes, status: int) -> None:
    resp = httpx.post(f"{base_url}{path}", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == status
    error = resp.json()["error"]
    assert error["message"] and error["type"]
    assert httpx.get(f"{base_url}/healthz").status_code == 200  # still up


def test_oversized_chunked_body_without_content_length_gets_413(base_url: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"prompt": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    resp = httpx.post(f"{base_url}/v1/completions", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 413 and "error" in resp.json()


def test_wrong_method_is_4xx(base_url: str) -> None:
    resp = httpx.get(f"{base_url}/v1/completions")
    assert resp.status_code == 405 and "error" in resp.json()


class BlockingModel(ModelBackend):
    """Generation waits until the test releases it."""

    supports_loglikelihood = False

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()

    def info(self) -> ModelInfo:
        return ModelInfo(name="blocking", backend="test", fingerprint="b")

    def generate(self, requests, params, seed):  # type: ignore[no-untyped-def]
        self.started.set()
        self.release.wait(30)
        return [Completion("done", 1) for _ in requests]

    def loglikelihood(self, requests):  # type: ignore[no-untyped-def]
        return [LoglikelihoodResult(0.0, 0) for _ in requests]


def test_full_server_answers_429_and_slow_requests_504() -> None:
    model = BlockingModel()
    gate = GatedGenerator(model, Policy(name="p"))
    limits = ServerLimits(max_concurrency=1, max_queue=0, timeout_s=0.5)
    with running(create_app(gate, "blocking", limits)) as url:
        results: dict[str, httpx.Response] = {}

        def first() -> None:
            results["first"] = httpx.post(f"{url}/v1/completions", json={"prompt": "a"}, timeout=30)

        t = threading.Thread(target=first)
        t.start()
        assert model.started.wait(10)
        busy = httpx.post(f"{url}/v1/completions", json={"prompt": "b"}, timeout=30)
        t.join(30)
        model.release.set()
        assert busy.status_code == 429 and busy.json()["error"]["type"] == "rate_limit_error"
        assert results["first"].status_code == 504 and "timed out" in results["first"].json()["error"]["message"]
        assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
    gate.close()


def test_the_project_openai_backend_talks_to_the_gated_server(base_url: str) -> None:
    """The scale-out engineer's OpenAI-compatible client, as a real peer."""
    from audit.core.types import GenParams, GenRequest, LoglikelihoodRequest
    from audit.models.openai_http import LoglikelihoodUnsupportedError

    client = load_model(f"openai:tiny-random-gpt2@{base_url}/v1")
    try:
        requests = [GenRequest("k1", "Hello there"), GenRequest("k2", "a forbidden prompt")]
        params = GenParams(max_new_tokens=6, temperature=0.9, top_p=0.9)
        first = client.generate(requests, params, seed=5)
        again = client.generate(requests, params, seed=5)
        assert [c.text for c in first] == [c.text for c in again]  # the server honours seeds
        assert first[1].text == "Blocked by policy."
        with pytest.raises(LoglikelihoodUnsupportedError):
            client.loglikelihood([LoglikelihoodRequest("The cat", " sat")])
    finally:
        client.close()
