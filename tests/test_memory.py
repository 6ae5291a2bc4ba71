"""Memory mechanisms: the streaming GGUF conversion writes what safetensors writes, the heap trim
runs, phases are logged, and scorers a run no longer needs are let go."""

from __future__ import annotations

import weakref
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from audit.core import memory
from audit.models import gguf_convert


def test_header_and_layout_match_the_safetensors_library(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tensors = {
        "model.layers.10.w": rng.standard_normal((3, 5)).astype(np.float32),
        "model.layers.2.w": rng.standard_normal((7,)).astype(np.float32),
        "model.embed_tokens.weight": rng.standard_normal((11, 4)).astype(np.float32),
    }
    header, offsets = gguf_convert._header({k: v.shape for k, v in tensors.items()})
    ours = tmp_path / "ours.safetensors"
    with ours.open("wb") as fh:
        fh.write(header)
        for name, value in reversed(tensors.items()):  # written out of order, at their offsets
            fh.seek(len(header) + offsets[name])
            fh.write(value.data)
    ref = tmp_path / "ref.safetensors"
    save_file({k: torch.from_numpy(v) for k, v in tensors.items()}, str(ref), metadata={"format": "pt"})
    assert ours.read_bytes() == ref.read_bytes()
    assert all(torch.equal(t, torch.from_numpy(tensors[k])) for k, t in load_file(str(ours)).items())


def test_layout_leaves_tied_copies_out() -> None:
    emb = torch.nn.Embedding(10, 4)
    head = torch.nn.Linear(4, 10, bias=False)
    head.weight = emb.weight
    model = torch.nn.ModuleDict({"embed": emb, "head": head})
    assert gguf_convert._layout(model) == {"embed.weight": (10, 4)}


def test_large_tensors_are_dequantized_in_row_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gguf_convert, "CHUNK_BYTES", 1000)
    data = np.arange(300 * 20, dtype=np.uint8).reshape(300, 20)
    blocks = list(gguf_convert._row_blocks(SimpleNamespace(data=data, name="token_embd.weight")))
    assert len(blocks) > 1 and np.array_equal(np.concatenate(blocks), data)
    # rows that the Llama q/k permutation mixes stay whole
    assert len(list(gguf_convert._row_blocks(SimpleNamespace(data=data, name="blk.0.attn_q.weight")))) == 1


def test_phase_log_and_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "mem.txt"
    monkeypatch.setenv("LM_AUDIT_MEMLOG", str(log))
    memory.phase("model loaded")
    line = log.read_text().split()
    assert line[1] == "memlog" and line[-2:] == ["model", "loaded"]
    monkeypatch.delenv("LM_AUDIT_MEMLOG")
    memory.phase("not logged")
    assert len(log.read_text().splitlines()) == 1

    class Big:
        pass

    obj = Big()
    ref = weakref.ref(obj)
    obj.cycle = obj  # type: ignore[attr-defined]  # only the collector frees a cycle
    del obj
    memory.release()
    assert ref() is None
    assert memory.rss_mib()[0] > 0


def test_the_model_is_freed_before_the_summary_is_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The summary of a long run needs hundreds of MiB; the model's weights must be gone by then
    (the standard profile peaked at 1.85 GiB while the engine still held the model)."""
    from audit.cli import main
    from audit.run import finalize, runner
    from tests.mini_runs import bias_suite

    models: list[weakref.ref[object]] = []
    alive_at_summary: list[bool] = []
    make_engine, finalize_run = runner.make_engine, finalize.finalize_run

    def engine_spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        engine = make_engine(*args, **kwargs)
        models.append(weakref.ref(engine.model.model))  # the torch module inside the backend
        return engine

    def finalize_spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        alive_at_summary.append(models[0]() is not None)
        return finalize_run(*args, **kwargs)

    monkeypatch.setattr(runner, "make_engine", engine_spy)
    monkeypatch.setattr(finalize, "finalize_run", finalize_spy)
    suite = tmp_path / "mini.yaml"
    suite.write_text(bias_suite(samples=1, max_new_tokens=4))
    code = main(["run", "--suite", str(suite), "--model", "tiny-random-gpt2", "--out", str(tmp_path / "o"),
                 "--name", "x", "--no-progress", "--no-cache"])
    assert code == 0 and (tmp_path / "o" / "x" / "summary.json").is_file()
    assert alive_at_summary == [False]


@pytest.mark.slow
@pytest.mark.xdist_group("smollm2")
def test_streamed_conversion_equals_the_in_memory_one(tmp_path: Path) -> None:
    from audit.models.gguf_loading import convert_gguf, convert_in_memory
    from audit.models.registry import smollm2_gguf

    gguf = smollm2_gguf()
    convert_gguf(gguf, tmp_path / "streamed")
    (tmp_path / "loaded").mkdir()
    convert_in_memory(gguf, tmp_path / "loaded")
    for name in ("model.safetensors", "config.json", "generation_config.json"):
        assert (tmp_path / "streamed" / name).read_bytes() == (tmp_path / "loaded" / name).read_bytes(), name
    assert (tmp_path / "streamed" / "tokenizer.json").is_file()


def test_scorers_are_released_after_the_last_suite_that_uses_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from audit.run import runner
    from audit.scorers import registry
    from audit.scorers.base import Scorer

    released: list[str] = []

    class Fake(Scorer):
        def __init__(self, name: str) -> None:
            self.name = name

        def score(self, texts, refs=None):  # type: ignore[no-untyped-def]
            return [{} for _ in texts]

        def release(self) -> None:
            released.append(self.name)

    cache = {("factuality", ()): Fake("factuality"), ("toxicity", ()): Fake("toxicity")}
    monkeypatch.setattr(registry, "_CACHE", cache)

    def unit(suite: str, scorers: list[str]) -> runner.WorkUnit:
        return runner.WorkUnit(suite_id=suite, task="generate", params={}, seed=0, scorers=scorers, entries=[])

    units = [unit("a", ["toxicity"]), unit("b", ["factuality", "toxicity:ensemble"]), unit("c", ["toxicity"])]
    runner._suite_done("a", units)
    assert released == []  # toxicity is used again by c
    runner._suite_done("b", units)
    assert released == ["factuality"]
    runner._suite_done("c", units)
    assert released == ["factuality", "toxicity"]


def test_factuality_release_drops_minilm() -> None:
    from audit.scorers.embeddings import load_minilm
    from audit.scorers.factuality import FactualityScorer

    scorer = FactualityScorer()
    load_minilm("cpu")
    assert load_minilm.cache_info().currsize == 1
    scorer.release()
    assert load_minilm.cache_info().currsize == 0
