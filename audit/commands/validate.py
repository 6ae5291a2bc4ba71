"""``lm-audit validate PATH...``: check suite (or lexicon) files without running anything.

Prints ``OK`` and a one-line description for each valid file; for an invalid one, one line
``error: <file>:<line>: <field>: <problem>``. Exit code 0 when all are valid, 2 otherwise.
"""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check suite or lexicon YAML files", description=__doc__)
    p.add_argument("paths", nargs="+", metavar="PATH", help="suite .yaml files (or built-in names), or lexicon files")
    p.set_defaults(func=run)


def _is_lexicon(path: str) -> bool:
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        return False
    from audit.core.errors import UsageError
    from audit.suites.yamlsafe import read_yaml  # size, depth and duplicate-key limits

    try:
        data, _ = read_yaml(p)
    except UsageError:
        return False  # loading it as a suite reports the problem
    return isinstance(data, dict) and "groups" in data and "id" not in data and "prompts" not in data


def validate_one(path: str) -> str:
    """Validate one file; returns the OK line or raises UsageError."""
    from pathlib import Path

    from audit.attacks import available as attack_names
    from audit.scorers.registry import available
    from audit.suites import load_lexicon_file, load_suite
    from audit.suites.schema import CELL_SEP

    if _is_lexicon(path):
        lex = load_lexicon_file(Path(path))
        return f"OK {path}: lexicon '{CELL_SEP.join(lex.axes)}', {len(lex.groups)} groups x {lex.n_forms} forms"
    loaded = load_suite(path, known_scorers=set(available()), known_attacks=attack_names())
    s = loaded.suite
    protocols = f", protocols: {', '.join(s.protocols)}" if s.protocols else ""
    attacks = f", attacks: {', '.join(s.attacks)}" if s.attacks else ""
    for note in loaded.notes:
        sys.stderr.write(f"note: {loaded.path}: {note}\n")
    return (
        f"OK {loaded.path}: suite '{s.id}', {len(loaded.items)} items, task {s.task}, "
        f"scorers: {', '.join(s.scorers) or 'none'}, metrics: {', '.join(m.label for m in s.metrics) or 'none'}"
        f"{protocols}{attacks}"
    )


def run(args: argparse.Namespace) -> int:
    from audit.core.errors import UsageError

    failed = 0
    for path in args.paths:
        try:
            print(validate_one(path))
        except UsageError as exc:
            failed += 1
            sys.stdout.flush()
            sys.stderr.write(f"error: {exc}\n")
    return 2 if failed else 0
