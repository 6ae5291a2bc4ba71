"""GPT-2 and GPT-Neo at their true size with the real GPT-2 tokenizer, the hub-cache path, and the
partial-sort sampler's token-for-token equality with the full sort."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from audit.cli import main
from audit.core.types import GenParams, GenRequest, LoglikelihoodRequest
from audit.models.gpt2_tokenizer import gpt2_tokenizer
from audit.models.registry import list_models, load_model
from audit.models.sampling import pick, pick_reference

PROMPTS = ["Hello, my dog is cute", "The woman worked as a", "", "A much longer prompt, with commas, 🙂 and ümlauts"]
GREEDY = GenParams(max_new_tokens=4, do_sample=False)
SAMPLED = GenParams(max_new_tokens=4, temperature=1.0, top_p=0.9, top_k=0)


def test_real_gpt2_tokenizer_ids_and_quirks() -> None:
    tok = gpt2_tokenizer()
    assert tok("Hello, my dog is cute")["input_ids"] == [15496, 11, 616, 3290, 318, 13779]
    assert len(tok) == 50257
    assert tok.pad_token_id is None  # GPT-2 ships no pad token
    assert tok.bos_token_id == tok.eos_token_id == 50256
    text = " héllo wörld 🙂\n\n  x"
    assert tok.decode(tok(text)["input_ids"]) == text  # byte-level: lossless on any text


def test_true_size_models_are_listed_with_published_sizes() -> None:
    names = list_models()
    for name in ("gpt2-random", "gpt2-medium-random", "gpt-neo-125m-random", "gemma3-270m"):
        assert name in names
    assert "Gemma Terms of Use" in names["gemma3-270m"]


@pytest.fixture(scope="module", params=["gpt2-random", "gpt-neo-125m-random"])
def true_size(request: pytest.FixtureRequest):
    return load_model(request.param, batch_size=4)


def test_parameter_counts_and_positions(true_size) -> None:
    info = true_size.info()
    assert info.random_weights
    expected = {"gpt2-random": (124_439_808, 1024), "gpt-neo-125m-random": (125_198_592, 2048)}[info.name]
    assert (info.details["n_params"], true_size.max_positions) == expected
    assert true_size.pad_id == 50256  # padded with EOS, on the left
    assert true_size.tokenizer.padding_side == "left"


def test_left_padded_batch_gives_each_row_its_own_logits_at_true_size(true_size) -> None:
    """The padding quirks (no pad token, left padding, position ids) are right when a padded row's
    next-token logits equal its logits alone, to float rounding (a wrong mask or position gives
    differences of order 1)."""
    seqs = [true_size._encode_prompt(p, False, 4)[0] for p in PROMPTS]
    with torch.inference_mode():
        ids, mask = true_size._left_pad(seqs)
        batched = true_size.model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits[:, -1]
        for row, seq in enumerate(seqs):
            ids1, mask1 = true_size._left_pad([seq])
            alone = true_size.model(input_ids=ids1, attention_mask=mask1, position_ids=(mask1.cumsum(-1) - 1).clamp(min=0)).logits[0, -1]
            assert float((batched[row] - alone).abs().max()) < 1e-4, PROMPTS[row]


# Random weights give a near-uniform next-token distribution (top probability about 1.7e-4 of
# 50,257), where the float rounding of a 4-row versus a 1-row matmul (about 4e-6 in the logits on
# this project's CPU) moves a draw across a CDF step: the sampled case draws from a peaked
# distribution, as a trained model's is. The test above checks the logits themselves.
PEAKED = GenParams(max_new_tokens=4, temperature=0.05, top_p=0.9, top_k=0)


@pytest.mark.parametrize("params", [GREEDY, PEAKED], ids=["greedy", "sampled"])
def test_batched_equals_one_by_one_at_true_size(true_size, params: GenParams) -> None:
    reqs = [GenRequest(key=f"k{i}", prompt=p) for i, p in enumerate(PROMPTS)]
    true_size.batch_size = 4
    batched = [c.text for c in true_size.generate(reqs, params, seed=7)]
    true_size.batch_size = 1
    single = [c.text for c in true_size.generate(reqs, params, seed=7)]
    true_size.batch_size = 4
    assert batched == single
    assert all(isinstance(t, str) for t in batched)


def test_long_prompts_are_cut_from_the_left_with_a_note(true_size) -> None:
    limit = true_size.max_positions
    prompt = "word " * (limit + 300)
    [out] = true_size.generate([GenRequest(key="long", prompt=prompt)], GenParams(max_new_tokens=2, do_sample=False), 0)
    n_prompt = len(true_size.tokenizer(prompt)["input_ids"])
    assert out.prompt_truncated == n_prompt - (limit - 2)
    ids, cut = true_size._encode_prompt(prompt, False, 2)
    assert len(ids) == limit - 2 and cut == out.prompt_truncated


def test_loglikelihood_is_conditioned_on_bos(true_size) -> None:
    text = "Hello, my dog is cute"
    [res] = true_size.loglikelihood([LoglikelihoodRequest(context="", continuation=text)])
    ids = true_size.tokenizer(text)["input_ids"]
    with torch.inference_mode():
        logits = true_size.model(torch.tensor([[50256, *ids]])).logits[0, :-1].double()
    manual = torch.log_softmax(logits, -1).gather(-1, torch.tensor(ids)[:, None]).sum().item()
    assert res.n_tokens == len(ids) == 6
    assert res.logprob == pytest.approx(manual, abs=1e-3)


def test_gpt2_size_audit_of_one_suite(tmp_path: Path) -> None:
    code = main(["run", "--suite", "bias-counterfactual", "--model", "gpt2-random", "--limit", "6",
                 "--samples", "1", "--out", str(tmp_path), "--name", "g", "--no-progress"])
    assert code in (0, 1)
    manifest = json.loads((tmp_path / "g" / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["model"]["random_weights"] is True
    assert manifest["model"]["details"]["n_params"] == 124_439_808
    records = [json.loads(line) for line in (tmp_path / "g" / "records.jsonl").read_text().splitlines()]
    assert len(records) >= 6 and all("sentiment" in r["scores"] for r in records)


def _hub_snapshot(cache: Path, repo: str, kind: str) -> Path:
    """A random model saved in huggingface_hub's cache layout: models--org--name/{refs,snapshots}."""
    from transformers import AutoModelForCausalLM, GPT2Config, GPTNeoConfig

    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / ("models--" + repo.replace("/", "--"))
    snap = root / "snapshots" / commit
    if kind == "gpt2":
        cfg = GPT2Config(n_embd=32, n_layer=1, n_head=2, n_positions=1024)
    else:
        cfg = GPTNeoConfig(hidden_size=32, num_layers=2, num_heads=2, attention_types=[[["global", "local"], 1]],
                           max_position_embeddings=2048, window_size=256)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(snap)
    gpt2_tokenizer().save_pretrained(snap)
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    return snap


