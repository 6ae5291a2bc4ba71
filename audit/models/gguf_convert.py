"""GGUF -> safetensors, one tensor at a time.

Loading a GGUF through ``AutoModelForCausalLM.from_pretrained(gguf_file=...)`` dequantizes every
tensor into a dict, copies it into a model and only then lets it be saved: the whole float32 model
plus its temporaries (about 770 MiB above the process for SmolLM2-135M) are resident at once, on
top of everything the audit has loaded. ``stream_convert`` instead writes the safetensors file while
it dequantizes: the header comes from a model built on the meta device (no memory), and each GGUF
tensor is dequantized, passed through transformers' own tensor processor for the architecture (the
same code ``from_pretrained`` runs: Llama's q/k permutation, Gemma's norm offset, ...), written at
its offset and dropped (the embedding, by far the largest, in blocks of rows). The file is the one ``save_pretrained`` writes (same names, order, header
and bytes), and config.json / generation_config.json are written from the same config.

Architectures whose tensors do not map one to one onto the model's parameters raise
``StreamUnsupported``; the caller then falls back to the in-memory path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

CHUNK_BYTES = 4 << 20  # quantized bytes dequantized at once for a large tensor (the embedding)


class StreamUnsupported(ValueError):
    """The GGUF cannot be converted tensor by tensor (the caller uses the in-memory path)."""


def _plain_config(gguf: Path) -> Any:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    return config


def _layout(model: Any) -> dict[str, tuple[int, ...]]:
    """Shapes of the parameters ``save_pretrained`` would write: tied copies are left out."""
    seen: dict[int, str] = {}
    out: dict[str, tuple[int, ...]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            continue
        seen[id(p)] = name
        out[name] = tuple(p.shape)
    return out


def _header(shapes: dict[str, tuple[int, ...]]) -> tuple[bytes, dict[str, int]]:
    """The safetensors header for float32 tensors in name order (as the safetensors library writes
    it: compact JSON, padded with spaces to a multiple of 8), and each tensor's data offset."""
    meta: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offsets: dict[str, int] = {}
    pos = 0
    for name in sorted(shapes):
        size = 4 * int(np.prod(shapes[name], dtype=np.int64))
        meta[name] = {"dtype": "F32", "shape": list(shapes[name]), "data_offsets": [pos, pos + size]}
        offsets[name] = pos
        pos += size
    raw = json.dumps(meta, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw, offsets


def _row_blocks(tensor: Any) -> Any:
    """The tensor's raw data whole, or in blocks of rows when it is large and its processing is
    row-wise (dequantization works per row; only Llama's q/k permutation mixes rows)."""
    data = tensor.data
    name = tensor.name
    if data.ndim < 2 or data.nbytes < CHUNK_BYTES or ".attn_q." in name or ".attn_k." in name:
        yield data
        return
    step = max(1, data.shape[0] * CHUNK_BYTES // data.nbytes)
    for start in range(0, data.shape[0], step):
        yield data[start : start + step]


def stream_convert(gguf: Path, out_dir: Path) -> None:
    """Write ``model.safetensors``, ``config.json`` and ``generation_config.json`` for ``gguf`` into
    ``out_dir``, holding one dequantized tensor at a time."""
    import torch
    from gguf import GGUFReader, dequantize
    from transformers import AutoModelForCausalLM, GenerationConfig
    from transformers.modeling_gguf_pytorch_utils import (
        TENSOR_PROCESSORS,
        TensorProcessor,
        get_gguf_hf_weights_map,
        read_field,
    )

    config = _plain_config(gguf)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    shapes = _layout(model)
    reader = GGUFReader(gguf)
    architecture = read_field(reader, "general.architecture")[0]
    processor = TENSOR_PROCESSORS.get(architecture, TensorProcessor)(config=config.to_dict())
    if type(processor).process is not TensorProcessor.process and architecture not in ("llama", "gemma2", "gemma3"):
        raise StreamUnsupported(f"{architecture}: tensors are not checked one to one")
    mapping = get_gguf_hf_weights_map(model, processor)
    header, offsets = _header(shapes)
    written: set[str] = set()
    path = out_dir / "model.safetensors"
    with path.open("wb") as fh:
        fh.write(header)
        for tensor in reader.tensors:
            name = mapping.get(tensor.name)
            if name is None:
                continue
            if name not in shapes or name in written:
                raise StreamUnsupported(f"GGUF tensor {tensor.name} -> {name} is not one parameter of the model")
            fh.seek(len(header) + offsets[name])
            rows = 0
            for part in _row_blocks(tensor):
                result = processor.process(weights=dequantize(part, tensor.tensor_type), name=tensor.name,
                                           tensor_key_mapping=mapping, parsed_parameters={})
                if result.name != tensor.name:
                    raise StreamUnsupported(f"{architecture}: the processor renames {tensor.name}")
                data = np.ascontiguousarray(result.weights, dtype=np.float32)
                if tuple(data.shape[1:]) != shapes[name][1:]:
                    raise StreamUnsupported(f"{name}: GGUF shape {data.shape}, model shape {shapes[name]}")
                fh.write(data.data)
                rows += data.shape[0] if data.ndim else 1
                del data, result
            if rows != (shapes[name][0] if shapes[name] else 1):
                raise StreamUnsupported(f"{name}: {rows} rows in the GGUF, model shape {shapes[name]}")
            written.add(name)
    if written != set(shapes):
        path.unlink()
        raise StreamUnsupported(f"the GGUF lacks {', '.join(sorted(set(shapes) - written)[:3])}")
    config.architectures = [type(model).__name__]
    config.dtype = torch.float32
    config.save_pretrained(out_dir)
    GenerationConfig.from_model_config(config).save_pretrained(out_dir)
