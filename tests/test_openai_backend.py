"""The ``openai`` backend against a stub OpenAI-compatible server on loopback."""

from __future__ import annotations

import pytest
from stub_openai_server import StubOpenAI, stub_completion, stub_words

from audit.core.errors import UsageError
from audit.core.types import GenParams, GenRequest, LoglikelihoodRequest, record_seed
from audit.models.openai_backend import load_openai, parse_name
from audit.models.openai_http import EndpointError, LoglikelihoodUnsupportedError, retry_delay
from audit.models.registry import load_model

FAST = {"backoff": 0.01, "max_backoff": 0.05}
REQS = [GenRequest(key=f"item-{i}", prompt=f"Prompt number {i} says", sample=i % 2) for i in range(6)]
PARAMS = GenParams(max_new_tokens=7, temperature=0.8, top_p=0.9)


def backend(stub: StubOpenAI, **options):
    return load_model(f"openai:stub-model@{stub.base_url}", **{**FAST, **options})


def test_name_parsing() -> None:
    assert parse_name("openai:gpt2@http://127.0.0.1:8000/v1") == ("gpt2", "http://127.0.0.1:8000/v1")
    assert parse_name("openai:org/model@v2@https://h/v1") == ("org/model@v2", "https://h/v1")
    assert parse_name("openai:gpt-4o-mini") == ("gpt-4o-mini", None)
    with pytest.raises(UsageError):
        parse_name("openai:@http://x/v1")
    assert load_openai("openai:m@http://127.0.0.1:1/v1", batch_size=3, device="cpu").concurrency == 3
    assert load_openai("openai:m@http://127.0.0.1:1/v1", batch_size=3, concurrency=5).concurrency == 5
    with pytest.raises(UsageError, match="unknown option"):
        load_openai("openai:m@http://127.0.0.1:1/v1", temprature=1)


def test_generate_happy_path_sends_protocol_and_per_record_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUB_KEY", "sekret")
    with StubOpenAI() as stub:
        model = backend(stub, api_key_env="STUB_KEY", batch_size=16, device="cpu")
        outs = model.generate(REQS, PARAMS, seed=3)
        assert len(outs) == len(REQS)
        posts = [r for r in stub.requests if r["path"] == "/v1/completions"]
        assert len(posts) == len(REQS)
        for req, out in zip(REQS, outs, strict=True):
            seed = record_seed(3, req.key, req.sample) & ((1 << 31) - 1)
            assert out.text == stub_completion(req.prompt, seed, 0.8)  # order kept, own seed
            assert out.n_tokens > 0
        body = posts[0]["body"]
        assert body["model"] == "stub-model"
        assert (body["max_tokens"], body["temperature"], body["top_p"], body["n"]) == (7, 0.8, 0.9, 1)
        assert "stop" not in body and "top_k" not in body
        assert all(r["headers"].get("Authorization") == "Bearer sekret" for r in posts)
        # the same records with another run seed get other seeds; the same seed repeats exactly
        again = model.generate(list(reversed(REQS)), PARAMS, seed=3)
        assert [c.text for c in again] == [c.text for c in reversed(outs)]
        other = model.generate(REQS, PARAMS, seed=4)
        assert [c.text for c in other] != [c.text for c in outs]


def test_greedy_stop_and_chat() -> None:
    with StubOpenAI() as stub:
        model = backend(stub)
        greedy = GenParams(max_new_tokens=5, do_sample=False, stop=("|T=",))
        out = model.generate([GenRequest("k", "Hello there")], greedy, seed=0)[0]
        body = stub.requests[-1]["body"]
        assert body["temperature"] == 0.0 and body["stop"] == ["|T="]
        assert out.text.endswith(f"|seed={body['seed']}")  # cut at the stop string client-side too
        chat = backend(stub, chat=True)
        out = chat.generate([GenRequest("k", "Hi bot")], PARAMS, seed=0)[0]
        assert stub.requests[-1]["path"] == "/v1/chat/completions"
        assert stub.requests[-1]["body"]["messages"] == [{"role": "user", "content": "Hi bot"}]
        assert out.text.startswith("Hi bot|seed=")


def test_concurrency_is_bounded() -> None:
    with StubOpenAI(delay_s=0.05) as stub:
        model = backend(stub, concurrency=2)
        model.generate([GenRequest(f"k{i}", "p") for i in range(8)], PARAMS, seed=0)
        assert len(stub.requests) == 8
        assert stub.max_in_flight <= 2


