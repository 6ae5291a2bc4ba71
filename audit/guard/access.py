"""Who may use the gated server: an API key and a Host header allow-list (ASGI middleware).

- **API key.** ``lm-audit serve --api-key-env VAR`` reads the key from the environment variable
  ``VAR`` (never from the command line, where ``ps`` and shell history would show it). Every request
  then needs ``Authorization: Bearer <key>`` (what the OpenAI clients send), else 401 with an
  OpenAI-shaped error body. Keys are compared in constant time. A key must be printable ASCII with
  no whitespace (what a client can send back unchanged) and carry at least ``MIN_KEY_BITS`` (128)
  bits of estimated entropy (``key_entropy_bits``), so one repeated character or a short pattern is
  refused before the server starts. ``/healthz`` stays open so liveness probes need no secret, but
  says nothing beyond ``{"status": "ok"}`` without the key.
- **Host allow-list.** A request whose ``Host`` header is not the bound address, ``localhost`` or
  ``127.0.0.1`` (plus what ``--allow-host`` adds) gets 421, so a web page that DNS-rebinds its own
  name to 127.0.0.1 cannot drive the server from a browser. ``*`` turns the check off. The header is
  parsed strictly (``parse_host``): a DNS name or IPv4 address, or a bracketed IPv6 address, then
  at most ``:port`` with a port of 1 to 65535; anything else (``localhost:evil.example``,
  ``[::1]junk``, two Host headers) is refused.
- **CORS** stays off: no ``Access-Control-Allow-*`` header is ever sent, so browsers keep
  cross-origin pages from reading responses.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
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


MIN_KEY_BITS = 128
KEY_HINT = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_PORT = re.compile(r"[0-9]{1,5}")


def _period(key: str) -> int:
    """The shortest p such that ``key`` is its first p characters repeated (``len(key)`` if none)."""
    n = len(key)
    for p in range(1, n // 2 + 1):
        if all(key[i] == key[i % p] for i in range(n)):
            return p
    return n


def key_entropy_bits(key: str) -> float:
    """Estimated entropy of a key in bits: (characters that are not predictable from the one
    before) x log2(the size of the character classes it uses: lower, upper, digits, symbols).
    A character is predictable when it repeats the previous one or continues a +-1 run
    (``aaaa``, ``abcd``, ``4321``); a key that is a shorter pattern repeated counts that pattern
    once. An estimate (a random-looking human pick scores too high), but it refuses the keys people
    type: ``aaaaaaaaaaaaaaaa``, ``0123456789abcdef``, ``passwordpassword``."""
    if not key:
        return 0.0
    pool = sum(
        size
        for size, has in (
            (26, any(c.islower() for c in key)),
            (26, any(c.isupper() for c in key)),
            (10, any(c.isdigit() for c in key)),
            (32, any(not c.isalnum() for c in key)),
        )
        if has
    )
    core = key[: _period(key)]
    fresh = 1 + sum(1 for a, b in pairwise(core) if abs(ord(b) - ord(a)) > 1)
    return fresh * math.log2(max(pool, 2))


def key_problem(key: str) -> str | None:
    """Why ``key`` is not good enough for the server (None when it is)."""
    if not key:
        return "is empty"
    if any(c.isspace() for c in key):
        return "holds whitespace (clients strip or split it, and then no one gets in)"
    if not all(0x21 <= ord(c) <= 0x7E for c in key):
        return "is not printable ASCII (HTTP clients send header values as ASCII)"
    if len(set(key)) == 1:
        return "is one character repeated"
    bits = key_entropy_bits(key)
    if bits < MIN_KEY_BITS:
        return f"has about {bits:.0f} bits of estimated entropy, under {MIN_KEY_BITS}"
    return None


def check_key(key: str, source: str = "the API key") -> None:
    """Raise a one-line ``UsageError`` naming ``source`` when the key is weak or malformed."""
    problem = key_problem(key)
    if problem is not None:
        from audit.core.errors import UsageError

        raise UsageError(f"{source} {problem}; {KEY_HINT}")


def parse_host(value: str | None) -> str | None:
    """The host of a Host header, lower-cased (``[::1]:80`` -> ``::1``), or None when the header is
    not ``name-or-IPv4[:port]`` / ``[IPv6][:port]`` with a port of 1 to 65535."""
    if value is None:
        return None
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            return None
        if "%" in name:  # a zone id: link-local, never ours
            return None
    else:
        name = value.partition(":")[0]
        rest = value[len(name) :]
        if not _NAME.fullmatch(name):
            return None
    if rest:
        port = rest[1:]
        if not rest.startswith(":") or not _PORT.fullmatch(port) or not 0 < int(port) < 65536:
            return None
    return name


def _host_name(value: str) -> str:
    """A bind address or ``--allow-host`` value as the name a Host header would carry: a bare IP
    (``::1``) as is, else what ``parse_host`` makes of it; one-line ``UsageError`` if neither."""
    value = value.strip().lower()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    name = parse_host(value)
    if name is None:
        from audit.core.errors import UsageError

        raise UsageError(f"'{value[:80]}' is not a host name or address (name, IPv4, [IPv6], optionally :port)")
    return name


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

    def __post_init__(self) -> None:
        if self.api_key is not None:
            check_key(self.api_key)

    def host_allowed(self, header: str | None) -> bool:
        if not self.allowed_hosts:
            return True
        name = parse_host(header)
        return name is not None and name in self.allowed_hosts

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
        raw = scope.get("headers") or []
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}
        n_hosts = sum(1 for k, _ in raw if k.lower() == b"host")
        if n_hosts > 1 or not self.access.host_allowed(headers.get("host")):
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
