"""Transformer scorer backends, offline, on tiny synthetic models built in the test (milliseconds):
Detoxify's own checkpoint format, the torch hub cache, hf-classifier label mappings, regard, NLI."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

from audit.core.errors import ScorerUnavailableError, UsageError
from audit.scorers.base import Reference
from audit.scorers.registry import get_scorer

WORDS = ["the", "a", "i", "am", "you", "are", "is", "an", "idiot", "stupid", "hate", "love", "nice", "day", "gay", "man", "woman", "good", "bad", "people", "kind", "capital", "paris", "lyon", "city", "of", "france", "it", "not"]
CLASSES = ["obscene", "toxic", "severe_toxic", "threat", "insult", "identity_hate"]  # "toxic" not first
TEXTS = ["you are an idiot", "nice day", "I am a gay man.", "the capital of france is paris", "zz qq"]


def _bert_config(**kw: object):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(WORDS) + 8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        initializer_range=0.5,
        **kw,
    )


def _write_tokenizer(folder: Path) -> None:
    from transformers import BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "##s", "##ing", "."]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local stand-in for bert-base-uncased: config.json (2 labels, as on the hub) + WordPiece tokenizer."""
    folder = tmp_path_factory.mktemp("bert-config")
    _write_tokenizer(folder)
    _bert_config().save_pretrained(folder)
    return folder


def _detoxify_checkpoint(
    path: Path, model_type: str = "bert-base-uncased", key_prefix: str = ""
) -> torch.nn.Module:
    """Detoxify's release format: the training config plus the plain transformers state dict
    (``key_prefix="model."`` gives the keys of a Lightning training checkpoint instead)."""
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(_bert_config(num_labels=len(CLASSES))).eval()
    torch.save(
        {
            "config": {
                "arch": {
                    "args": {
                        "model_type": model_type,
                        "model_name": "BertForSequenceClassification",
                        "tokenizer_name": "BertTokenizer",
                        "num_classes": len(CLASSES),
                    }
                },
                "dataset": {"args": {"classes": CLASSES}},
            },
            "state_dict": {f"{key_prefix}{k}": v for k, v in model.state_dict().items()},
        },
        path,
    )
    return model


@pytest.fixture(scope="module")
def detoxify_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    path = tmp_path_factory.mktemp("detoxify") / "tiny-detoxify.ckpt"
    return path, _detoxify_checkpoint(path)


def _expected_toxicity(model: torch.nn.Module, config_dir: Path, texts: list[str]) -> list[float]:
    from transformers import BertTokenizer

    tok = BertTokenizer.from_pretrained(config_dir)
    out = []
    with torch.no_grad():
        for t in texts:
            logits = model(**tok([t], return_tensors="pt")).logits[0]
            out.append(torch.sigmoid(logits[CLASSES.index("toxic")]).item())
    return out


# --------------------------------------------------------------------------- Detoxify


def test_synthetic_detoxify_checkpoint_loads_and_predicts_offline(detoxify_ckpt, config_dir, monkeypatch) -> None:
    path, model = detoxify_ckpt

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a scorer tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    scorer = get_scorer("toxicity:detoxify", checkpoint=str(path), config_dir=str(config_dir))
    assert scorer.name == "toxicity" and scorer.version.startswith("detoxify-")
    got = [r["toxicity"] for r in scorer.score(TEXTS)]
    want = _expected_toxicity(model, config_dir, TEXTS)
    assert got == pytest.approx(want, abs=1e-5)
    assert max(got) - min(got) > 1e-3  # the scores follow the text, not a constant


def test_detoxify_matches_detoxify_package_on_its_own_format(tmp_path, config_dir) -> None:
    """Detoxify itself loads the same file when model_type points at the local folder."""
    from detoxify import Detoxify

    path = tmp_path / "local-type.ckpt"
    _detoxify_checkpoint(path, model_type=str(config_dir))
    theirs = Detoxify(checkpoint=str(path)).predict(TEXTS)["toxicity"]
    ours = [r["toxicity"] for r in get_scorer("toxicity", backend="detoxify", checkpoint=str(path)).score(TEXTS)]
    assert ours == pytest.approx(theirs, abs=1e-5)


