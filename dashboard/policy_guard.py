"""What the playground's policy box may not do: name files. A policy typed into a browser must not
make the server write (``log_path``) or read (a scorer's model, checkpoint or lexicon path)
anywhere on disk; only the built-in scorers and presets are usable from the page."""

from __future__ import annotations

from typing import Any

FILE_KEYS = ("log_path",)
PATHLIKE_SUFFIXES = ("path", "file", "dir", "folder", "checkpoint", "config", "cache")


def _looks_like_path(v: Any) -> bool:
    return isinstance(v, str) and ("/" in v or "\\" in v or v.startswith(("~", ".")))


def file_settings(spec: Any) -> list[str]:
    """The settings of a policy mapping that name files (empty: the policy may run here)."""
    if not isinstance(spec, dict):
        return []
    found = [k for k in FILE_KEYS if spec.get(k) not in (None, "")]
    for stage in ("input_checks", "output_checks"):
        checks = spec.get(stage)
        for i, check in enumerate(checks if isinstance(checks, list) else []):
            if not isinstance(check, dict):
                continue
            if _looks_like_path(check.get("scorer")):
                found.append(f"{stage}[{i}].scorer")
            options = check.get("options")
            for k, v in (options.items() if isinstance(options, dict) else []):
                if str(k).lower().endswith(PATHLIKE_SUFFIXES) or _looks_like_path(v):
                    found.append(f"{stage}[{i}].options.{k}")
    return found
