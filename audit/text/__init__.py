"""Untrusted text made readable for scoring: ``deobfuscate`` undoes display tricks (right-to-left
overrides, invisible characters, symbols interleaved between letters) and leaves ordinary text
unchanged. Imports nothing else of audit; the filter's normalizer (``audit.guard.normalize``) and
the toxicity scorers both build on it."""

from audit.text.deobfuscate import deobfuscate

__all__ = ["deobfuscate"]
