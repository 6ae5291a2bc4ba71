"""Reading policy YAML files (gate policies in ``audit/gates/evaluate.py``, filter policies in
``audit/guard/policy.py``) with one-line errors that name the file, the line and the field.

- the YAML is parsed strictly (duplicate keys, depth and size limits; ``audit/suites/yamlsafe.py``);
- every number must be finite: ``.nan``, ``.inf`` or a string such as ``"nan"`` where a number is
  expected is an error (a NaN threshold makes every comparison false, so every text would pass);
- booleans are not numbers here (``threshold: yes`` is a mistake, not 1.0);
- a pydantic validation error becomes ``path:line: field: message``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from audit.core.errors import UsageError

_NON_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


def read_policy_yaml(path: Path) -> tuple[Any, Any]:
    """``(data, root node)`` of a policy file; every problem is one located ``UsageError``."""
    from audit.suites.yamlsafe import read_yaml

    return read_yaml(path)


def non_finite_numbers(data: Any, loc: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """Locations of NaN / infinite numbers (or strings that spell them) anywhere in ``data``."""
    found: list[tuple[tuple[Any, ...], str]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [(loc, data)]
    while stack:
        where, x = stack.pop()
        if isinstance(x, dict):
            stack.extend(((*where, k), v) for k, v in x.items())
        elif isinstance(x, list):
            stack.extend(((*where, i), v) for i, v in enumerate(x))
        elif isinstance(x, float) and not math.isfinite(x):
            found.append((where, f"must be a finite number, not {x}"))
        elif isinstance(x, str) and x.strip().lower() in _NON_FINITE:
            found.append((where, f"must be a finite number, not '{x}'"))
    return sorted(found, key=lambda f: [str(p) for p in f[0]])


def check_finite(path: Path | str, root: Any, data: Any) -> None:
    """Raise one located ``UsageError`` for the first non-finite number in a policy."""
    found = non_finite_numbers(data)
    if found:
        loc, msg = found[0]
        raise located(path, root, loc, msg)


def located(path: Path | str, root: Any, loc: tuple[Any, ...], msg: str) -> UsageError:
    from audit.suites.yamlsafe import Where

    return Where(Path(path), root).error(loc, msg)


def validation_error(path: Path | str, root: Any, err: ValidationError) -> UsageError:
    """A pydantic error on a policy as ``path:line: field: message``."""
    from audit.suites.yamlsafe import format_validation_error

    return UsageError(format_validation_error(Path(path), root, err))
