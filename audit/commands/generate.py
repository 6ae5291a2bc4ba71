"""``lm-audit generate``: one gated completion, printed with the filter's decision."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from audit.commands._args import seed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate one completion through the gated filter", description=__doc__)
    p.add_argument("prompt", help="the prompt text ('-' reads it from standard input)")
    p.add_argument("--model", metavar="NAME|PATH", help="model (default: smollm2-135m)")
    p.add_argument(
        "--policy", metavar="NAME|PATH", help="filter policy .yaml, or a name in probes/policies (default: built-in)"
    )
    p.add_argument("--max-tokens", type=int, default=48, help="new tokens at most (default 48)")
    p.add_argument("--temperature", type=float, default=0.7, help="0 means greedy (default 0.7)")
    p.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling mass (default 0.9)")
    p.add_argument("--seed", type=seed, default=0, help="seed, 0 to 2**63-1 (default 0)")
    p.add_argument("--chat", choices=["auto", "on", "off"], default="auto", help="use the chat template (default auto)")
    p.add_argument("--stream", action="store_true", help="print text as it passes the checks")
    p.add_argument("--log", type=Path, metavar="FILE", help="append the decision to this JSONL file")
    p.add_argument("--json", action="store_true", help="print one JSON object: text and decision")
    p.set_defaults(func=run)


def safe_terminal_text(text: str) -> str:
    """Model text is untrusted: show control characters (ANSI escapes, bidi overrides) as escapes."""
    import unicodedata

    out = []
    for ch in text:
        if ch in "\n\t":
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs"):
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def run(args: argparse.Namespace) -> int:
    from audit.core.errors import UsageError

    if not 1 <= args.max_tokens <= 4096:
        raise UsageError("--max-tokens must be between 1 and 4096")
    if args.temperature < 0 or not 0 < args.top_p <= 1:
        raise UsageError("--temperature must be >= 0 and --top-p in (0, 1]")
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    if args.log is not None:
        from audit.commands._args import check_out_dir

        check_out_dir(args.log.parent, "--log")
        if args.log.is_dir():
            raise UsageError(f"--log {args.log} is a folder; give a file")

    from audit.core.types import GenParams
    from audit.guard import GatedGenerator, load_policy
    from audit.models.registry import load_model

    policy = load_policy(args.policy)
    model = load_model(args.model)
    chat = {"on": True, "off": False}.get(args.chat, bool(getattr(model, "has_chat_template", False)))
    params = GenParams(
        max_new_tokens=args.max_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        do_sample=args.temperature > 0,
        chat=chat,
    )
    gate = GatedGenerator(model, policy, params=params, seed=args.seed, log_path=args.log)
    try:
        if args.stream and not args.json:
            decision = None
            for event in gate.stream(prompt):
                sys.stdout.write(safe_terminal_text(event.delta))
                sys.stdout.flush()
                decision = event.decision
            sys.stdout.write("\n")
            assert decision is not None
            text = None
        elif args.stream:
            events = list(gate.stream(prompt))
            decision, text = events[-1].decision, events[-1].text
        else:
            result = gate.generate(prompt)
            decision, text = result.decision, result.text
    finally:
        gate.close()
    assert decision is not None
    if args.json:
        print(json.dumps({"text": text, "decision": decision.to_dict()}, ensure_ascii=False))
    else:
        if text is not None:
            print(safe_terminal_text(text))
        state = "allowed" if decision.allowed else "BLOCKED"
        print(f"--- gate: {state}, action {decision.action} - {safe_terminal_text(decision.reason)}")
        for check in decision.checks:
            score = "error" if check.score is None else f"{check.score:.3f}"
            op = ">=" if check.direction == "above" else "<"
            mark = "FLAGGED" if check.flagged else "ok"
            print(f"    {check.stage}:{check.name} {check.key}={score} (flags at {op} {check.threshold:g}) {mark}")
        lat = decision.latency
        print(
            f"    latency: generate {lat.get('generate_s', 0):.3f} s, filter {lat.get('filter_s', 0):.4f} s, "
            f"total {lat.get('total_s', 0):.3f} s"
        )
    return 0 if decision.allowed else 1
