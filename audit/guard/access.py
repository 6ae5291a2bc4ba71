"""Who may use the gated server: an API key and a Host header allow-list (ASGI middleware).

- **API key.** ``lm-audit serve --api-key-env VAR`` reads the key from the environment variable
  ``VAR`` (never from the command line, where ``ps`` and shell history would show it). Every request
  then needs ``Authorization: Bearer <key>`` (what the OpenAI clients send), else 401 with an
  OpenAI-shaped error body. Keys are compared in constant time. ``/healthz`` stays open so
  liveness probes need no secret, but says nothing beyond "ok" without the key.
- **Host allow-list.** A request whose ``Host`` header is not the bound address, ``localhost`` or
  ``127.0.0.1`` (plus what ``--allow-host`` adds) gets 421, so a web page that DNS-rebinds its own
  name to 127.0.0.1 cannot drive the server from a browser. ``*`` turns the check off.
- **CORS** stays off: no ``Access-Control-Allow-*`` header is ever sent, so browsers keep
  cross-origin pages from reading responses.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
OPEN_PATHS = ("/healthz",)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(value: str) -> str:
    """The name part of a Host header: ``example.com:8000`` -> ``example.com``, ``[::1]:80`` -> ``::1``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


@dataclass
class AccessControl:
    api_key: str | None = None
    allowed_hosts: set[str] = field(default_factory=set)  # empty set = no Host check

    @classmethod
    def for_bind(cls, host: str, api_key: str | None = None, extra_hosts: Iterable[str] = ()) -> AccessControl:
        extra = {h.strip().lower() for h in extra_hosts if h.strip()}
        if "*" in extra:
            return cls(api_key=api_key, allowed_hosts=set())
        allowed = {*LOOPBACK_NAMES, _host_name(host), *(_host_name(h) for h in extra)}
        if host in ("0.0.0.0", "::"):  # all interfaces: the machine's own names are not known here
            allowed.discard(host)
        return cls(api_key=api_key, allowed_hosts=allowed)

    def host_allowed(self, header: str | None) -> bool:
        if not self.allowed_hosts:
            return True
        return header is not None and _host_name(header) in self.allowed_hosts

    def key_ok(self, header: str | None) -> bool:
        if self.api_key is None:
            return True
        if not header or not header.lower().startswith("bearer "):
            return False
        given = header[7:].strip().encode("utf-8", "surrogatepass")
        return hmac.compare_digest(given, self.api_key.encode("utf-8"))


def _send_error(status: int, message: str, kind: str, code: str) -> Callable[..., Any]:
    body = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="lm-audit"'))

    async def app(_scope: dict, _receive: Callable, send: Callable) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


class AccessMiddleware:
    """ASGI middleware applying an ``AccessControl`` before anything else runs."""

    def __init__(self, app: Any, access: AccessControl) -> None:
        self.app, self.access = app, access

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        if not self.access.host_allowed(headers.get("host")):
            shown = (headers.get("host") or "(none)")[:80]
            deny = _send_error(
                421, f"Host '{shown}' is not served here (allowed: see --allow-host)", "invalid_request_error", "bad_host"
            )
            await deny(scope, receive, send)
            return
        if scope.get("path") not in OPEN_PATHS and not self.access.key_ok(headers.get("authorization")):
            deny = _send_error(
                401,
                "missing or wrong API key: send 'Authorization: Bearer <key>'",
                "invalid_request_error",
                "invalid_api_key",
            )
            await deny(scope, receive, send)
            return
        await self.app(scope, receive, send)