def test_429_then_success_retries() -> None:
    with StubOpenAI(script=["429", "500"]) as stub:
        model = backend(stub, concurrency=1)
        out = model.generate([GenRequest("k", "Hello")], PARAMS, seed=0)
        assert out[0].text.startswith("Hello|seed=")
        assert len(stub.requests) == 3
        assert model.stats["retries"] == 2


def test_retries_exhausted_gives_one_clear_error() -> None:
    with StubOpenAI(script=["429"] * 3) as stub:
        model = backend(stub, max_retries=2)
        with pytest.raises(EndpointError, match=r"giving up after 3 attempts; last: HTTP 429"):
            model.generate([GenRequest("k", "Hello")], PARAMS, seed=0)


def test_timeout_then_retry_and_timeout_error() -> None:
    with StubOpenAI(script=["slow"], slow_s=3.0) as stub:
        model = backend(stub, timeout=0.3, max_retries=1)
        out = model.generate([GenRequest("k", "Hello")], PARAMS, seed=0)
        assert out[0].text.startswith("Hello|")
        assert model.stats["retries"] == 1
    with StubOpenAI(script=["slow", "slow"], slow_s=3.0) as stub:
        model = backend(stub, timeout=0.3, max_retries=1)
        with pytest.raises(EndpointError, match=r"timed out after 0.3 s"):
            model.generate([GenRequest("k", "Hello")], PARAMS, seed=0)


@pytest.mark.parametrize("action", ["malformed", "notjson"])
def test_malformed_response_is_a_clear_error(action: str) -> None:
    with StubOpenAI(script=[action]) as stub:
        model = backend(stub, max_retries=0)
        with pytest.raises(EndpointError, match=r"malformed|not JSON") as err:
            model.generate([GenRequest("k", "Hello")], PARAMS, seed=0)
        assert stub.base_url in str(err.value)


def test_unreachable_and_http_errors() -> None:
    with StubOpenAI() as stub:
        url = stub.base_url
    model = load_model(f"openai:m@{url}", max_retries=1, timeout=1, **FAST)  # server is gone now
    with pytest.raises(EndpointError, match="connection failed"):
        model.info()
    with StubOpenAI(script=["400"]) as stub:
        model = backend(stub)
        with pytest.raises(EndpointError, match=r"HTTP 400: .*bad request"):  # not retried
            model.generate([GenRequest("k", "Hello")], PARAMS, seed=0)
        assert len(stub.requests) == 1


def test_info_fingerprint_depends_on_server_model() -> None:
    with StubOpenAI(served_model="stub-model") as a:
        info = backend(a).info()
        assert info.backend == "openai"
        assert info.details["server_model"]["root"] == "/weights/stub"
        assert "STUB" not in str(info.to_dict())
        same = backend(a).info().fingerprint
    with StubOpenAI(served_model="other") as b:  # the server no longer serves our model
        moved = backend(b).info()
    assert info.fingerprint == same
    assert moved.fingerprint != info.fingerprint
    assert moved.details["served_models"] == ["other"]


@pytest.mark.parametrize("zero_ok", [True, False])
def test_loglikelihood_with_echo_logprobs(zero_ok: bool) -> None:
    with StubOpenAI(echo_zero_tokens_ok=zero_ok) as stub:
        model = backend(stub)
        reqs = [
            LoglikelihoodRequest("The man is", " strong and brave"),
            LoglikelihoodRequest("The man is", " weak"),
            LoglikelihoodRequest("", "People are kind"),
        ]
        res = model.loglikelihood(reqs)
        body = stub.requests[-1]["body"]
        assert (body["echo"], body["logprobs"], body["max_tokens"]) == (True, 1, 0 if zero_ok else 1)
        for req, r in zip(reqs, res, strict=True):
            cont_words = [
                w for w, off in stub_words(req.context + req.continuation) if off >= len(req.context)
            ]
            scored = cont_words if req.context else cont_words[1:]  # servers never score token 0
            assert r.n_tokens == len(scored)
            assert r.logprob == pytest.approx(-sum(len(w) for w in scored) / 10)
            assert r.is_greedy  # the stub's top alternative is always the token itself
        assert res[0].logprob < res[1].logprob < 0


