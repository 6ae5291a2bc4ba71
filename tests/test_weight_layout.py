"""Linear weights rewritten input-major (audit/models/weight_layout.py): same logits, tied weights
untouched, and no growth in resident memory when the weights come from a memory-mapped file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from audit.models.weight_layout import store_input_major


def _llama(hidden: int = 64, layers: int = 2) -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=1000, hidden_size=hidden, intermediate_size=hidden * 3, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=True,
    )
    return LlamaForCausalLM(cfg).eval()


def test_rewritten_weights_give_identical_logits_and_leave_tied_ones_alone() -> None:
    model = _llama()
    ids = torch.randint(0, 1000, (3, 9), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        before = model(input_ids=ids).logits
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    done = store_input_major(model)
    assert done == n_linear - 1  # every linear but the head tied to the embedding
    up = model.model.layers[0].mlp.up_proj.weight
    assert up.shape == (192, 64) and up.stride() == (1, 192)  # (out, in) viewed over (in, out) storage
    head = model.get_output_embeddings().weight
    assert head.is_contiguous() and head.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    with torch.inference_mode():
        after = model(input_ids=ids).logits
    assert torch.allclose(after, before, atol=1e-5)
    assert store_input_major(model) == 0  # already input-major


def test_a_rewritten_model_still_saves_and_reloads(tmp_path: Path) -> None:
    model = _llama()
    store_input_major(model)
    model.save_pretrained(tmp_path)
    again = LlamaForCausalLM.from_pretrained(tmp_path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(again.state_dict()[name], tensor), name


def _rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/statm and madvise are Linux's")
def test_rewriting_weights_loaded_from_safetensors_does_not_grow_resident_memory(tmp_path: Path) -> None:
    _llama(hidden=512, layers=4).save_pretrained(tmp_path)  # about 50 MB of linear weights
    model = LlamaForCausalLM.from_pretrained(tmp_path).eval()
    linear_mib = sum(
        m.weight.numel() * 4 for m in model.modules() if isinstance(m, torch.nn.Linear)
    ) / 2**20 - model.get_output_embeddings().weight.numel() * 4 / 2**20
    with torch.inference_mode():
        model(input_ids=torch.ones(1, 4, dtype=torch.long))  # every weight page resident
    before = _rss_mib()
    assert store_input_major(model) > 0
    grown = _rss_mib() - before
    assert grown < 0.25 * linear_mib, f"resident memory grew {grown:.0f} MiB for {linear_mib:.0f} MiB of weights"
