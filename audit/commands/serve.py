"""``lm-audit serve``: an OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions,
/healthz) with the gated filter applied to every request."""

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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from audit.errors import UsageError

    if not 0 < args.port < 65536:
        raise UsageError("--port must be between 1 and 65535")
    if args.max_concurrency < 1 or args.max_queue < 0 or args.timeout <= 0 or args.max_body_bytes < 256:
        raise UsageError("--max-concurrency >= 1, --max-queue >= 0, --timeout > 0, --max-body-bytes >= 256")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.stderr.write(f"warning: binding {args.host}: the server is reachable from other machines\n")

    from audit.gated import GatedGenerator, load_policy
    from audit.gated.server import ServerLimits, serve
    from audit.models.registry import load_model

    policy = load_policy(args.policy)
    model = load_model(args.model)
    gate = GatedGenerator(model, policy, log_path=args.log)
    limits = ServerLimits(
        max_body_bytes=args.max_body_bytes,
        max_tokens=args.max_tokens,
        max_concurrency=args.max_concurrency,
        max_queue=args.max_queue,
        timeout_s=args.timeout,
    )
    name = model.info().name
    print(f"serving {name} with policy '{policy.name}' on http://{args.host}:{args.port}", flush=True)
    try:
        serve(gate, name, args.host, args.port, limits)
    finally:
        gate.close()
    return 0