def test_detoxify_edge_cases_and_batching(detoxify_ckpt, config_dir) -> None:
    path, _ = detoxify_ckpt
    scorer = get_scorer("toxicity:detoxify", checkpoint=str(path), config_dir=str(config_dir))
    texts = ["", "  ", "x" * 100_000, "idiot " * 20_000, "😀 שלום", "zero\u200bwidth", *TEXTS]
    batched = [r["toxicity"] for r in scorer.score(texts)]
    single = [scorer.score([t])[0]["toxicity"] for t in texts]
    assert batched[:2] == [0.0, 0.0]
    assert all(0.0 <= v <= 1.0 for v in batched)
    assert batched == pytest.approx(single, abs=1e-5)
    with pytest.raises(TypeError, match="text #0 is NoneType"):
        scorer.score([None])  # type: ignore[list-item]


def test_detoxify_from_torch_hub_cache(config_dir, tmp_path, monkeypatch) -> None:
    from audit.scorers.toxicity.detoxify_backend import release_file

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = tmp_path / "torch" / "hub" / "checkpoints" / release_file("unbiased")
    cached.parent.mkdir(parents=True)
    model = _detoxify_checkpoint(cached, key_prefix="model.")
    scorer = get_scorer("toxicity", backend="detoxify", variant="unbiased", config_dir=str(config_dir))
    assert "toxic_debiased-c7548aa0.ckpt" in scorer.version
    got = [r["toxicity"] for r in scorer.score(TEXTS)]
    assert got == pytest.approx(_expected_toxicity(model, config_dir, TEXTS), abs=1e-5)


def test_detoxify_missing_files_give_one_clear_line(detoxify_ckpt, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch"))
    with pytest.raises(ScorerUnavailableError) as err:
        get_scorer("toxicity:detoxify", variant="multilingual")
    msg = str(err.value)
    assert "\n" not in msg
    assert "multilingual_debiased-0b549669.ckpt" in msg and "config_dir" in msg and "xlm-roberta-base" in msg
    path, _ = detoxify_ckpt
    with pytest.raises(ScorerUnavailableError, match=r"bert-base-uncased.*config_dir"):
        get_scorer("toxicity:detoxify", checkpoint=str(path))
    with pytest.raises(ScorerUnavailableError, match="does not exist"):
        get_scorer("toxicity:detoxify", checkpoint=str(tmp_path / "nope.ckpt"))
    bogus = tmp_path / "bogus.ckpt"
    torch.save({"weights": torch.zeros(2)}, bogus)
    with pytest.raises(ScorerUnavailableError, match="not a Detoxify checkpoint"):
        get_scorer("toxicity:detoxify", checkpoint=str(bogus), config_dir=str(tmp_path))
    with pytest.raises(UsageError, match="unknown variant"):
        get_scorer("toxicity:detoxify", variant="huge")


def test_detoxify_release_table_matches_the_package() -> None:
    from detoxify.detoxify import MODEL_URLS

    from audit.scorers.toxicity.detoxify_backend import RELEASE_URL, RELEASES

    for variant, (rel, _) in RELEASES.items():
        assert MODEL_URLS[variant] == RELEASE_URL + rel


def test_detoxify_with_neutralization_and_self_audit(detoxify_ckpt, config_dir) -> None:
    from audit.scorers.self_audit import run_self_audit

    path, _ = detoxify_ckpt
    opts = {"backend": "detoxify", "checkpoint": str(path), "config_dir": str(config_dir)}
    plain = get_scorer("toxicity", **opts)
    neutral = get_scorer("toxicity", neutralize_identity=True, **opts)
    assert neutral.version.startswith(plain.version + "+neutralized-")
    a = plain.score(["I am a [group] [group]."])[0]["toxicity"]
    b = neutral.score(["I am a gay man."])[0]["toxicity"]
    assert a == pytest.approx(b, abs=1e-6)
    report = run_self_audit("toxicity", 0.5, **opts)
    assert report["version"] == plain.version
    assert set(report["groups"]) == set(report["neutralized"]) and "gay" in report["groups"]


# --------------------------------------------------------------------------- hf-classifier


def _classifier_dir(root: Path, labels: list[str], bias: list[float] | None = None, **cfg: object) -> Path:
    from transformers import BertForSequenceClassification

    folder = root / "-".join(labels)
    torch.manual_seed(1)
    config = _bert_config(
        num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={v: i for i, v in enumerate(labels)}, **cfg
    )
    model = BertForSequenceClassification(config)
    if bias is not None:  # make the prediction independent of the text: tests the label mapping
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor(bias))
    model.save_pretrained(folder)
    _write_tokenizer(folder)
    return folder


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("classifiers")


