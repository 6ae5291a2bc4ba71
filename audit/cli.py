"""The ``lm-audit`` command line.

Each subcommand lives in its own module under ``audit/commands/`` and exposes
``register(subparsers) -> None``, which adds a parser whose ``func(args) -> int`` does the work.
Modules are discovered automatically, so adding a command touches no other file. Heavy imports
(torch, transformers) belong inside ``func``, so ``lm-audit --help`` stays instant.

Exit codes: 0 success, 1 a gate or comparison failed, 2 a usage error (one line, no traceback),
3 an internal error (one line; LM_AUDIT_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import signal
import sys
from typing import NoReturn

from audit import __version__
from audit.core.errors import UsageError

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        sys.stderr.write(f"error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lm-audit",
        description="Safety and bias audits for language models.",
    )
    parser.add_argument("--version", action="version", version=f"lm-audit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    import audit.commands as commands_pkg

    for mod in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"audit.commands.{mod.name}")
        module.register(sub)
    _plain_text_help(parser)
    return parser


def _plain_text_help(parser: argparse.ArgumentParser) -> None:
    """``--help`` reads as plain text: the rST double backticks of module docstrings are dropped."""
    for attr in ("description", "epilog"):
        if getattr(parser, attr):
            setattr(parser, attr, getattr(parser, attr).replace("``", ""))
    for action in parser._actions:
        if isinstance(action.help, str):
            action.help = action.help.replace("``", "")
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if isinstance(choice.help, str):
                    choice.help = choice.help.replace("``", "")
            for sub in dict.fromkeys(action.choices.values()):
                _plain_text_help(sub)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _exit_on_next_interrupt()
        sys.stderr.write("interrupted: completed records are kept; re-run the same command to resume\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # unexpected: still one line unless debugging
        if os.environ.get("LM_AUDIT_DEBUG"):
            raise
        sys.stderr.write(
            f"internal error: {type(exc).__name__}: {exc} (set LM_AUDIT_DEBUG=1 for the traceback)\n"
        )
        return EXIT_INTERNAL


def _exit_on_next_interrupt(code: int = 130) -> None:
    """From now on Ctrl+C exits at once with one line and ``code`` (a late second SIGINT during
    cleanup or interpreter shutdown would otherwise die with a traceback or status -2)."""

    def handler(_signum: int, _frame: object) -> None:
        try:
            sys.stderr.write("interrupted again: exiting now (completed records are kept)\n")
            sys.stderr.flush()
        finally:
            os._exit(code)

    with contextlib.suppress(ValueError):  # not the main thread (main() called from a test thread)
        signal.signal(signal.SIGINT, handler)


def entrypoint() -> None:
    code = main()
    _exit_on_next_interrupt(130 if code == 130 else code)
    if code == 130:  # interrupted: skip interpreter shutdown (joining worker threads), where a late
        sys.stdout.flush()  # Ctrl+C would kill the process with status -2; records are fsynced
        sys.stderr.flush()
        os._exit(130)
    raise SystemExit(code)


if __name__ == "__main__":
    entrypoint()
