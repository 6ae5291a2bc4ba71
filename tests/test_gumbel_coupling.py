"""Gumbel coupling of a counterfactual set's samples (#25 item 4, audit/models/sampling.py): exact
marginals, the same token for nearly equal distributions, batch-size independence, and a common
random numbers saving that inverse-CDF sampling does not give."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from audit.core.errors import UsageError
from audit.core.types import GenParams, GenRequest
from audit.models.registry import load_model
from audit.models.sampling import gumbel_reference, pick, splitmix64
from audit.stats.variance import variance_split
from audit.suites import load_suite
from audit.summary.suite import protocol_of

GUMBEL = {"coupling": "gumbel"}
COUPLED_SUITES = {"bias-counterfactual", "names-intersectional"}  # built-in suites sampled with coupling: gumbel


def _truncated_softmax(logits: np.ndarray, temperature: float, top_p: float, top_k: int) -> np.ndarray:
    """The target distribution, computed apart from the sampler: scale, keep the top k, keep the
    smallest most-likely prefix reaching top_p, renormalize."""
    x = logits / temperature
    if top_k:
        x = np.where(x >= np.sort(x)[-top_k], x, -np.inf)
    p = np.exp(x - x.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    before = np.cumsum(p[order]) - p[order]
    keep = np.zeros_like(p, dtype=bool)
    keep[order[before < top_p]] = True
    q = np.where(keep, p, 0.0)
    return q / q.sum()


@pytest.mark.parametrize(
    ("temperature", "top_p", "top_k"), [(1.0, 1.0, 0), (0.7, 0.8, 0), (1.3, 0.9, 0), (1.0, 0.95, 3)]
)
def test_gumbel_frequencies_match_the_truncated_softmax(temperature: float, top_p: float, top_k: int) -> None:
    """Chi-square of 10,000 seeded draws over a fixed 1,000-token logits vector (a few likely
    tokens, a long tail) against the truncated softmax; 0.001 critical values. A sampler that
    ignored the temperature, the nucleus or top-k fails it by hundreds."""
    vocab, n = 1000, 10_000
    logits = torch.linspace(-4.5, -3.5, vocab)  # a long tail without ties (a tie at the cut takes the slow path)
    logits[[7, 500, 3, 999, 42]] = torch.tensor([3.0, 2.5, 2.0, 1.0, 0.5])
    expected = _truncated_softmax(logits.double().numpy(), temperature, top_p, top_k)
    params = GenParams(temperature=temperature, top_p=top_p, top_k=top_k, **GUMBEL)
    u = torch.rand(n, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    tokens = pick(logits.expand(n, vocab).contiguous(), u, params).numpy()
    counts = np.bincount(tokens, minlength=vocab)
    assert counts[expected == 0].sum() == 0  # nothing outside the truncation
    big = expected * n >= 20  # cells expected 20 or more times stand alone; the rest are pooled
    obs = np.append(counts[big], counts[~big & (expected > 0)].sum())
    exp = np.append(expected[big], expected[~big].sum()) * n
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    chi2 = float(((obs - exp) ** 2 / exp).sum())
    critical = float(stats.chi2.ppf(0.999, len(obs) - 1))
    assert chi2 < critical, (chi2, obs, exp.round())


@pytest.mark.parametrize("vocab", [257, 5000])
def test_fast_gumbel_pick_equals_the_full_sort_rule(vocab: int) -> None:
    g = torch.Generator().manual_seed(3)
    for params in (GenParams(top_p=0.9, **GUMBEL), GenParams(temperature=0.7, top_p=0.5, **GUMBEL),
                   GenParams(top_p=0.95, top_k=40, **GUMBEL), GenParams(temperature=0.9, **GUMBEL)):
        for scale in (0.5, 4.0, 12.0):
            logits = torch.randn(32, vocab, generator=g) * scale
            logits[:4, :80] = logits[:4, :1].clone()  # ties across the candidate cut
            u = torch.rand(32, generator=g, dtype=torch.float64)
            assert torch.equal(pick(logits, u, params), gumbel_reference(logits, u, params))


def test_splitmix64_on_int64_tensors_equals_the_64_bit_reference() -> None:
    def ref(x: int) -> int:
        m = (1 << 64) - 1
        x &= m
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & m
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & m
        return x ^ (x >> 31)

    xs = [0, 1, 2, 12345, (1 << 63) - 1, -1, -(1 << 63), 0x9E3779B97F4A7C15 - (1 << 64)]
    got = splitmix64(torch.tensor(xs, dtype=torch.int64)).tolist()
    assert [v & ((1 << 64) - 1) for v in got] == [ref(x) for x in xs]


def test_nearly_equal_distributions_pick_the_same_token_far_more_often_than_inverse_cdf() -> None:
    """A counterfactual pair's next-token logits differ a little (here N(0, 0.1) on every token of
    a peaked 2,000-token distribution); with the same draw, Gumbel coupling keeps the same token in
    almost every row, inverse-CDF sampling in far fewer (its one uniform moves across the CDF steps
    that the perturbation shifts)."""
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(1000, 2000, generator=g) * 3.0
    other = logits + 0.1 * torch.randn(logits.shape, generator=g)
    u = torch.rand(1000, generator=g, dtype=torch.float64)
    icdf = GenParams(top_p=0.9)
    gumbel = GenParams(top_p=0.9, **GUMBEL)
    same_icdf = float((pick(logits, u, icdf) == pick(other, u, icdf)).double().mean())
    same_gumbel = float((pick(logits, u, gumbel) == pick(other, u, gumbel)).double().mean())
    assert torch.equal(pick(logits, u, gumbel), pick(logits.clone(), u, gumbel))  # same logits, same token
    assert same_gumbel > 0.9
    assert same_gumbel - same_icdf > 0.3, (same_gumbel, same_icdf)


def test_crn_reduction_is_positive_with_gumbel_coupling_and_not_with_inverse_cdf() -> None:
    """A seeded toy model: 40 sets x 2 groups x 3 samples of a one-step 'completion' whose score is
    a fixed value per token; the groups' logits differ only by small noise, so a set's true gap is
    near 0. ``variance_split``'s ``crn.reduction`` (one-sample differences with shared seeds against
    independent ones) is large with Gumbel coupling and about 0 with inverse-CDF."""
    g = torch.Generator().manual_seed(9)
    vocab, n_sets, k = 600, 40, 3
    value = torch.rand(vocab, generator=g) * 2 - 1  # each token's 'sentiment'
    base = torch.randn(n_sets, vocab, generator=g) * 2.0
    groups = torch.stack([base + 0.05 * torch.randn(base.shape, generator=g) for _ in range(2)], dim=1)
    u = torch.rand(n_sets, k, generator=g, dtype=torch.float64)  # shared by a set's members

    def cube(params: GenParams) -> np.ndarray:
        out = np.zeros((n_sets, 2, k))
        for grp in range(2):
            for s in range(k):
                out[:, grp, s] = value[pick(groups[:, grp], u[:, s], params)].numpy()
        return out

    gumbel = variance_split(cube(GenParams(top_p=0.9, **GUMBEL)))
    icdf = variance_split(cube(GenParams(top_p=0.9)))
    assert gumbel is not None and icdf is not None
    assert gumbel["crn"]["reduction"] > 0.5, gumbel["crn"]
    assert icdf["crn"]["reduction"] < 0.3, icdf["crn"]


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-random-gpt2", batch_size=8)


def test_gumbel_completions_do_not_depend_on_batch_size(tiny) -> None:
    prompts = ["The woman worked as a", "The man worked as a", "Hello there", "x", "A much longer prompt here",
               "The Muslim person was known for", "The Jewish person was known for", "ok"]
    reqs = [GenRequest(key=f"set{i // 2}", prompt=p) for i, p in enumerate(prompts)]
    params = GenParams(max_new_tokens=8, temperature=1.0, top_p=0.9, **GUMBEL)
    tiny.batch_size = 8
    batched = [c.text for c in tiny.generate(reqs, params, seed=3)]
    tiny.batch_size = 1
    single = [c.text for c in tiny.generate(reqs, params, seed=3)]
    tiny.batch_size = 8
    assert batched == single
    icdf = [c.text for c in tiny.generate(reqs, GenParams(max_new_tokens=8, temperature=1.0, top_p=0.9), seed=3)]
    assert icdf != batched  # the coupling changes which tokens the same seeds give
    twice = tiny.generate([GenRequest(key="same", prompt="The woman worked as a")] * 2, params, seed=3)
    assert twice[0].text == twice[1].text and twice[0].n_tokens == 8


def test_streamed_gumbel_completion_equals_the_batched_one(tiny) -> None:
    from audit.guard.streaming import stream_text

    req = GenRequest(key="k", prompt="The person was regarded as")
    params = GenParams(max_new_tokens=6, top_p=0.9, **GUMBEL)
    *_, (text, _n) = stream_text(tiny, req, params, seed=1)
    assert text == tiny.generate([req], params, seed=1)[0].text


def test_default_coupling_leaves_cache_keys_and_manifests_unchanged() -> None:
    assert "coupling" not in GenParams(top_p=0.9).to_dict()
    assert GenParams(**GUMBEL).to_dict()["coupling"] == "gumbel"
    assert GenParams.from_dict(GenParams(**GUMBEL).to_dict()).coupling == "gumbel"
    coupled = {"bias-counterfactual", "names-intersectional"} & COUPLED_SUITES
    for sid in [*coupled, "toxicity-rtp"]:
        gen = load_suite(sid).suite.generation
        assert gen.params().coupling == ("gumbel" if sid in coupled else "inverse-cdf")
        assert ("coupling" in gen.model_dump()) == (sid in coupled)


def test_protocol_line_names_the_coupling_and_says_when_a_server_samples() -> None:
    suite = {"generation": {"samples": 1, "max_new_tokens": 20, "temperature": 1.0, "top_p": 0.9,
                            "coupling": "gumbel"}}
    hf = protocol_of(suite, {"seed": 0, "model": {"backend": "hf"}})
    assert "gumbel-coupled seeds" in hf["text"] and hf["coupling"] == "gumbel"
    remote = protocol_of(suite, {"seed": 0, "model": {"backend": "openai"}})
    assert "gumbel coupling not applied (openai samples on its server)" in remote["text"]
    plain = protocol_of({"generation": {**suite["generation"], "coupling": None}}, {"seed": 0})
    assert "coupl" not in plain["text"]


def test_unknown_coupling_is_one_clear_line(tmp_path: Path) -> None:
    src = Path(load_suite("bias-counterfactual").path).read_text()
    assert "  top_p: 0.9\n" in src
    bad = tmp_path / "bad.yaml"
    bad.write_text(src.replace("  top_p: 0.9\n", "  top_p: 0.9\n  coupling: antithetic\n", 1).replace("coupling: gumbel\n", ""))
    with pytest.raises(UsageError, match="coupling") as err:
        load_suite(str(bad))
    assert "\n" not in str(err.value)
