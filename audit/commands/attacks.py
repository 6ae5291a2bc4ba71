"""``lm-audit attacks``: list the attack transforms (name, family, reversible, what it does);
``lm-audit attacks show NAME "text"`` prints one attack applied to a text (and decoded back, when
reversible), escaped so that invisible and right-to-left characters are visible."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("attacks", help="list attack transforms (for run --attacks), or apply one",
                       description=__doc__)
    inner = p.add_subparsers(dest="attacks_command", metavar="{show}")
    show = inner.add_parser("show", help="apply one attack to a text",
                            description="Print an attack applied to a text, as sent to a model.")
    show.add_argument("name", help="an attack name (lm-audit attacks lists them)")
    show.add_argument("text", help="the text to transform")
    show.add_argument("--seed", type=int, default=0, help="the seed (seeded attacks only; default 0)")
    show.set_defaults(func=run_show)
    p.set_defaults(func=run_list)


def run_list(args: argparse.Namespace) -> int:
    from audit.attacks import available, get_attack

    rows = [("NAME", "FAMILY", "REVERSIBLE", "WHAT IT DOES")]
    for name in available():
        a = get_attack(name)
        variants = f" ({a.variants} seeded draws per prompt)" if a.variants > 1 else ""
        rows.append((a.name, a.family, "yes" if a.reversible else "no", a.description + variants))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[3])
    print("\nUse: lm-audit run --suite misuse-refusal --attacks base64,rot13 (or all); "
          "lm-audit attacks show NAME \"text\"")
    return 0


def _visible(text: str) -> str:
    """``text`` with control, format (zero-width, bidirectional) and other invisible characters as \\uXXXX."""
    import unicodedata

    return "".join(c if c in "\n" or unicodedata.category(c)[0] not in "CZ" or c == " " else f"\\u{ord(c):04x}"
                   for c in text)


def run_show(args: argparse.Namespace) -> int:
    from audit.attacks import get_attack

    a = get_attack(args.name)
    print(_visible(a.prompt(args.text, args.seed)))
    if a.reversible:
        print(f"# decoded: {_visible(a.decode(a.apply(args.text, args.seed)) or '')}")
    return 0