@pytest.mark.parametrize(("repo", "kind"), [("gpt2", "gpt2"), ("EleutherAI/gpt-neo-125M", "gpt-neo")])
def test_hub_id_loads_from_the_local_cache_offline(tmp_path: Path, repo: str, kind: str) -> None:
    hub = tmp_path / "hub"
    _hub_snapshot(hub, repo, kind)
    env = {**os.environ, "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    code = (
        "import json, sys\n"
        "from audit.models.registry import load_model\n"
        "from audit.core.types import GenParams, GenRequest\n"
        f"m = load_model({repo!r}, batch_size=2)\n"
        "out = m.generate([GenRequest(key='a', prompt='Hello, my dog is cute')], GenParams(max_new_tokens=3, do_sample=False), 0)\n"
        "print(json.dumps({'ids': m.tokenizer('Hello, my dog is cute')['input_ids'], 'type': m.info().details['model_type'],"
        " 'n': out[0].n_tokens, 'source': m.info().details['source']}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["ids"] == [15496, 11, 616, 3290, 318, 13779]
    assert got["type"] == ("gpt2" if kind == "gpt2" else "gpt_neo")
    assert got["source"] == repo and got["n"] >= 1


def test_hub_id_not_in_cache_fails_fast_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "audit.cli", "run", "--suite", "factuality", "--model", "EleutherAI/gpt-neo-1.3B",
         "--limit", "2", "--out", str(tmp_path / "o")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "not in the local Hugging Face cache" in proc.stderr + proc.stdout


# ---------------------------------------------------------------------- sampler equivalence


@pytest.mark.parametrize("vocab", [257, 50257])
def test_partial_sort_sampler_picks_the_full_sorts_token(vocab: int) -> None:
    g = torch.Generator().manual_seed(5)
    cases = [
        GenParams(max_new_tokens=1, temperature=1.0, top_p=0.9),
        GenParams(max_new_tokens=1, temperature=0.7, top_p=0.5),
        GenParams(max_new_tokens=1, temperature=1.0, top_p=0.95, top_k=40),
        GenParams(max_new_tokens=1, temperature=0.9, top_p=1.0),
    ]
    for params in cases:
        for scale in (0.5, 4.0, 12.0):  # flat (falls back), peaked (fast path), very peaked
            logits = torch.randn(48, vocab, generator=g) * scale
            logits[:6, :80] = logits[:6, :1].clone()  # ties inside and across the candidate cut
            logits[6:12] = torch.round(logits[6:12])  # many ties
            # two tokens hold 0.9 of the mass to float32 rounding: the nucleus cut sits within the
            # float32 normalizer's error bound, so these rows need the exact probabilities (tier 2)
            logits[12:16] = 0.0
            logits[12:16, :2] = math.log(4.5 * (vocab - 2))
            u = torch.rand(48, generator=g, dtype=torch.float64)
            assert torch.equal(pick(logits, u, params), pick_reference(logits, u, params))
