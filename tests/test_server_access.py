"""Server access control and /v1/moderations, driven by the official ``openai`` client on loopback:
an API key (missing, wrong, right), a Host allow-list against DNS rebinding, no CORS, and the
moderation route in both the full and the ``--moderation-only`` server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import openai
import pytest

from audit.guard import Check, GatedGenerator, Policy
from audit.guard.access import AccessControl
from audit.guard.server import create_app
from audit.guard.server_requests import ServerLimits
from audit.models.registry import load_model
from tests.test_server import running

pytestmark = pytest.mark.xdist_group("gated-server")

KEY = "Vq3xN8pL2mR7tK4wZ9bJ6hF1cY5dS0gA"  # 32 random-looking characters, ~190 bits estimated
POLICY = Policy(
    name="access-test",
    refusal_message="Blocked by policy.",
    input_checks=[Check(name="toxic-prompt", scorer="toxicity", threshold=0.9, action="block")],
    output_checks=[
        Check(name="toxic-output", scorer="toxicity", threshold=0.5, action="block"),
        Check(name="words", terms=["idiot"], action="redact"),
    ],
)
LIMITS = ServerLimits(max_body_bytes=4096, max_tokens=32, max_prompts=4, timeout_s=60)


@pytest.fixture(scope="module")
def keyed_url() -> Iterator[str]:
    gate = GatedGenerator(load_model("tiny-random-gpt2"), POLICY)
    access = AccessControl.for_bind("127.0.0.1", KEY)
    with running(create_app(gate, "tiny-random-gpt2", LIMITS, access)) as url:
        yield url
    gate.close()


@pytest.fixture(scope="module")
def moderation_url() -> Iterator[str]:
    gate = GatedGenerator(None, POLICY)
    with running(create_app(gate, "lm-audit-moderation", LIMITS, AccessControl.for_bind("127.0.0.1"))) as url:
        yield url
    gate.close()


def _client(url: str, key: str | None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key or "unset", max_retries=0, timeout=60)


def test_without_a_key_the_openai_client_gets_401(keyed_url: str) -> None:
    # the client always sends some key; a request without any Authorization header is also refused
    r = httpx.post(f"{keyed_url}/v1/completions", json={"prompt": "Hello", "max_tokens": 2})
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["code"] == "invalid_api_key" and err["type"] == "invalid_request_error" and "Bearer" in err["message"]
    with pytest.raises(openai.AuthenticationError) as exc:
        _client(keyed_url, "unset").completions.create(model="tiny-random-gpt2", prompt="Hello", max_tokens=2)
    assert exc.value.status_code == 401


def test_a_wrong_key_gets_401(keyed_url: str) -> None:
    with pytest.raises(openai.AuthenticationError):
        _client(keyed_url, KEY + "x").chat.completions.create(
            model="tiny-random-gpt2", messages=[{"role": "user", "content": "Hi"}], max_tokens=2
        )
    with pytest.raises(openai.AuthenticationError):
        _client(keyed_url, KEY[:-1]).moderations.create(input="hello")


def test_the_right_key_is_served_on_every_route(keyed_url: str) -> None:
    client = _client(keyed_url, KEY)
    done = client.completions.create(model="tiny-random-gpt2", prompt="Hello there", max_tokens=4, seed=1)
    assert done.choices[0].finish_reason in ("stop", "length", "content_filter")
    chat = client.chat.completions.create(
        model="tiny-random-gpt2", messages=[{"role": "user", "content": "Hi"}], max_tokens=4, seed=1
    )
    assert isinstance(chat.choices[0].message.content, str)
    assert [m.id for m in client.models.list()] == ["tiny-random-gpt2"]
    mod = client.moderations.create(input=["Have a lovely day.", "You stupid idiot, shut up."])
    assert [r.flagged for r in mod.results] == [False, True]


def test_healthz_stays_open_for_liveness_probes_but_says_only_ok_without_the_key(keyed_url: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": KEY}):
        r = httpx.get(f"{keyed_url}/healthz", headers=headers)
        assert r.status_code == 200 and r.json() == {"status": "ok"}, headers
        assert "tiny-random-gpt2" not in r.text and "access-test" not in r.text
    full = httpx.get(f"{keyed_url}/healthz", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert full["status"] == "ok" and full["model"] == "tiny-random-gpt2" and full["policy"] == "access-test"
    assert {"served", "blocked", "waiting"} <= set(full)


@pytest.mark.parametrize("host", [
    "evil.example", "evil.example:80", "127.0.0.1.evil.example", "localhost.evil",
    "localhost:evil.example", "[::1]evil.example", "127.0.0.1:evil", "localhost:", "localhost:0",
    "localhost:65536", "localhost:+80", "localhost:80:80", "::1", "[::1", "[::1]:", "[::1]:x", "local host",
    "[fe80::1%25lo]",
])
def test_a_foreign_host_header_is_rejected(keyed_url: str, host: str) -> None:
    """A page that DNS-rebinds its own name to 127.0.0.1 sends its own name as Host."""
    for path in ("/v1/models", "/healthz"):
        r = httpx.get(f"{keyed_url}{path}", headers={"Host": host, "Authorization": f"Bearer {KEY}"})
        assert r.status_code == 421, (host, path)
        assert r.json()["error"]["code"] == "bad_host"
    port = keyed_url.rsplit(":", 1)[1]
    for ok in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        assert httpx.get(f"{keyed_url}/healthz", headers={"Host": ok}).status_code == 200


def test_cors_stays_off(keyed_url: str) -> None:
    r = httpx.options(
        f"{keyed_url}/v1/completions",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST", "Authorization": f"Bearer {KEY}"},
    )
    assert not any(h.lower().startswith("access-control-allow") for h in r.headers)
    r = httpx.get(f"{keyed_url}/v1/models", headers={"Origin": "https://evil.example", "Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_two_host_headers_are_refused(keyed_url: str) -> None:
    """httpx will not send two Host headers, so a raw socket does; the second must not win."""
    import socket

    port = int(keyed_url.rsplit(":", 1)[1])
    for hosts in ([f"localhost:{port}", "evil.example"], ["evil.example", f"localhost:{port}"],
                  [f"localhost:{port}", f"localhost:{port}"]):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            head = "".join(f"Host: {h}\r\n" for h in hosts)
            sock.sendall(f"GET /healthz HTTP/1.1\r\n{head}Connection: close\r\n\r\n".encode())
            status = sock.recv(64).decode("latin-1").split(" ")[1]
        assert status in ("400", "421"), (hosts, status)


def test_host_parsing_is_strict() -> None:
    from audit.guard.access import parse_host

    assert parse_host("LocalHost:8000") == "localhost" and parse_host("[::1]:80") == "::1"
    assert parse_host("[::1]") == "::1" and parse_host("127.0.0.1:65535") == "127.0.0.1"
    for bad in ("localhost:evil.example", "[::1]evil.example", "::1", "localhost:0", "a_b.example", None):
        assert parse_host(bad) is None, bad


@pytest.mark.parametrize("key", [
    "a" * 40,                                 # one character repeated
    " " * 16,                                 # whitespace only
    f" {KEY} ",                               # padded: clients strip it, then no one gets in
    f"{KEY[:16]} {KEY[16:]}",                 # inner space
    KEY + "é",                                # not ASCII
    KEY + "\x07",                             # a control character
    "0123456789abcdef" * 2,                   # a run
    "passwordpassword" * 3,                   # a pattern repeated
    "Tr0ub4dor&3",                            # short
])
def test_weak_or_malformed_keys_are_refused(key: str) -> None:
    from audit.core.errors import UsageError

    with pytest.raises(UsageError, match=r"the API key (is |holds |has about)"):
        AccessControl.for_bind("127.0.0.1", key)


def test_random_keys_of_128_bits_or_more_are_accepted() -> None:
    import secrets

    from audit.guard.access import key_entropy_bits

    # 256-bit keys (what the error's hint suggests) always pass; the estimate is conservative, so a
    # key of exactly 128 random bits (token_hex(16)) may read lower when it happens to hold runs
    for _ in range(50):
        for key in (secrets.token_urlsafe(32), secrets.token_hex(32), secrets.token_urlsafe(24)):
            assert key_entropy_bits(key) >= 128, key
            assert AccessControl.for_bind("127.0.0.1", key).api_key == key


def test_serve_refuses_a_weak_key_in_one_line() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "F_WEAK_KEY": "x" * 64}
    cmd = [sys.executable, "-m", "audit", "serve", "--moderation-only", "--port", "8999", "--api-key-env", "F_WEAK_KEY"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "the key in F_WEAK_KEY is one character repeated" in r.stderr and "token_urlsafe(32)" in r.stderr


def test_allow_host_extends_the_list_and_star_turns_it_off() -> None:
    access = AccessControl.for_bind("127.0.0.1", None, ["gate.internal"])
    assert access.host_allowed("gate.internal:8000") and access.host_allowed("[::1]:8000")
    assert not access.host_allowed("evil.example") and not access.host_allowed(None)
    assert AccessControl.for_bind("127.0.0.1", None, ["*"]).host_allowed("anything")
    assert AccessControl.for_bind("10.1.2.3").host_allowed("10.1.2.3:8000")


def test_moderations_shape_with_the_openai_client(moderation_url: str) -> None:
    client = _client(moderation_url, None)
    out = client.moderations.create(input="You are a stupid idiot and I hate you.")
    assert out.id.startswith("modr-") and out.model == "lm-audit-moderation"
    (result,) = out.results
    assert result.flagged is True
    raw = result.to_dict()  # only what the server sent
    assert set(raw["categories"]) == {"toxicity", "terms"} and raw["categories"]["toxicity"] is True
    assert 0.5 <= raw["category_scores"]["toxicity"] <= 1.0
    decision = raw["lm_audit"]
    assert decision["allowed"] is False and decision["action"] == "block" and decision["stage"] == "output"
    assert "toxic-output" in decision["reason"] and decision["policy"] == "access-test"
    benign = client.moderations.create(input=["Otters hold hands while they sleep.", "The bus is late."])
    assert [r.flagged for r in benign.results] == [False, False]
    assert all(r.to_dict()["category_scores"]["toxicity"] < 0.5 for r in benign.results)


def test_moderations_input_stage_and_redaction(moderation_url: str) -> None:
    r = httpx.post(f"{moderation_url}/v1/moderations", json={"input": "what an idiot move", "stage": "output"})
    res = r.json()["results"][0]
    # a redaction lets the text through changed: flagged, with the redacted text in our namespace
    if res["lm_audit"]["action"] == "redact":
        assert res["flagged"] and "idiot" not in res["lm_audit"]["text"]
    inp = httpx.post(f"{moderation_url}/v1/moderations", json={"input": "hello", "stage": "input"}).json()
    assert set(inp["results"][0]["categories"]) == {"toxicity"}


@pytest.mark.parametrize(
    "body, status",
    [
        ({"input": []}, 400),
        ({"input": ["a"] * 5}, 400),
        ({"input": 5}, 400),
        ({"input": "x" * 20_000}, 400),
        ({"input": "hi", "stage": "both"}, 400),
        ({}, 400),
    ],
)
def test_moderations_limits_are_4xx(moderation_url: str, body: dict, status: int) -> None:
    r = httpx.post(f"{moderation_url}/v1/moderations", json=body)
    assert r.status_code in (status, 413), r.text
    assert "error" in r.json()


def test_moderation_only_server_has_no_completions(moderation_url: str) -> None:
    r = httpx.post(f"{moderation_url}/v1/completions", json={"prompt": "hi"})
    assert r.status_code == 404 and "moderation-only" in r.json()["error"]["message"]


def test_lone_surrogates_in_a_prompt_get_a_clean_answer(keyed_url: str) -> None:
    """The server answered 500 here: the prompt's hash and log line could not be encoded."""
    body = '{"prompt": "Hi \\ud800 there \\udfff", "max_tokens": 3}'
    r = httpx.post(
        f"{keyed_url}/v1/completions",
        content=body.encode(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    gate = r.json()["choices"][0]["gate"]
    assert gate["allowed"] in (True, False) and "text_repaired" in gate


def test_serve_command_refuses_a_missing_key_and_warns_without_one(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("F_TEST_KEY", None)
    cmd = [sys.executable, "-m", "audit", "serve", "--moderation-only", "--port", "8999", "--api-key-env", "F_TEST_KEY"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "F_TEST_KEY" in r.stderr and r.stderr.count("\n") == 1

    import audit.guard.server as server_mod
    from audit.cli import main

    served: dict = {}
    monkeypatch.setattr(server_mod, "serve", lambda gate, name, host, port, limits, access: served.update(access=access))
    assert main(["serve", "--moderation-only", "--host", "0.0.0.0", "--port", "8999"]) == 0
    err = capsys.readouterr().err
    assert "reachable from other machines" in err and "no API key" in err
    assert served["access"].api_key is None
    monkeypatch.setenv("F_TEST_KEY", KEY)
    assert main(["serve", "--moderation-only", "--api-key-env", "F_TEST_KEY", "--allow-host", "gate.lan"]) == 0
    assert served["access"].api_key == KEY and served["access"].host_allowed("gate.lan")
    assert "no API key" not in capsys.readouterr().err
