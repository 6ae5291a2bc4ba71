"""Validation of scorer options, which arrive as Python values (API) or strings (CLI ``--option k=v``)."""

from __future__ import annotations

import json
from typing import Any

from audit.core.errors import UsageError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise UsageError(f"option {name} must be true or false, got {value!r}")


def as_int(value: Any, name: str, minimum: int = 1) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"option {name} must be an integer, got {value!r}") from None
    if out < minimum:
        raise UsageError(f"option {name} must be at least {minimum}, got {out}")
    return out


def parse_cli_option(text: str) -> tuple[str, Any]:
    """``"k=v"`` -> ``(k, v)``; ``v`` is decoded as JSON when it parses (numbers, true/false, objects),
    else kept as a string (paths, model ids, ``toxic:1,hate:1``)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--option expects KEY=VALUE, got {text!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key.replace("-", "_"), value


def parse_label_weights(value: Any, name: str = "labels") -> dict[str, float]:
    """A label mapping: ``{"positive": 1, "negative": -1}``, ``["toxic", "hate"]`` (weight 1 each),
    or the string ``"positive:1,negative:-1"`` / ``"toxic,hate"``."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list | tuple):
        items = [(v, 1.0) for v in value]
    elif isinstance(value, str):
        items = []
        for part in value.split(","):
            if not part.strip():
                continue
            label, sep, w = part.rpartition(":") if ":" in part else (part, "", "1")
            items.append((label.strip(), w.strip() if sep else "1"))
    else:
        raise UsageError(f"option {name} must be a mapping label->weight, a list or 'a:1,b:-1'")
    out: dict[str, float] = {}
    for label, w in items:
        try:
            out[str(label)] = float(w)
        except (TypeError, ValueError):
            raise UsageError(f"option {name}: weight of '{label}' must be a number, got {w!r}") from None
    if not out:
        raise UsageError(f"option {name} is empty")
    return out
