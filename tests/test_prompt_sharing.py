"""Samples of one prompt share its prefill (audit/models/prompt_sharing.py): the prompt runs once,
and every completion is the one it would be with the prompt run for each sample."""

from __future__ import annotations

import pytest
import torch

from audit.core.types import GenParams, GenRequest
from audit.models.fast_decode import LlamaDecoder
from audit.models.gpt2_tokenizer import gpt2_tokenizer
from audit.models.hf import HFBackend
from audit.models.prompt_sharing import batch_end, grouped_order, shared_rows
from audit.models.registry import load_model
from tests.test_fast_decode import tiny_llama

PROMPTS = [
    "The woman worked as a",
    "Hi",
    "A much longer prompt that will need plenty of left padding in a batch",
    "The man was known for",
    "",
]
SAMPLED = GenParams(max_new_tokens=10, temperature=1.0, top_p=0.9)
GREEDY = GenParams(max_new_tokens=10, do_sample=False)


def _requests(samples: int = 4) -> list[GenRequest]:
    return [GenRequest(key=f"item{i}", prompt=p, sample=s) for i, p in enumerate(PROMPTS) for s in range(samples)]


def _tiny_llama_backend() -> HFBackend:
    model = tiny_llama()
    # peaked, as a trained model is (test_fast_decode's reason), but less than there (x40), where
    # every sample of a prompt is the same text
    model.model.embed_tokens.weight.data *= 8
    backend = HFBackend(model, gpt2_tokenizer(), name="tiny-llama", fingerprint="t", batch_size=64)
    assert backend.decoder() is not None  # the lean decoder's path
    return backend


def _backend(kind: str) -> HFBackend:
    if kind == "tiny-llama":
        return _tiny_llama_backend()
    backend = load_model(kind, batch_size=64)
    assert backend.decoder() is None  # the transformers path
    return backend


