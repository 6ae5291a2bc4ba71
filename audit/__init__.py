"""lm-audit: responsible-use safety and bias auditing for language models."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``from audit import load_run, load_runs`` (audit/api.py, imported on first use: pandas stays lazy)."""
    if name in ("load_run", "load_runs"):
        from audit import api

        return getattr(api, name)
    raise AttributeError(f"module 'audit' has no attribute {name!r}")
