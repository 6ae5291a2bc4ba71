"""``lm-audit serve``: an OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions,
/v1/moderations, /v1/models, /healthz) with the gated filter applied to every request.

Access: ``--api-key-env VAR`` requires ``Authorization: Bearer <key>`` with the key read from the
environment variable VAR (a key is never accepted on the command line); the key must be printable
ASCII without whitespace, with at least 128 bits of estimated entropy (``secrets.token_urlsafe(32)``).
``/healthz`` answers only ``{"status": "ok"}`` to a request without the key. Requests whose Host header
is not the bound address, localhost or 127.0.0.1 (or an ``--allow-host``) get 421. No CORS.
``--moderation-only`` loads no model and serves only /v1/moderations (the policy's checks)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a gated model over an OpenAI-compatible HTTP API", description=__doc__)
    p.add_argument("--policy", metavar="NAME|PATH", help="filter policy .yaml (default: built-in)")
    p.add_argument("--model", metavar="NAME|PATH", help="model (default: smollm2-135m)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--max-concurrency", type=int, default=2, help="generations at once (default 2)")
    p.add_argument("--max-queue", type=int, default=64, help="requests waiting before 429 (default 64)")
    p.add_argument("--timeout", type=float, default=120.0, help="per-request timeout in seconds (default 120)")
    p.add_argument("--max-body-bytes", type=int, default=64_000, help="request size limit (default 64000)")
    p.add_argument("--max-tokens", type=int, default=512, help="largest max_tokens accepted (default 512)")
    p.add_argument("--log", type=Path, metavar="FILE", help="append every decision to this JSONL file")
    p.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="require 'Authorization: Bearer <key>', the key read from environment variable VAR",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also accept this Host header (repeatable; '*' accepts any, which re-opens DNS rebinding)",
    )
    p.add_argument("--moderation-only", action="store_true", help="load no model; serve only /v1/moderations")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from audit.core.errors import UsageError

    if not 0 < args.port < 65536:
        raise UsageError("--port must be between 1 and 65535")
    if args.max_concurrency < 1 or args.max_queue < 0 or args.timeout <= 0 or args.max_body_bytes < 256:
        raise UsageError("--max-concurrency >= 1, --max-queue >= 0, --timeout > 0, --max-body-bytes >= 256")
    import os

    from audit.guard.access import AccessControl, check_key, is_loopback

    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise UsageError(f"--api-key-env {args.api_key_env}: that environment variable is not set or empty")
        check_key(api_key, f"the key in {args.api_key_env}")  # >= 128 bits estimated, printable ASCII
    if not is_loopback(args.host):
        sys.stderr.write(f"warning: binding {args.host}: the server is reachable from other machines\n")
        if api_key is None:
            sys.stderr.write(
                "warning: no API key: anyone who can reach this address can use the model "
                "(set one with --api-key-env VAR)\n"
            )
    if "*" in args.allow_host:
        sys.stderr.write("warning: --allow-host '*': any Host header is served (DNS rebinding is possible)\n")
    if args.moderation_only and args.model:
        raise UsageError("--moderation-only loads no model; drop --model")
    if args.log is not None:
        from audit.commands._args import check_out_dir

        check_out_dir(args.log.parent, "--log")
    access = AccessControl.for_bind(args.host, api_key, args.allow_host)

    from audit.guard import GatedGenerator, load_policy
    from audit.guard.server import serve
    from audit.guard.server_requests import ServerLimits
    from audit.models.registry import load_model

    policy = load_policy(args.policy)
    model = None if args.moderation_only else load_model(args.model)
    gate = GatedGenerator(model, policy, log_path=args.log)
    limits = ServerLimits(
        max_body_bytes=args.max_body_bytes,
        max_tokens=args.max_tokens,
        max_concurrency=args.max_concurrency,
        max_queue=args.max_queue,
        timeout_s=args.timeout,
    )
    name = model.info().name if model is not None else f"lm-audit-moderation-{policy.name}"
    mode = " (moderation only)" if model is None else ""
    auth = f", API key from ${args.api_key_env}" if api_key else ""
    print(f"serving {name}{mode} with policy '{policy.name}' on http://{args.host}:{args.port}{auth}", flush=True)
    try:
        serve(gate, name, args.host, args.port, limits, access=access)
    finally:
        gate.close()
    return 0
