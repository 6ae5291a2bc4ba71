"""Lone surrogates in a run's files (a ``\\ud800`` escape in records.jsonl, hand-edited or hostile,
parses to a string no page can encode) are made safe on every dashboard page: in the records, in
summary.json and in a provisional summary computed from such records (issue #27, item 6)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from export_fixtures import audit_run
from streamlit.testing.v1 import AppTest
from synthetic_runs import record

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
PAGES = ["runs", "overview", "toxicity", "bias", "stereotypes", "factuality", "misuse", "scorer_audit", "examples",
         "drilldown", "compare", "models"]
LONE = "\ud800"


def _surrogate_records() -> list[dict]:
    return [
        record("tox", f"p-lone-{i}", s, {"toxicity": 0.95 - 0.1 * i}, {"category": f"insult{LONE}" if i else "insult"},
               prompt=f"a prompt {LONE} with a lone surrogate", completion=f" and {LONE}\udfff a completion {i}")
        for i in range(3) for s in range(4)
    ]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("surrogates") / "reports"
    out.mkdir()
    run = audit_run(out, "lone")
    with (run / "records.jsonl").open("a", encoding="ascii") as fh:  # JSON escapes, as a hostile file holds them
        fh.writelines(json.dumps(r, ensure_ascii=True) + "\n" for r in _surrogate_records())
    from audit.run.finalize import finalize_run

    finalize_run(run, echo=lambda _line: None)  # summary.json computed from them
    assert "\\ud800" in (run / "records.jsonl").read_text()
    fresh = out / "lone-provisional"  # no summary.json: the dashboard asks audit for one
    fresh.mkdir()
    for name in ("manifest.json", "records.jsonl"):
        shutil.copy(run / name, fresh / name)
    manifest = json.loads((fresh / "manifest.json").read_text())
    (fresh / "manifest.json").write_text(json.dumps({**manifest, "run_id": "lone-provisional"}))
    old = os.environ.get("LM_AUDIT_REPORTS")
    os.environ["LM_AUDIT_REPORTS"] = str(out)
    yield out
    if old is None:
        os.environ.pop("LM_AUDIT_REPORTS", None)
    else:
        os.environ["LM_AUDIT_REPORTS"] = old


def _page(name: str, run: str, compare: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.session_state["run_id"] = run
    at.session_state["compare_id"] = compare
    at.run()
    if name != "runs":
        at.switch_page(f"views/{name}.py").run()
    return at


@pytest.mark.parametrize("run", ["lone", "lone-provisional"])
def test_every_page_shows_a_run_with_lone_surrogates(reports: Path, run: str) -> None:
    other = "lone-provisional" if run == "lone" else "lone"
    for name in PAGES:
        at = _page(name, run, other)
        assert not at.exception, (name, [e.message for e in at.exception])
        shown = "\n".join(str(e.value) for kind in ("markdown", "text", "caption", "error", "warning")
                          for e in getattr(at, kind))
        assert "UnicodeEncodeError" not in shown and "surrogates not allowed" not in shown, name
    at = _page("examples", run, other)
    cells = "\n".join(str(v) for d in at.dataframe for v in d.value.to_numpy().ravel())
    assert "a prompt \ufffd with a lone surrogate" in cells  # the text is shown, the bad character replaced


def test_scrub_replaces_lone_surrogates_in_strings_and_keys_only() -> None:
    from dashboard.safe_io import load_json_text, scrub

    raw = json.dumps({"k\ud800": ["x\udfff", {"emoji": "\U0001f600", "n": 1.5, "none": None}]})
    assert load_json_text(raw) == {"k\ufffd": ["x\ufffd", {"emoji": "\U0001f600", "n": 1.5, "none": None}]}
    assert load_json_text(raw.encode()) == load_json_text(raw)
    clean = {"a": ["b", {"c": "\U0001f600"}]}
    assert scrub(clean) == clean and scrub("\ud800") == "\ufffd"
