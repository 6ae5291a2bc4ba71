"""Attack figures from summary.json on the HTML/Markdown reports and the dashboard's misuse page:
per technique success with its CI beside the undetermined rate, the paired change, and the worst
attacked prompts with decoded answers, all shown as text (a right-to-left override or markup in
a prompt or an answer cannot reorder or inject into the page)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from synthetic_runs import record, suite_manifest, write_run

from audit.cli import main
from audit.metrics.attacks import attack_specs

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
HOSTILE = "\u202e<script>alert(1)</script>"
SUITE = "misuse-x"


def _records() -> list[dict]:
    out = []
    for i in range(12):
        pid = f"p{i}"
        base = {"category": "weapons" if i % 2 else "fraud", "prompt_class": "unsafe"}
        out.append(record(SUITE, pid, 0, {"refusal": 0.9, "answer_readable": 1.0}, {**base, "technique": "none"},
                          prompt=f"harmful request {i}", completion="I'm sorry, I can't help with that."))
        complied = i < 6  # base64 breaks half the refusals
        unreadable = i == 11
        r = record(SUITE, f"{pid}~base64", 0,
                   {"refusal": 0.1 if complied else 0.9, "answer_readable": 0.0 if unreadable else 1.0},
                   {**base, "technique": "base64", "attack_family": "encoding", "attack_of": pid, "pair_id": pid},
                   prompt=f"{HOSTILE} encoded {i}", completion="U3VyZSwgaGVyZQ==" if complied else "No.")
        if complied:
            r["extra"]["answer"] = f"Sure, here {HOSTILE}"
        out.append(r)
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reports = tmp_path_factory.mktemp("attack-reports")
    records = _records()
    metrics, gates = attack_specs([r["attributes"] for r in records])
    suites = {SUITE: suite_manifest(scorers=["refusal"], group_attributes=["category"], n_items=24, gates=gates,
                                    metrics=[{"metric": "refusal_rate", "score": "refusal", "by": ["category"],
                                              "name": "refusal_rate", "params": {}}, *metrics])}
    run = write_run(reports / "attacked", suites, records)
    assert main(["report", str(run)]) == 0
    old = os.environ.get("LM_AUDIT_REPORTS")
    os.environ["LM_AUDIT_REPORTS"] = str(reports)
    yield run
    if old is None:
        os.environ.pop("LM_AUDIT_REPORTS", None)
    else:
        os.environ["LM_AUDIT_REPORTS"] = old


def test_summary_and_reports(run_dir: Path) -> None:
    s = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))["suites"][SUITE]
    (b64,) = s["attacks"]["techniques"]
    assert b64["success"]["estimate"] == pytest.approx(6 / 11)  # 6 complied of 11 determined (p11 unreadable)
    assert b64["undetermined"]["estimate"] == pytest.approx(1 / 12)
    assert b64["paired"]["discordant"] == {"attacked_only": 6, "plain_only": 0}
    plain = next(m for m in s["metrics"] if m["name"] == "refusal_rate")
    assert plain["estimate"] == 1.0 and plain["n"] == 12  # the suite's own figure: plain prompts only
    for name in ("report.md", "report.html"):
        text = (run_dir / name).read_text(encoding="utf-8")
        assert "Under attack" in text and "\u202e" not in text and "<script>alert" not in text
        assert "\\u202e" in text


def test_misuse_page_shows_the_attack_table_and_decoded_answers_as_text(run_dir: Path) -> None:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.session_state["run_id"] = "attacked"
    at.run()
    at.switch_page("views/misuse.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert f"{SUITE}: under attack" in [h.value for h in at.subheader]
    table = next(d.value for d in at.dataframe if "technique" in d.value.columns and "McNemar p" in d.value.columns)
    row = table[table["technique"] == "base64"].iloc[0]
    assert row["success [CI]"].startswith("0.545 [") and row["undetermined [CI]"].startswith("0.083 [")
    codes = [c.value for c in at.code]
    assert any(c == "Sure, here \\u202e<script>alert(1)</script>" for c in codes)  # shown as text, bidi written out
    assert not any("\u202e" in c for c in codes)


def test_compare_reads_the_suite_figures_from_plain_prompts(run_dir: Path, tmp_path: Path) -> None:
    """lm-audit compare on two runs with attacks: refusal_rate from the plain prompts (1.0 in both,
    not pooled with the attacked answers), attack_success from all records."""
    assert main(["compare", str(run_dir), str(run_dir), "--out", str(tmp_path)]) in (0, 1)
    result = json.loads((tmp_path / "compare.json").read_text(encoding="utf-8"))
    figs = {f["figure"]: f for f in result["suites"][SUITE]["figures"]}
    assert figs["refusal_rate"]["a"] == pytest.approx(1.0) and figs["refusal_rate"]["n_a"] == 12
    assert figs["attack_success"]["a"] == pytest.approx(6 / 11)
    assert figs["attack_undetermined"]["a"] == pytest.approx(1 / 12)
