"""``lm-audit score``: score your own texts with any scorer, one JSON object per text.

Examples:
  lm-audit score --scorer toxicity "you are an idiot" "have a nice day"
  lm-audit score --scorer toxicity --option neutralize_identity=true "I am a gay man."
  lm-audit score --scorer toxicity:detoxify --option checkpoint=toxic.ckpt --option config_dir=bert/ "text"
  lm-audit score --scorer factuality --ref Paris --ref "Paris, France" --incorrect Lyon "It is Paris."
  lm-audit score --scorer sentiment --file texts.txt        (one text per line; "-" reads stdin)
  lm-audit score --scorer factuality --file qa.jsonl        ({"text", "correct", "incorrect"} per line)
  lm-audit score --scorer toxicity --self-audit             (the scorer's identity-term self-audit)
  lm-audit score --scorer refusal --file answers.jsonl      ({"text", "prompt", "prompt_class": "safe"|"unsafe"})
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from pathlib import Path
from typing import Any

from audit.core.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score texts with a scorer (prints JSON lines)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to score")
    p.add_argument("--scorer", "-s", help="scorer name, optionally with a backend: toxicity, toxicity:detoxify, ...")
    p.add_argument("--file", "-f", help="read texts from a file: one per line, or JSONL with a 'text' field; '-' = stdin")
    p.add_argument("--ref", action="append", default=[], metavar="REF", help="a correct answer or alias (repeatable)")
    p.add_argument("--incorrect", action="append", default=[], metavar="REF", help="an incorrect answer (repeatable)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE", help="scorer option (repeatable)")
    p.add_argument("--self-audit", action="store_true", help="print the scorer's identity-term self-audit instead")
    p.add_argument("--threshold", type=float, default=0.5, help="threshold of the self-audit (default 0.5)")
    p.add_argument("--list", action="store_true", help="list scorer names and exit")
    p.set_defaults(func=run)


_UNSAFE = re.compile(r"[\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]")


def safe_json(obj: Any) -> str:
    """JSON with readable Unicode, but control, bidi and zero-width characters kept as ``\\uXXXX``
    escapes, so untrusted text cannot reorder or hide what a terminal shows."""
    text = json.dumps(obj, ensure_ascii=False)
    text = _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return "".join(
        json.dumps(c)[1:-1] if unicodedata.category(c) in ("Cf", "Co", "Cs") and ord(c) > 0xFFFF else c
        for c in text
    )


def _read_inputs(args: argparse.Namespace) -> tuple[list[str], list[dict[str, Any]]]:
    """Texts, plus per-text reference dicts from a JSONL file (empty dicts otherwise)."""
    texts = list(args.texts)
    per_text: list[dict[str, Any]] = [{} for _ in texts]
    if args.file:
        try:
            raw = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read --file {args.file}: {exc}") from None
        jsonl = args.file.endswith(".jsonl")
        for n, line in enumerate(raw.splitlines(), 1):
            if not jsonl:
                texts.append(line)
                per_text.append({})
                continue
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                texts.append(row["text"])
            except (ValueError, KeyError, TypeError):
                raise UsageError(f"{args.file}:{n}: expected a JSON object with a 'text' field") from None
            if not isinstance(row["text"], str):
                raise UsageError(f"{args.file}:{n}: 'text' must be a string")
            for k in ("prompt", "prompt_class"):  # prompt context for prompt-aware scorers (refusal)
                if row.get(k) is not None and not isinstance(row[k], str):
                    raise UsageError(f"{args.file}:{n}: '{k}' must be a string")
            per_text.append({k: row[k] for k in ("correct", "incorrect", "prompt", "prompt_class") if k in row})
    return texts, per_text


def run(args: argparse.Namespace) -> int:
    from audit.scorers.options import parse_cli_option
    from audit.scorers.registry import available, get_scorer

    if args.list:
        for name in available():
            print(name)
        return 0
    if not args.scorer:
        raise UsageError(f"--scorer NAME is required (available: {', '.join(available())})")
    options = dict(parse_cli_option(o) for o in args.option)
    if args.self_audit:
        from audit.scorers.self_audit import run_self_audit

        print(safe_json(run_self_audit(args.scorer, args.threshold, **options)))
        return 0
    texts, per_text = _read_inputs(args)
    if not texts:
        raise UsageError("no text to score: pass TEXT arguments or --file FILE")
    scorer = get_scorer(args.scorer, **options)
    refs = None
    if scorer.needs_refs:
        from audit.scorers.base import Reference

        refs = []
        for extra in per_text:
            correct = list(extra.get("correct", [])) + args.ref
            incorrect = list(extra.get("incorrect", [])) + args.incorrect
            refs.append(Reference(correct=correct, incorrect=incorrect))
        if not any(r.correct for r in refs):
            raise UsageError(f"scorer '{args.scorer}' needs references: pass --ref ANSWER (and --incorrect ...)")
    elif args.ref or args.incorrect:
        raise UsageError(f"scorer '{args.scorer}' takes no references (--ref/--incorrect)")
    if getattr(scorer, "needs_prompts", False) and any(e.get("prompt") or e.get("prompt_class") for e in per_text):
        from audit.scorers.base import PromptContext

        ctx = [PromptContext(e.get("prompt") or "", e.get("prompt_class")) for e in per_text]
        rows = scorer.score_in_context(texts, ctx)
    else:
        rows = scorer.score(texts, refs)
    out = sys.stdout
    for text, row in zip(texts, rows, strict=True):
        out.write(safe_json({"scorer": args.scorer, "version": scorer.version, "text": text, "scores": row}) + "\n")
    out.flush()
    return 0