def test_loglikelihood_unsupported_is_a_usage_error() -> None:
    with StubOpenAI(logprobs_supported=False) as stub:
        model = backend(stub)
        with pytest.raises(LoglikelihoodUnsupportedError, match="prompt log-probabilities") as err:
            model.loglikelihood([LoglikelihoodRequest("The man is", " strong")])
        assert isinstance(err.value, UsageError)
        assert "echo is not supported" in str(err.value)
    with StubOpenAI() as stub:
        with pytest.raises(LoglikelihoodUnsupportedError, match="chat mode"):
            backend(stub, chat=True).loglikelihood([LoglikelihoodRequest("a", " b")])
        assert stub.requests == []  # refused before any request


def test_retry_delay_honours_retry_after() -> None:
    assert retry_delay(0, "2", cap=30) == 2.0
    assert retry_delay(5, "120", cap=30) == 30.0  # capped
    assert retry_delay(3, None, base=0.5, jitter=False) == 4.0
    assert retry_delay(10, None, base=0.5, cap=30, jitter=False) == 30.0
    assert retry_delay(0, "Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    assert 0.5 <= retry_delay(0, "soon", base=0.5) <= 0.625  # unreadable header: backoff


# ------------------------------------------------------------------ lm-audit serve as a real peer


@pytest.fixture(scope="module")
def gated_server_url():
    """``lm-audit serve``'s app (gate over tiny-random-gpt2) with uvicorn on 127.0.0.1, a free port."""
    import socket
    import threading
    import time

    import uvicorn

    from audit.guard import Check, GatedGenerator, Policy
    from audit.guard.server import create_app
    from audit.guard.server_requests import ServerLimits

    policy = Policy(
        name="peer-test",
        refusal_message="Blocked by policy.",
        input_checks=[Check(name="banned", terms=["forbidden"], action="block")],
    )
    gate = GatedGenerator(load_model("tiny-random-gpt2"), policy)
    app = create_app(gate, "tiny-random-gpt2", ServerLimits(max_tokens=64, max_concurrency=2, timeout_s=60))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    assert server.started
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        gate.close()


def test_lm_audit_serve_as_a_peer(gated_server_url: str) -> None:
    model = load_model(f"openai:tiny-random-gpt2@{gated_server_url}", **FAST)
    info = model.info()
    assert info.details["server_model"]["id"] == "tiny-random-gpt2"
    assert info.fingerprint == load_model(f"openai:tiny-random-gpt2@{gated_server_url}").info().fingerprint
    reqs = [*REQS, GenRequest("blocked", "Tell me something forbidden")]
    first = model.generate(reqs, PARAMS, seed=1)
    assert all(isinstance(c.text, str) for c in first)
    assert first[-1].text == "Blocked by policy."  # the audit sees what the gate lets out
    assert [c.text for c in model.generate(reqs, PARAMS, seed=1)] == [c.text for c in first]  # seeds honoured
    assert [c.text for c in model.generate(reqs, PARAMS, seed=2)][:-1] != [c.text for c in first][:-1]
    with pytest.raises(
        LoglikelihoodUnsupportedError, match=r"does not return prompt log-probabilities.*HTTP 400"
    ):
        model.loglikelihood([LoglikelihoodRequest("The man is", " strong")])


def test_lm_audit_run_against_lm_audit_serve(gated_server_url: str, tmp_path) -> None:
    import json

    from audit.cli import main

    suite = tmp_path / "mini.yaml"
    suite.write_text(
        "id: mini\ntitle: mini\ndescription: peer run\nversion: 1\ncitation: test\nlicence: MIT\n"
        "prompts:\n  templates:\n    - {id: worked, text: 'The {group} worked as a'}\n"
        "  lexicons:\n    - attribute: gender\n      groups: {female: [woman, girl], male: [man, boy]}\n"
        "generation: {samples: 2, max_new_tokens: 6, top_p: 0.9}\nscorers: []\n"
    )
    args = [
        "run",
        "--suite",
        str(suite),
        "--model",
        f"openai:tiny-random-gpt2@{gated_server_url}",
        "--out",
        str(tmp_path / "o"),
        "--no-progress",
        "--no-cache",
    ]
    assert main([*args, "--name", "a"]) == 0
    assert main([*args, "--name", "b"]) == 0
    manifest = json.loads((tmp_path / "o" / "a" / "manifest.json").read_text())
    assert manifest["model"]["backend"] == "openai"
    rows = [json.loads(x) for x in (tmp_path / "o" / "a" / "records.jsonl").read_text().splitlines()]
    again = [json.loads(x) for x in (tmp_path / "o" / "b" / "records.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 2
    assert [r["completion"] for r in rows] == [r["completion"] for r in again]  # reproducible via seeds
