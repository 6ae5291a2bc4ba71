"""lm-audit: responsible-use safety and bias auditing for language models."""

__version__ = "0.1.0"
