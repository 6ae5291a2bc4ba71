"""Hostile and malformed suites: each ends as one located line and exit 2 (never a traceback,
RecursionError or csv error), and large valid suites still validate with their item count."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from audit.cli import main

BASE = """\
id: hostile
title: t
description: d
version: 1
citation: none
licence: CC0-1.0
prompts:
  templates:
    - {id: t1, text: "TEXT"}
  lexicons:
    - {attribute: gender, groups: {female: [the woman], male: [the man]}}
generation: {samples: 1STOP}
group_attributes: [gender]
scorers: [sentiment]
metrics:
  - {name: mean_sentiment, metric: mean, score: sentiment, by: [gender]PARAMS}
gates:
  - {metric: "gap(sentiment, gender)", op: "<=", threshold: THRESHOLD}
"""


def _suite(tmp_path: Path, text: str = "{group} said", stop: str = "", params: str = "",
           threshold: str = "0.1", name: str = "s.yaml") -> Path:
    body = (BASE.replace("TEXT", text).replace("STOP", stop).replace("PARAMS", params)
            .replace("THRESHOLD", threshold))
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return p


def _validate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(path: Path, capsys: pytest.CaptureFixture[str], pattern: str) -> str:
    code, out, err = _validate(path, capsys)
    assert code == 2, (out, err)
    assert out == "" and err.count("\n") == 1, err
    assert "Traceback" not in err and "internal error" not in err
    assert re.search(pattern, err), err
    return err


def test_baseline_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _validate(_suite(tmp_path), capsys)
    assert code == 0 and "2 items" in out, err


# --------------------------------------------------------------------------- duplicate keys


def test_duplicate_top_level_key_names_both_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _suite(tmp_path)
    p.write_text(p.read_text() + "id: other\n")
    _one_line_error(p, capsys, r"s\.yaml:19: id: key 'id' is given twice \(lines 1 and 19\)")


def test_duplicate_group_key_in_an_inline_lexicon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _suite(tmp_path)
    p.write_text(p.read_text().replace("male: [the man]}", "male: [the man], female: [a girl]}"))
    _one_line_error(p, capsys, r"s\.yaml:11: female: key 'female' is given twice \(lines 11 and 11\)")


def test_duplicate_group_key_in_a_lexicon_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lex.yaml").write_text("attribute: pet\ngroups:\n  cat: [a cat]\n  dog: [a dog]\n  cat: [the cat]\n")
    p = _suite(tmp_path)
    p.write_text(p.read_text().replace("    - {attribute: gender, groups: {female: [the woman], male: [the man]}}",
                                       "    - lex.yaml").replace("[gender]", "[pet]").replace("sentiment, gender", "sentiment, pet"))
    _one_line_error(p, capsys, r"lex\.yaml:5: cat: key 'cat' is given twice \(lines 3 and 5\)")


# --------------------------------------------------------------------------- placeholders


@pytest.mark.parametrize(("text", "why"), [
    ("{group.attr} said", r"placeholder '\{group\.attr\}' is not a slot"),
    ("{0} said {group}", r"placeholder '\{0\}' is not a slot"),
    ("{} said {group}", r"placeholder '\{\}' is not a slot"),
    ("{ group } said", r"placeholder '\{ group \}' is not a slot"),
    ("{race} said", r"unknown slot \{race\}: this suite defines \{group\}, \{gender\}"),
])
def test_placeholders_must_be_slots_the_suite_defines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, why: str
) -> None:
    _one_line_error(_suite(tmp_path, text=text), capsys, r"s\.yaml:9: prompts\.templates\.0\.text: " + why)


def test_a_slot_used_twice_is_valid_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _validate(_suite(tmp_path, text="{group} said that {group} was"), capsys)
    assert code == 0 and out.startswith("OK ")
    assert "note:" in err and "uses {group} 2 times: every use gets the same term" in err


# --------------------------------------------------------------------------- paths


def test_lexicon_path_outside_the_suite_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "outside.yaml").write_text("attribute: pet\ngroups: {cat: [a cat], dog: [a dog]}\n")
    inner = tmp_path / "suites"
    inner.mkdir()
    p = _suite(inner)
    p.write_text(p.read_text().replace("    - {attribute: gender, groups: {female: [the woman], male: [the man]}}",
                                       "    - ../outside.yaml"))
    _one_line_error(p, capsys, r"s\.yaml:11: prompts\.lexicons\.0: lexicon path '\.\./outside\.yaml' leaves the suite's folder")


def test_data_path_outside_the_suite_folder_even_by_symlink(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rows.txt").write_text("hello\n")
    inner = tmp_path / "suites"
    inner.mkdir()
    (inner / "link.txt").symlink_to(tmp_path / "rows.txt")
    text = ("id: d\ntitle: t\ndescription: d\nversion: 1\ncitation: none\nlicence: CC0-1.0\n"
            "prompts:\n  data: DATA\n  fields: {prompt: prompt}\nscorers: [sentiment]\n")
    for data in ("../rows.txt", "link.txt"):
        p = inner / "d.yaml"
        p.write_text(text.replace("DATA", data))
        _one_line_error(p, capsys, rf"d\.yaml:8: prompts\.data: data path '{re.escape(data)}' leaves the suite's folder")


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("bad", [".nan", ".inf", "-.inf", '"NaN"', '"inf"', '"high"', "true", "[1]"])
def test_gate_threshold_must_be_a_finite_number(tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str) -> None:
    _one_line_error(_suite(tmp_path, threshold=bad), capsys, r"s\.yaml:18: gates\.0\.threshold: must be a finite number")


@pytest.mark.parametrize("bad", ['"high"', ".nan", ".inf", "null"])
def test_metric_threshold_param_must_be_a_finite_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    err = _one_line_error(_suite(tmp_path, params=f", params: {{threshold: {bad}}}"), capsys,
                          r"s\.yaml:16: metrics\.0\.params: params\.threshold must be a finite number")
    assert "metrics.0.params" in err


def test_metric_param_higher_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(_suite(tmp_path, params=", params: {higher_is: up}"), capsys,
                    r"metrics\.0\.params: params\.higher_is must be better, worse or neutral")


@pytest.mark.parametrize("field", ["temperature: .nan", "top_p: .inf", "temperature: \"hot\""])
def test_generation_numbers_must_be_finite(tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str) -> None:
    _one_line_error(_suite(tmp_path, stop=f", {field}"), capsys, r"s\.yaml:12: generation\.(temperature|top_p): ")


def test_empty_stop_string_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(_suite(tmp_path, stop=', stop: ["\\n", ""]'), capsys,
                    r"s\.yaml:12: generation\.stop: a stop string is empty")


# --------------------------------------------------------------------------- resource limits


def test_yaml_nested_ten_thousand_deep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "deep.yaml"
    p.write_text("id: x\nprompts: " + "[" * 10_000 + "]" * 10_000 + "\n")
    _one_line_error(p, capsys, r"deep\.yaml:2: nested deeper than 64 levels")
    p.write_text("id: x\nprompts: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n")
    _one_line_error(p, capsys, r"deep\.yaml:2: nested deeper than 64 levels")


def test_yaml_alias_bomb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    p = tmp_path / "bomb.yaml"
    p.write_text("\n".join(lines) + "\n")
    _one_line_error(p, capsys, r"bomb\.yaml: more than 2,000,000 values once aliases are expanded")


def test_oversized_yaml_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "big.yaml"
    p.write_text("id: x\ndescription: " + "a" * (17 * 1024 * 1024) + "\n")
    _one_line_error(p, capsys, r"big\.yaml: file is [\d,]+ bytes, over the limit of 16,777,216")


DATA_SUITE = ("id: d\ntitle: t\ndescription: d\nversion: 1\ncitation: none\nlicence: CC0-1.0\n"
              "prompts:\n  data: FILE\n  fields: {prompt: prompt}\nscorers: [sentiment]\n"
              "metrics:\n  - {name: mean_sentiment, metric: mean, score: sentiment}\n")


def _data_suite(tmp_path: Path, file: str) -> Path:
    p = tmp_path / "d.yaml"
    p.write_text(DATA_SUITE.replace("FILE", file))
    return p


def test_csv_field_over_the_csv_module_default_is_fine_and_over_the_limit_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rows.csv").write_text("prompt\nshort\n" + "b" * 200_000 + "\n")
    code, out, err = _validate(_data_suite(tmp_path, "rows.csv"), capsys)
    assert code == 0 and "2 items" in out, err
    (tmp_path / "rows.csv").write_text("prompt\nshort\n" + "b" * 1_100_000 + "\n")
    _one_line_error(_data_suite(tmp_path, "rows.csv"), capsys,
                    r"rows\.csv:3: a field is over the limit of 1,048,576 characters")


def test_jsonl_field_over_the_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rows.jsonl").write_text('{"prompt": "ok"}\n' + json.dumps({"prompt": "c" * 1_100_000}) + "\n")
    _one_line_error(_data_suite(tmp_path, "rows.jsonl"), capsys,
                    r"rows\.jsonl:2: field 'prompt' is over the limit of 1,048,576 characters")


@pytest.mark.parametrize("suffix", ["json", "jsonl"])
def test_json_nested_deep(tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / f"rows.{suffix}").write_text(f"[{deep}]" if suffix == "json" else deep + "\n")
    _one_line_error(_data_suite(tmp_path, f"rows.{suffix}"), capsys, r"rows\.jsonl?(:1)?: JSON nested too deeply")


def test_template_expansion_over_the_item_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    forms = ", ".join(f"w{i}" for i in range(1000))
    forms2 = ", ".join(f"v{i}" for i in range(1000))
    text = BASE.replace("TEXT", "{gender} and {pet}").replace("STOP", "").replace("PARAMS", "").replace(
        "THRESHOLD", "0.1")
    text = text.replace(
        "    - {attribute: gender, groups: {female: [the woman], male: [the man]}}",
        f"    - {{attribute: gender, groups: {{female: [{forms}], male: [{forms2}]}}}}\n"
        f"    - {{attribute: pet, groups: {{cat: [{forms.replace('w', 'c')}], dog: [{forms.replace('w', 'd')}]}}}}")
    p = tmp_path / "s.yaml"
    p.write_text(text)
    _one_line_error(p, capsys, r"prompts\.templates: the templates expand to 4,000,000 items, over the limit of 2,000,000")


def test_a_300k_item_suite_validates_and_shows_its_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with (tmp_path / "rows.jsonl").open("w") as fh:
        for i in range(300_000):
            fh.write(f'{{"prompt": "prompt number {i}"}}\n')
    code, out, err = _validate(_data_suite(tmp_path, "rows.jsonl"), capsys)
    assert code == 0, err
    assert "300000 items" in out


@pytest.mark.parametrize("command", [["validate"], ["suites", "show"]])
def test_every_suite_command_gives_the_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    p = tmp_path / "deep.yaml"
    p.write_text("id: x\nprompts: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n")
    assert main([*command, str(p)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "nested deeper than 64 levels" in err
