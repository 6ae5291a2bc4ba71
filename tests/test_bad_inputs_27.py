"""The smaller fail-open paths of issue #27, item 6: a NUL (or other control) byte in a suite YAML
is a usage error (exit 2, one line with file:line), not an internal error; null, object, list,
boolean or number prompts in a data file are refused with file:line; a run that fails while loading
leaves no run folder holding only ``.lock``. (Surrogates on the dashboard: test_dashboard_surrogates.py.)"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from audit.store.leftovers import remove_unused, run_dirs

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
SUITE = """id: jd
title: JSONL data
description: prompts from a data file
version: 0.1
citation: none
licence: CC0-1.0
prompts:
  data: d.jsonl
  fields: {id: id, prompt: text, attributes: [topic]}
  filter: {topic: [keep]}
generation: {samples: 1, max_new_tokens: 4}
scorers: [sentiment]
"""


def lm_audit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audit", *args], capture_output=True, text=True, timeout=300,
                          env=ENV, cwd=cwd)


@pytest.mark.parametrize(("byte", "code"), [("\x00", "U+0000"), ("\x07", "U+0007"), ("\x1b", "U+001B")])
def test_a_control_byte_in_a_suite_yaml_is_exit_2_with_its_line(tmp_path: Path, byte: str, code: str) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE.replace("title: JSONL data", f"title: JSONL{byte} data"))
    for args in (["validate", str(suite)], ["run", "--suite", str(suite), "--model", "tiny-random-gpt2",
                                             "--out", str(tmp_path / "out")]):
        r = lm_audit(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and "internal error" not in r.stderr
        assert f"{suite}:2: invalid YAML: control character {code} is not allowed" in r.stderr


@pytest.mark.parametrize(("value", "shown"), [
    (None, "null"), ({"x": 1}, 'an object ({"x": 1})'), (["a"], 'a list (["a"])'), (True, "a boolean (true)"),
    (3, "a number (3)"),
])
def test_prompts_that_are_not_text_are_refused_with_file_and_line(tmp_path: Path, value: object, shown: str) -> None:
    (tmp_path / "s.yaml").write_text(SUITE)
    rows = [{"id": "a", "text": "hello", "topic": "keep"}, None,  # None: a blank line (line 2)
            {"id": "z", "text": None, "topic": "drop"},  # filtered out: never used, never refused
            {"id": "b", "text": value, "topic": "keep"}]
    (tmp_path / "d.jsonl").write_text("".join("\n" if r is None else json.dumps(r) + "\n" for r in rows))
    r = lm_audit("validate", "s.yaml", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert r.stderr.strip() == f"error: d.jsonl:4: prompt column 'text' is {shown}, not text"


def test_context_and_option_columns_must_be_text_too_and_good_files_pass(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(SUITE.replace("fields: {id: id, prompt: text, attributes: [topic]}",
                                                   "fields: {id: id, prompt: text, context: ctx, attributes: [topic]}"))
    good = [{"id": "a", "text": "hello", "ctx": "c", "topic": "keep"}]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in good))
    r = lm_audit("validate", "s.yaml", cwd=tmp_path)
    assert r.returncode == 0 and "OK s.yaml: suite 'jd', 1 items" in r.stdout
    (tmp_path / "d.jsonl").write_text(json.dumps({**good[0], "ctx": None}) + "\n")
    r = lm_audit("validate", "s.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "d.jsonl:1: context column 'ctx' is null, not text" in r.stderr


def test_a_run_that_fails_at_model_loading_leaves_no_folder(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(SUITE)
    (tmp_path / "d.jsonl").write_text(json.dumps({"id": "a", "text": "hello", "topic": "keep"}) + "\n")
    out = tmp_path / "reports"
    (out / "kept").mkdir(parents=True)  # someone else's folder holding only .lock: not ours to remove
    (out / "kept" / ".lock").write_text("")
    for extra in ([], ["--until-decided", "--limit", "1"], ["--model", "tiny-random-gpt2"]):
        r = lm_audit("run", "--suite", str(tmp_path / "s.yaml"), "--model", str(tmp_path / "no-such-model"),
                     *extra, "--out", str(out), "--name", "failed")
        assert r.returncode == 2 and "model path not found" in r.stderr, (extra, r.stderr)
        assert run_dirs(out) == {"kept"}, extra


def test_remove_unused_touches_only_an_unheld_lonely_lock(tmp_path: Path) -> None:
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / ".lock").write_text("")
    with (lonely / ".lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a run starting in another process
        assert not remove_unused(lonely) and lonely.is_dir()
    assert remove_unused(lonely) and not lonely.exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / ".lock").write_text("")
    (busy / "manifest.json").write_text("{}")
    assert not remove_unused(busy) and (busy / "manifest.json").is_file()
    assert not remove_unused(tmp_path / "missing")
