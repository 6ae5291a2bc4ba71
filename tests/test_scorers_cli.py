"""``lm-audit score``: one JSON object per text, references, options, files, errors."""

from __future__ import annotations

import json

import pytest

from audit.cli import main


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_score_prints_one_json_object_per_text(capsys) -> None:
    assert main(["score", "--scorer", "toxicity", "you are a stupid idiot", "have a lovely day"]) == 0
    rows = _lines(capsys)
    assert [r["text"] for r in rows] == ["you are a stupid idiot", "have a lovely day"]
    assert rows[0]["scores"]["toxicity"] > 0.5 > rows[1]["scores"]["toxicity"]
    assert rows[0]["scorer"] == "toxicity" and rows[0]["version"].startswith("alt-profanity-check")


def test_score_options_and_backend_suffix(capsys) -> None:
    assert main(["score", "-s", "toxicity", "-o", "neutralize_identity=true", "I am a gay man."]) == 0
    assert _lines(capsys)[0]["scores"]["toxicity"] < 0.2
    assert main(["score", "-s", "toxicity:detoxify", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "toxic_original-c1212f89.ckpt" in err


def test_score_factuality_with_refs(capsys) -> None:
    argv = ["score", "-s", "factuality", "-o", "semantic=false", "--ref", "Paris", "--incorrect", "Lyon"]
    assert main([*argv, "It is Paris.", "Lyon."]) == 0
    assert [r["scores"]["factual"] for r in _lines(capsys)] == [1.0, 0.0]
    assert main(["score", "-s", "factuality", "Paris"]) == 2
    assert "needs references" in capsys.readouterr().err
    assert main(["score", "-s", "sentiment", "--ref", "x", "good"]) == 2


def test_score_reads_files(tmp_path, capsys) -> None:
    plain = tmp_path / "texts.txt"
    plain.write_text("I love this\nI hate this\n", encoding="utf-8")
    assert main(["score", "-s", "sentiment", "--file", str(plain)]) == 0
    rows = _lines(capsys)
    assert rows[0]["scores"]["sentiment"] > 0 > rows[1]["scores"]["sentiment"]
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        json.dumps({"text": "Canberra", "correct": ["Canberra"], "incorrect": ["Sydney"]}) + "\n"
        + json.dumps({"text": "Sydney", "correct": ["Canberra"], "incorrect": ["Sydney"]}) + "\n",
        encoding="utf-8",
    )
    assert main(["score", "-s", "factuality", "-o", "semantic=false", "--file", str(qa)]) == 0
    assert [r["scores"]["factual"] for r in _lines(capsys)] == [1.0, 0.0]
    assert main(["score", "-s", "sentiment", "--file", str(tmp_path / "missing.txt")]) == 2


def test_score_escapes_bidi_and_invisible_characters(capsys) -> None:
    assert main(["score", "-s", "refusal", "abc\u202edef\u200b 😀"]) == 0
    out = capsys.readouterr().out
    assert "\u202e" not in out and "\u200b" not in out
    assert "\\u202e" in out and "😀" in out
    assert json.loads(out)["text"] == "abc\u202edef\u200b 😀"


def test_score_usage_errors(capsys) -> None:
    assert main(["score", "toxic text"]) == 2
    assert main(["score", "-s", "nope", "x"]) == 2
    assert main(["score", "-s", "toxicity"]) == 2
    assert main(["score", "-s", "toxicity", "-o", "novalue", "x"]) == 2
    errs = capsys.readouterr().err.splitlines()
    assert len(errs) == 4 and all(e.startswith("error: ") for e in errs)


def test_score_list_and_self_audit(capsys) -> None:
    assert main(["score", "--list"]) == 0
    assert {"toxicity", "sentiment", "regard", "factuality", "refusal", "hf-classifier"} <= set(
        capsys.readouterr().out.split()
    )
    assert main(["score", "-s", "toxicity", "--self-audit", "--threshold", "0.9"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["threshold"] == 0.9 and "gay" in report["groups"]
