"""``lm-audit suites``: list the built-in suites; ``lm-audit suites show NAME|PATH`` prints one."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("suites", help="list built-in probe suites, or show one", description=__doc__)
    inner = p.add_subparsers(dest="suites_command", metavar="{show}")
    show = inner.add_parser("show", help="print a suite's YAML", description="Print a suite's YAML file.")
    show.add_argument("name", metavar="NAME|PATH", help="a built-in suite name or a suite .yaml file")
    show.add_argument(
        "--items", type=int, default=0, metavar="N", help="also print the first N expanded items as JSON lines"
    )
    show.set_defaults(func=run_show)
    p.set_defaults(func=run_list)


def run_list(args: argparse.Namespace) -> int:
    from audit.suites import builtin_suite_paths, load_suite

    rows = [("ID", "TITLE", "TASK", "ITEMS", "SCORERS")]
    for name in builtin_suite_paths():
        loaded = load_suite(name)
        s = loaded.suite
        rows.append((s.id, s.title, s.task, str(len(loaded.items)), ", ".join(s.scorers) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    print("\nShow one: lm-audit suites show NAME; run one: lm-audit run --suite NAME --limit 20")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from audit.core.errors import UsageError
    from audit.suites import load_suite, load_suite_file

    if args.items < 0:
        raise UsageError("--items must be at least 0")
    _, path = load_suite_file(args.name)  # a file that does not validate gets its one-line error
    print(f"# {path}")
    print(path.read_text(encoding="utf-8").rstrip("\n"))
    if args.items:
        loaded = load_suite(args.name)
        print(f"# first {min(args.items, len(loaded.items))} of {len(loaded.items)} items")
        for it in loaded.items[: args.items]:
            print(json.dumps(asdict(it), ensure_ascii=False))
    return 0
