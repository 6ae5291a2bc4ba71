"""CPU generation batches stay within a KV-cache and prefill-attention budget
(audit/models/batch_budget.py): long prompts get fewer rows, short ones the whole batch size."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from audit.core.types import GenParams, GenRequest
from audit.models import batch_budget
from audit.models.batch_budget import kv_bytes_per_position, rows_within_budget
from audit.models.registry import load_model


def test_kv_bytes_per_position_of_known_models() -> None:
    smollm2 = SimpleNamespace(num_hidden_layers=30, num_attention_heads=9, hidden_size=576, num_key_value_heads=3)
    assert kv_bytes_per_position(smollm2) == 30 * 2 * 3 * 64 * 4  # 46,080: grouped-query attention
    gpt2 = SimpleNamespace(n_layer=12, n_head=12, n_embd=768)
    assert kv_bytes_per_position(gpt2) == 12 * 2 * 12 * 64 * 4  # 73,728


def test_rows_within_budget_cuts_long_prompts_only() -> None:
    short = [[1] * 20] * 64
    assert rows_within_budget(short, 0, 64, 20, kv_per_position=46_080, heads=9) == 64
    long = [[1] * 600] * 64  # an attacked prompt: 64 rows would hold 1.8 GB of cache
    n = rows_within_budget(long, 0, 64, 48, kv_per_position=46_080, heads=9)
    assert n < 64 and n * 648 * 46_080 <= batch_budget.KV_BUDGET and n * 9 * 600 * 600 <= batch_budget.ATTN_BUDGET
    assert (n + 1) * 648 * 46_080 > batch_budget.KV_BUDGET or (n + 1) * 9 * 600 * 600 > batch_budget.ATTN_BUDGET
    huge = [[1] * 5000]
    assert rows_within_budget(huge, 0, 64, 48, kv_per_position=46_080, heads=9) == 1  # never zero rows
    mixed = [[1] * 10] * 10 + [[1] * 2000] * 10  # ascending: the batch's last row is its widest
    assert rows_within_budget(mixed, 0, 20, 20, kv_per_position=46_080, heads=9) == 10
    assert rows_within_budget(mixed, 0, 8, 20, kv_per_position=46_080, heads=9) == 8


def test_generate_cuts_batches_by_the_budget_and_keeps_every_completion(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = load_model("tiny-random-gpt2", batch_size=16)
    seen: list[int] = []
    real = backend._generate_batch

    def spy(seqs, seeds, params):  # type: ignore[no-untyped-def]
        seen.append(len(seqs))
        return real(seqs, seeds, params)

    monkeypatch.setattr(backend, "_generate_batch", spy)
    reqs = [GenRequest(key=f"k{i}", prompt="word " * (5 + 40 * (i % 2))) for i in range(12)]
    params = GenParams(max_new_tokens=4, do_sample=False)
    kv = kv_bytes_per_position(backend.model.config)
    width = len(backend._prompt_ids(reqs[1].prompt, False, 4))  # the long prompts' tokens
    monkeypatch.setattr(batch_budget, "KV_BUDGET", 4 * (width + 4) * kv)  # room for four of them
    out = backend.generate(reqs, params, seed=0)
    assert seen == [6, 4, 2]  # the six short prompts together, the six long ones four at a time
    assert len(out) == len(reqs)
    backend.batch_size = 1
    one_by_one = backend.generate(reqs, params, seed=0)
    assert [c.text for c in out] == [c.text for c in one_by_one]
