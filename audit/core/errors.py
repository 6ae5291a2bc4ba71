"""Errors that reach the user as one clear line.

Raise ``UsageError`` for anything the user can fix (a bad path, a malformed suite, an unknown
model or scorer). The CLI prints its message on one line and exits with code 2.
"""

from __future__ import annotations


class UsageError(Exception):
    """A mistake the user can fix. The CLI prints ``error: <message>`` and exits 2."""


class ModelUnavailableError(UsageError):
    """The requested model cannot be loaded here (not cached, no network, bad path)."""


class ScorerUnavailableError(UsageError):
    """The requested scorer cannot be loaded here (missing weights or package)."""