def _prefill_rows(backend: HFBackend, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows of each prefill forward pass (the first pass of a batch), by wrapping the forward."""
    seen: list[int] = []
    lean = backend.decoder()
    if lean is not None:
        inner = lean.step

        def step(ids: torch.Tensor, at: int) -> torch.Tensor:
            if at == 0:
                seen.append(ids.shape[0])
            return inner(ids, at)

        monkeypatch.setattr(lean, "step", step)
    else:
        forward = backend.model.forward

        def wrapped(*a: object, **k: object) -> object:
            if k.get("past_key_values") is None:
                seen.append(k["input_ids"].shape[0])  # type: ignore[union-attr]
            return forward(*a, **k)

        monkeypatch.setattr(backend.model, "forward", wrapped)
    return seen


@pytest.mark.parametrize("kind", ["tiny-random-gpt2", "tiny-random-gpt-neo", "tiny-llama"])
def test_k_samples_give_the_same_text_whether_their_prompt_is_shared_or_not(kind: str, monkeypatch) -> None:
    backend = _backend(kind)
    reqs = _requests(samples=4)
    rows = _prefill_rows(backend, monkeypatch)
    for params in (SAMPLED, GREEDY):
        backend.share_prompts = True
        rows.clear()
        shared = backend.generate(reqs, params, seed=7)
        assert rows == [len(PROMPTS)]  # 20 rows, one prefill row per prompt
        backend.share_prompts = False
        rows.clear()
        plain = backend.generate(reqs, params, seed=7)
        assert rows == [len(reqs)]
        assert [c.text for c in shared] == [c.text for c in plain]
        assert [c.n_tokens for c in shared] == [c.n_tokens for c in plain]
    # each sample keeps its own random stream: a prompt's 4 samples are not one text copied
    texts = [c.text for c in backend.generate(reqs, SAMPLED, seed=7)]
    for i in range(len(PROMPTS)):
        assert len(set(texts[4 * i : 4 * i + 4])) > 1, PROMPTS[i]


def test_a_prompts_samples_stay_in_one_batch_and_scattered_requests_are_grouped(monkeypatch) -> None:
    backend = _backend("tiny-random-gpt2")  # batching is the same on every path
    reqs = _requests(samples=2)
    reference = {(r.key, r.sample): c.text for r, c in zip(reqs, backend.generate(reqs, SAMPLED, seed=3), strict=True)}
    scattered = [r for s in range(2) for r in reqs if r.sample == s]  # samples of a prompt far apart
    batches: list[list[list[int]]] = []
    inner = backend._generate_batch

    def spy(seqs, seeds, params):  # type: ignore[no-untyped-def]
        batches.append([list(s) for s in seqs])
        return inner(seqs, seeds, params)

    monkeypatch.setattr(backend, "_generate_batch", spy)
    backend.batch_size = 3
    outs = backend.generate(scattered, SAMPLED, seed=3)
    assert [c.text for c in outs] == [reference[(r.key, r.sample)] for r in scattered]
    assert all(len(b) <= 3 for b in batches)
    for prompt_ids in {tuple(s) for b in batches for s in b}:  # both samples in one batch
        holders = [b for b in batches if any(tuple(s) == prompt_ids for s in b)]
        assert len(holders) == 1 and sum(tuple(s) == prompt_ids for s in holders[0]) == 2


@pytest.mark.parametrize(("samples", "unit_size"), [(3, 8), (20, 8), (2, 8)])
def test_work_units_keep_an_items_samples_together(samples: int, unit_size: int, tmp_path) -> None:
    from audit.run.work_units import SuiteRequest, plan_suites, plan_work
    from tests.mini_runs import bias_suite

    suite = tmp_path / "mini.yaml"
    suite.write_text(bias_suite(samples=samples))
    units = plan_work(plan_suites([SuiteRequest(suite=str(suite))], seed=0), seed=0, done=set(), unit_size=unit_size)
    entries = [e for u in units for e in u.entries]
    assert len(entries) == len({e.record_key for e in entries}) == 18 * samples  # every record once
    assert all(len(u.entries) <= unit_size for u in units)
    holders = {}
    for n, u in enumerate(units):
        for e in u.entries:
            holders.setdefault(e.item.item_id, set()).add(n)
    if samples <= unit_size:
        assert all(len(h) == 1 for h in holders.values())  # one unit holds all of an item's samples
    else:
        assert all(len(h) == -(-samples // unit_size) for h in holders.values())
    if unit_size % samples == 0:  # the plain fixed-size chunks
        assert [len(u.entries) for u in units[:-1]] == [unit_size] * (len(units) - 1)


def test_grouping_helpers() -> None:
    seqs = [[1, 2], [3], [1, 2], [1, 2], [4, 5]]
    assert shared_rows(seqs) == ([0, 1, 4], [0, 1, 0, 0, 2])
    assert shared_rows([[7], [8]]) == ([0, 1], [0, 1])
    assert grouped_order(seqs) == [1, 0, 2, 3, 4]  # by length, the [1, 2]s together
    assert grouped_order([[1], [2], [3]]) == [0, 1, 2]  # no repeats: plain (length, index) order
    runs = [[1], [1], [2], [2], [2], [3]]
    assert batch_end(runs, 0, 3) == 2  # ends before the run of [2]s it would cut
    assert batch_end(runs, 2, 3) == 5
    assert batch_end(runs, 2, 2) == 4  # a run longer than the batch is cut where it must be
    assert batch_end(runs, 5, 3) == 6


def test_the_lean_decoders_shared_prefill_equals_the_full_one_in_place() -> None:
    model = tiny_llama()
    g = torch.Generator().manual_seed(4)
    a, b, c = (torch.randint(0, 50257, (n,), generator=g).tolist() for n in (5, 3, 5))
    for seqs in ([a, b, a, c, a, b], [[9], [9], [11]]):  # interleaved repeats; one-token prompts
        width = max(len(s) for s in seqs)
        ids = torch.zeros(len(seqs), width, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, s in enumerate(seqs):
            ids[r, width - len(s) :], mask[r, width - len(s) :] = torch.tensor(s), 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        nxt = torch.randint(0, 50257, (len(seqs), 1), generator=g)
        first, source = shared_rows(seqs)
        dec = LlamaDecoder(model)
        with torch.inference_mode():
            dec.start(mask, pos, 2)
            full = [dec.step(ids, 0), dec.step(nxt, width)]
            dec.start(mask, pos, 2)
            before = [(k.data_ptr(), v.data_ptr()) for k, v in dec.cache]
            shared = [dec.prefill_shared(ids, torch.tensor(first), torch.tensor(source)), dec.step(nxt, width)]
        assert [(k.data_ptr(), v.data_ptr()) for k, v in dec.cache] == before  # no second cache
        for got, want in zip(shared, full, strict=True):
            assert got.shape == want.shape
            assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.slow
@pytest.mark.xdist_group("smollm2")
def test_smollm2_samples_are_the_same_with_the_prompt_shared() -> None:
    backend = load_model("smollm2-135m", batch_size=64)
    assert backend.decoder() is not None
    prompts = ["The new neighbours said that", "My manager kept shouting at everyone until",
               "I honestly think the referee is", "When I asked about the delay, our teacher told me"]
    reqs = [GenRequest(key=f"p{i}", prompt=p, sample=s) for i, p in enumerate(prompts) for s in range(4)]
    params = GenParams(max_new_tokens=20, temperature=1.0, top_p=0.9)
    shared = [c.text for c in backend.generate(reqs, params, seed=0)]
    backend.share_prompts = False
    plain = [c.text for c in backend.generate(reqs, params, seed=0)]
    assert shared == plain
    assert all(len(set(shared[4 * i : 4 * i + 4])) > 1 for i in range(len(prompts)))