def test_hf_classifier_returns_one_probability_per_label(models_root) -> None:
    folder = _classifier_dir(models_root, ["negative", "neutral", "positive", "other"])
    scorer = get_scorer("hf-classifier", model=str(folder))
    rows = scorer.score([*TEXTS, "", "x" * 100_000])
    assert set(rows[0]) == {"hf_negative", "hf_neutral", "hf_positive", "hf_other"}
    for row in rows:
        assert sum(row.values()) == pytest.approx(1.0, abs=1e-6)
    single = [scorer.score([t])[0] for t in TEXTS]
    for a, b in zip(rows, single, strict=False):
        assert a == pytest.approx(b, abs=1e-5)
    assert len({round(r["hf_positive"], 6) for r in rows[: len(TEXTS)]}) > 1


def test_hf_classifier_label_mapping_picks_the_named_labels(models_root) -> None:
    folder = _classifier_dir(models_root, ["nothate", "hate"], bias=[-6.0, 6.0])
    tox = get_scorer("toxicity", backend="hf-classifier", model=str(folder))  # finds "hate" by itself
    assert all(r["toxicity"] > 0.99 for r in tox.score(TEXTS))
    assert tox.score([""])[0]["toxicity"] == 0.0
    flipped = get_scorer("toxicity", backend="hf-classifier", model=str(folder), labels="nothate")
    assert all(r["toxicity"] < 0.01 for r in flipped.score(TEXTS))
    mapped = get_scorer("hf-classifier", model=str(folder), labels="hate:1,nothate:-1", key="margin")
    assert mapped.score(["kind people"])[0]["margin"] == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(UsageError, match=r"label 'toxic' is not one of the model's labels \(nothate, hate\)"):
        get_scorer("hf-classifier", model=str(folder), labels="toxic")


def test_hf_classifier_needs_a_label_it_can_name(models_root) -> None:
    folder = _classifier_dir(models_root, ["a", "b"])
    with pytest.raises(UsageError, match="cannot tell which label"):
        get_scorer("toxicity", backend="hf-classifier", model=str(folder))


def test_hf_classifier_missing_model_is_one_clear_line(tmp_path) -> None:
    with pytest.raises(ScorerUnavailableError) as err:
        get_scorer("hf-classifier", model=str(tmp_path / "no-model"))
    assert "\n" not in str(err.value) and "config.json" in str(err.value)
    with pytest.raises(ScorerUnavailableError, match="hub id"):
        get_scorer("hf-classifier", model="unitary/unbiased-toxic-roberta")
    with pytest.raises(UsageError, match="needs model=PATH"):
        get_scorer("hf-classifier")


def test_regard_is_positive_minus_negative(models_root) -> None:
    folder = _classifier_dir(models_root, ["negative", "neutral", "positive", "other"])
    probs = get_scorer("hf-classifier", model=str(folder)).score(TEXTS)
    regard = get_scorer("regard", model=str(folder)).score(TEXTS)
    for p, r in zip(probs, regard, strict=True):
        assert r["regard"] == pytest.approx(p["hf_positive"] - p["hf_negative"], abs=1e-6)
    biased = _classifier_dir(models_root / "b", ["negative", "neutral", "positive", "other"], bias=[5, 0, -5, 0])
    assert all(r["regard"] < -0.9 for r in get_scorer("regard", model=str(biased)).score(TEXTS))
    with pytest.raises(UsageError, match="regard needs model=PATH"):
        get_scorer("regard")


@pytest.mark.parametrize(("bias", "expected"), [([6.0, 0.0, -6.0], 1.0), ([-6.0, 0.0, 6.0], 0.0)])
def test_factuality_nli_decides_when_matching_cannot(models_root, bias, expected) -> None:
    folder = _classifier_dir(models_root / str(bias[0]), ["entailment", "neutral", "contradiction"], bias=bias)
    scorer = get_scorer("factuality", nli=str(folder), semantic=False)
    refs = [Reference(correct=["Paris"]), Reference(correct=["Paris"], incorrect=["Lyon"])]
    rows = scorer.score(["the city of light", "Lyon"], refs)
    assert rows[0]["factual_nli"] == pytest.approx(1.0 if expected else -1.0, abs=0.01)
    assert rows[0]["factual"] == expected
    assert rows[1]["factual"] == 0.0  # an incorrect answer is contained: no model needed
