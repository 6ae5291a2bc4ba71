"""Shared test set-up: offline always, a private cache dir per test session."""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True, scope="session")
def _offline_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Generation cache and converted models go to a temp dir, unless LM_AUDIT_CACHE_DIR is set
    (CI may share one converted SmolLM2 copy across sessions to save the 16 s conversion)."""
    if not os.environ.get("LM_AUDIT_TEST_CACHE_DIR"):
        os.environ["LM_AUDIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("lm-audit-cache"))
    else:
        os.environ["LM_AUDIT_CACHE_DIR"] = os.environ["LM_AUDIT_TEST_CACHE_DIR"]
