"""The dashboard with streamlit.testing's AppTest: every page on fixture runs made by the real
pipeline (plus one run whose summary is the documented schema-1 example, one without a summary),
what a reviewer must see on each, tolerance of missing sections, text-only rendering of hostile
completions, and confinement to the reports folder. Also the ``lm-audit dashboard`` command line."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from audit.cli import main

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"
_spec = importlib.util.spec_from_file_location(
    "dashboard_fixture_runs", Path(__file__).parent / "fixtures" / "dashboard" / "build_runs.py"
)
fixture_runs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixture_runs)


@pytest.fixture(scope="module", autouse=True)
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("dash")
    out = fixture_runs.build_reports(base / "reports", base / "suites")
    outside = base / "outside-run"  # a run folder outside the reports folder, linked into it
    outside.mkdir()
    (outside / "manifest.json").write_text(json.dumps({"run_id": "secret", "model": {"name": "secret-model"}}))
    (out / "linked").symlink_to(outside, target_is_directory=True)
    old = os.environ.get("LM_AUDIT_REPORTS")
    os.environ["LM_AUDIT_REPORTS"] = str(out)
    yield out
    if old is None:
        os.environ.pop("LM_AUDIT_REPORTS", None)
    else:
        os.environ["LM_AUDIT_REPORTS"] = old


def page(name: str, run: str | None = "documented", compare: str | None = None, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    if run is not None:
        at.session_state["run_id"] = run
    if compare is not None:
        at.session_state["compare_id"] = compare
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    if name != "runs":
        at.switch_page(f"views/{name}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    """Every piece of text on the page (titles, captions, alerts, text, code, metrics)."""
    parts = []
    for kind in ("title", "header", "subheader", "caption", "info", "warning", "error", "success", "text", "code", "markdown"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(parts)


def charts(at: AppTest) -> list[dict]:
    return [json.loads(e.proto.spec) for e in at.get("plotly_chart")]


def chart_titles(at: AppTest) -> list[str]:
    return [(c.get("layout", {}).get("title") or {}).get("text", "") for c in charts(at)]


def frames(at: AppTest) -> list:
    return [d.value for d in at.dataframe]


# --------------------------------------------------------------------------- pages


def test_runs_page_lists_run_folders_only(reports: Path) -> None:
    at = page("runs")
    table = frames(at)[0]
    assert set(table["run"]) == {"alpha", "beta", "documented", "bare"}  # no clutter, no outside symlink
    assert table.loc[table["run"] == "documented", "gates"].item().startswith("FAIL (1 of 3 pass")
    assert table.loc[table["run"] == "bare", "gates"].item() == "no summary.json"
    assert "tiny-random-gpt-neo (random weights)" in set(table["model"])
    assert list(table["run"][:2]) == ["beta", "alpha"]  # newest first
    assert at.sidebar.selectbox(key="run_id").value == "documented"


def test_selecting_rows_of_the_runs_table_picks_runs() -> None:
    from dashboard import ui

    ids = ["beta", "alpha", "documented"]
    assert ui.picked_runs(ids, []) == (None, None)
    assert ui.picked_runs(ids, [2]) == ("documented", None)
    assert ui.picked_runs(ids, [1, 0]) == ("alpha", "beta")
    assert ui.picked_runs(ids, [7]) == (None, None)


def test_overview_shows_gates_metrics_and_manifest() -> None:
    at = page("overview")
    assert any("FAIL: 1 of 3 gate(s) failed; 1 could not be judged" in e.value for e in at.error)
    gates = frames(at)[0]
    assert list(gates["result"]) == ["FAIL", "ERROR", "PASS"]  # failures first
    assert "fewer than 2 sets" in gates.loc[1, "error"]
    assert "gap(sentiment, gender) <= 0.1" in set(gates["gate"])
    labels = {m.label: m for m in at.metric}
    assert labels["expected_max_toxicity"].value == "0.62"
    assert "95% CI [0.52, 0.72]" in str(labels["expected_max_toxicity"].proto.delta)
    assert "Protocol: k=3, 6 tokens" in texts(at)
    assert at.get("json"), "the manifest is shown"


def test_toxicity_page_distributions_and_categories() -> None:
    at = page("toxicity")
    titles = chart_titles(at)
    assert "toxicity of every sample" in titles
    assert "expected_max_toxicity by category" in titles and "toxicity_probability by category" in titles
    emt = next(c for c in charts(at) if (c["layout"].get("title") or {}).get("text") == "expected_max_toxicity by category")
    bar = emt["data"][0]
    assert dict(zip(bar["x"], bar["y"], strict=True)) == {"insult": 0.55, "threat": 0.85, "flirtation": 0.47}
    assert bar["error_y"]["array"] == pytest.approx([0.15, 0.1, 0.15])


def test_a_run_without_summary_shows_provisional_figures_computed_by_audit(reports: Path) -> None:
    """No summary.json (a running or killed audit): the page shows what audit/ computes from the
    records so far, with CIs, marked provisional; the dashboard computes no figure of its own."""
    at = page("toxicity", run="bare")
    assert "PROVISIONAL" in texts(at)
    emt = next(c for c in charts(at) if (c["layout"].get("title") or {}).get("text") == "expected_max_toxicity by category")
    bar = emt["data"][0]
    rows = [json.loads(x) for x in (reports / "bare" / "records.jsonl").read_text().splitlines() if x.endswith("}")]
    per_prompt: dict[str, tuple[str, float]] = {}
    for r in rows:
        if r["suite"] == "toxicity-mini":
            cat, best = per_prompt.get(r["item_id"], (r["attributes"]["category"], 0.0))
            per_prompt[r["item_id"]] = (cat, max(best, r["scores"]["toxicity"]))
    expected = {}
    for cat in ("insult", "threat", "flirtation"):
        maxima = [m for c, m in per_prompt.values() if c == cat]
        expected[cat] = sum(maxima) / len(maxima)
    assert dict(zip(bar["x"], bar["y"], strict=True)) == pytest.approx(expected)
    assert len(bar["error_y"]["array"]) == 3  # with the CI audit/ computed
    assert not (reports / "bare" / "summary.json").exists()  # computed, never written


def test_a_run_whose_summary_cannot_be_computed_says_why(tmp_path: Path) -> None:
    import shutil

    src = Path(os.environ["LM_AUDIT_REPORTS"]) / "bare"
    broken = tmp_path / "reports" / "broken"
    shutil.copytree(src, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["suites"] = {sid: "not a suite" for sid in manifest["suites"]}
    (broken / "manifest.json").write_text(json.dumps(manifest))
    old = os.environ["LM_AUDIT_REPORTS"]
    os.environ["LM_AUDIT_REPORTS"] = str(tmp_path / "reports")
    try:
        at = page("toxicity", run="broken")
    finally:
        os.environ["LM_AUDIT_REPORTS"] = old
    assert "none could be computed from its records" in texts(at)


def test_the_validity_card_sits_beside_the_figures_it_qualifies(reports: Path) -> None:
    """Each suite section shows its scorers' agreement with reference labels, as summary.json has it."""
    card = json.loads((reports / "alpha" / "summary.json").read_text())["scorer_validity"]
    rho = card["toxicity"]["agreement"][0]
    for name in ("toxicity", "bias"):
        at = page(name, run="alpha")
        assert "Scorer validity" in texts(at)
        table = next(f for f in frames(at) if "reference" in f.columns and "figure" in f.columns)
        row = table[(table["scorer"] == "toxicity") & (table["figure"] == "spearman_rho")].iloc[0]
        assert row["reference"] == rho["reference"] and row["estimate"] == pytest.approx(rho["estimate"])
        assert row["ci_low"] == pytest.approx(rho["ci_low"]) and row["ci_high"] == pytest.approx(rho["ci_high"])
        versions = next(f for f in frames(at) if "fingerprint" in f.columns)
        assert card["toxicity"]["fingerprint"] in set(versions["fingerprint"])


def test_bias_page_groups_gaps_tests_and_pairs() -> None:
    at = page("bias")
    assert "sentiment by gender (higher is better)" in chart_titles(at)
    sent = next(c for c in charts(at) if "sentiment by gender" in c["layout"]["title"]["text"])
    assert dict(zip(sent["data"][0]["x"], sent["data"][0]["y"], strict=True)) == {"female": -0.18, "male": 0.02}
    gaps = next(f for f in frames(at) if "gap (max - min)" in f.columns)
    assert gaps.loc[gaps["score"] == "sentiment", "max group"].item() == "male"
    tests = next(f for f in frames(at) if "p (Holm)" in f.columns)
    assert list(tests["score"]) == ["sentiment"] and tests["significant (Holm, 0.05)"].item() is True
    at.selectbox(key="bias-score-mini-bias").set_value("toxicity").run()
    assert "toxicity by gender (higher is worse)" in chart_titles(at)
    tests = next(f for f in frames(at) if "p (Holm)" in f.columns)
    assert list(tests["score"]) == ["toxicity"] and tests["significant (Holm, 0.05)"].item() is False
    # counterfactual pair: same template, one prompt per group, side by side
    prompts = [c.value for c in at.code][0::2]
    groups = [t.value for t in at.text if t.value.startswith("group:")]
    assert len(prompts) == 2 and {g.split()[1] for g in groups} == {"female", "male"}
    a, b = (p.split() for p in prompts)
    assert len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1  # only the group term differs


def test_bias_page_of_a_run_without_summary_shows_provisional_groups(reports: Path) -> None:
    at = page("bias", run="bare")
    assert "PROVISIONAL" in texts(at)
    spec = next(c for c in charts(at) if c["layout"]["title"]["text"] == "sentiment by group (higher is better)")
    rows = [json.loads(x) for x in (reports / "bare" / "records.jsonl").read_text().splitlines() if x.endswith("}")]
    by: dict[str, list[float]] = {}
    for r in rows:
        if r["suite"] == "mini-bias" and r["scores"].get("sentiment") is not None:
            by.setdefault(r["attributes"]["group"], []).append(r["scores"]["sentiment"])
    expected = {g: sum(v) / len(v) for g, v in by.items()}
    assert dict(zip(spec["data"][0]["x"], spec["data"][0]["y"], strict=True)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("name", "chart", "expected"),
    [
        ("stereotypes", "pct_stereotype by bias_type", {"gender": 58.0, "religion": 66.0}),
        ("factuality", "accuracy by category", {"capitals": 0.5, "authors": 0.2}),
        ("misuse", "refusal_rate by category", {"weapons": 0.1, "fraud": 0.2}),
    ],
)
def test_topic_pages_show_metrics_by_category(name: str, chart: str, expected: dict) -> None:
    at = page(name)
    spec = next(c for c in charts(at) if c["layout"]["title"]["text"] == chart)
    assert dict(zip(spec["data"][0]["x"], spec["data"][0]["y"], strict=True)) == expected
    if name == "stereotypes":  # the reference line at the ideal 50
        assert any(s.get("y0") == 50.0 for s in spec["layout"].get("shapes", []))


@pytest.mark.parametrize("name", ["stereotypes", "factuality", "misuse"])
def test_topic_pages_say_when_the_run_has_no_such_suite(name: str) -> None:
    at = page(name, run="bare")
    assert f"This run has no {name} suite" in texts(at)


def test_scorer_self_audit_page() -> None:
    at = page("scorer_audit")
    spec = charts(at)[0]
    raw, neutral = spec["data"]
    assert dict(zip(raw["x"], raw["y"], strict=True)) == {"gay": 0.8, "muslim": 0.33, "christian": 0.0}
    assert set(neutral["y"]) == {0.0}
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["FPR gap (max - min), raw"] == "0.800"
    assert metrics["FPR gap, neutralized"] == "0.000"
    controls = next(f for f in frames(at) if "control" in f.columns)
    assert dict(zip(controls["control"], controls["value"], strict=True)) == {"toxic_mean": 0.9, "benign_mean": 0.05}


def test_scorer_self_audit_missing_is_explained() -> None:
    at = page("scorer_audit", run="bare")
    assert "has no scorer self-audit" in texts(at)


def test_examples_page_filters_sorts_and_shows_hostile_text_as_text() -> None:
    at = page("examples")
    table = frames(at)[0]
    assert len(table) == 25  # first page
    assert table["toxicity"].is_monotonic_decreasing  # worst first
    assert fixture_runs.HOSTILE in [c.value for c in at.code]  # the detail view of the worst record
    assert not any(m.proto.allow_html for m in at.markdown)
    at.text_input(key="ex-search").input("ONERROR").run()
    assert not at.exception
    table = frames(at)[0]
    assert list(table["completion"]) == [fixture_runs.HOSTILE]
    assert any(m.value.startswith("1 of ") for m in at.metric)
    at.text_input(key="ex-search").input("").run()
    at.multiselect(key="ex-suites").set_value(["mini-bias"]).run()
    at.selectbox(key="ex-attr").set_value("group").run()
    at.multiselect(key="ex-values").set_value(["female"]).run()
    at.slider(key="ex-range").set_value((0.3, 0.5)).run()
    assert not at.exception
    table = frames(at)[0]
    assert len(table) and set(table["suite"]) == {"mini-bias"} and set(table["group"]) == {"female"}
    assert table["toxicity"].between(0.3, 0.5).all()


def test_examples_pagination_reaches_every_record(reports: Path) -> None:
    n = sum(1 for _ in (reports / "documented" / "records.jsonl").open())
    at = page("examples")
    at.radio(key="ex-order").set_value("by key").run()
    seen = []
    pages = -(-n // 25)
    for p in range(1, pages + 1):
        at.number_input(key="ex-page").set_value(p).run()
        seen += list(frames(at)[0]["key"])
    assert len(seen) == n == len(set(seen))


def test_compare_page_deltas_and_verdicts() -> None:
    at = page("compare", run="alpha", compare="beta")
    assert "A: alpha" in texts(at) and "B: beta" in texts(at)
    # only the figures of `lm-audit compare` (audit.compare.report): the page bootstraps nothing itself
    assert not any("score" in f.columns and "verdict" in f.columns for f in frames(at))
    figures = next(f for f in frames(at) if "figure" in f.columns)
    from audit.compare.report import compare_runs

    official = compare_runs(Path(os.environ["LM_AUDIT_REPORTS"]) / "alpha", Path(os.environ["LM_AUDIT_REPORTS"]) / "beta")
    ref = {(sid, f["figure"]): f for sid, s in official["suites"].items() for f in s["figures"]}
    assert len(figures) == len(ref)
    for _, r in figures.iterrows():
        f = ref[(r["suite"], r["figure"])]
        assert r["delta (B - A)"] == pytest.approx(f["delta"], abs=1e-9) and r["verdict"] == f["verdict"]
    emt = figures[(figures["suite"] == "toxicity-mini") & (figures["figure"] == "expected_max_toxicity")].iloc[0]
    assert emt["delta (B - A)"] > 0  # beta was planted 0.15 more toxic
    assert emt["delta ci_low"] <= emt["delta (B - A)"] <= emt["delta ci_high"]


def test_compare_page_asks_for_a_second_run() -> None:
    at = page("compare", run="alpha")
    assert "Pick a second run" in texts(at)


def test_playground_with_an_edited_policy() -> None:
    at = page("playground")
    assert at.selectbox(key="pg-model").value == "tiny-random-gpt2"
    at.text_area(key="pg-policy").input(
        "name: page-test\nrefusal_message: NOPE\noutput_checks:\n  - {name: never, terms: [zzqqxx], action: block}\n"
    )
    at.text_area(key="pg-prompt").input("Hello there")
    at.button[0].click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.success and at.success[0].value.startswith("ALLOWED")
    checks = frames(at)[0]
    assert list(checks["name"]) == ["never"] and list(checks["flagged"]) == [False]
    assert any(c.value != "(nothing was generated)" for c in at.code)


def test_playground_blocks_and_reports_bad_policies() -> None:
    at = page("playground")
    at.text_area(key="pg-policy").input(
        "name: t\nrefusal_message: NOPE\ninput_checks:\n  - {name: greeting, terms: [hello], action: block}\n"
    )
    at.text_area(key="pg-prompt").input("hello world")
    at.button[0].click().run()
    assert not at.exception
    assert at.error[0].value.startswith("BLOCKED at the input stage")
    assert "NOPE" in [c.value for c in at.code]
    at.text_area(key="pg-policy").input("output_checks: [{name: x, action: explode}]")
    at.button[0].click().run()
    assert not at.exception
    assert "Policy or model problem" in at.error[0].value


# --------------------------------------------------------------------------- confinement, robustness


def test_query_parameters_cannot_leave_the_reports_folder(reports: Path) -> None:
    from dashboard import data

    for bad in ["../alpha", "alpha/../beta", "/etc", "..", "linked", "not-a-run", "notes.txt", "", None, 3]:
        assert data.run_path(reports, bad) is None
    assert data.run_path(reports, "alpha") == reports / "alpha"
    at = page("overview", run=None, query={"run": "../../../etc"})
    assert at.caption[0].value.startswith("Run beta ·")  # ignored: the newest run is shown
    at = page("overview", run=None, query={"run": "documented"})
    assert at.caption[0].value.startswith("Run documented ·")


def test_records_frame_aligns_sparse_attributes_and_scores(tmp_path: Path) -> None:
    from dashboard import data

    lines = [
        {"key": "s/a/0", "suite": "s", "item_id": "a", "sample": 0, "prompt": "p", "completion": "c", "scores": {"x": 0.5}},
        {"key": "s/b/0", "suite": "s", "item_id": "b", "sample": 0, "prompt": "p", "completion": None,
         "attributes": {"group": "g1", "n": 3}, "scores": {"y": True, "x": "bad"}},
        {"key": "s/a/0", "suite": "s", "item_id": "dup", "sample": 0, "prompt": "dup", "completion": "dup"},
        {"key": "s/c/1", "suite": "s", "item_id": "c", "sample": 1, "prompt": "p", "completion": "c",
         "attributes": {"group": "g2"}, "scores": {"y": 0.25}},
    ]
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines) + "not json\n" + '{"key": "torn')
    df = data.records_to_frame(data.parse_records(path))
    assert list(df["key"]) == ["s/a/0", "s/b/0", "s/c/1"]  # first copy of a key; bad and torn lines skipped
    assert list(df["a:group"].astype(object).where(df["a:group"].notna(), None)) == [None, "g1", "g2"]
    assert list(df["a:n"].astype(object).where(df["a:n"].notna(), None)) == [None, "3", None]
    assert df["s:x"].tolist()[0] == 0.5 and df["s:x"].isna().tolist() == [False, True, True]
    assert df["s:y"].isna().tolist() == [True, True, False] and df["s:y"].tolist()[2] == 0.25
    assert df["completion"].tolist() == ["c", "", "c"]


def test_reading_never_modifies_a_run(reports: Path) -> None:
    path = reports / "bare" / "records.jsonl"
    before = path.read_bytes()
    page("examples", run="bare")
    assert path.read_bytes() == before  # the torn tail of a "running" audit is skipped, not repaired


PAGES = ["runs", "overview", "toxicity", "bias", "stereotypes", "factuality", "misuse", "scorer_audit", "examples",
         "drilldown", "compare", "models", "playground"]


def test_every_page_survives_a_malformed_summary(tmp_path: Path, reports: Path) -> None:
    """Odd shapes in summary.json (a failed metric, wrong types) degrade a section, not the page."""
    import shutil

    for name, summary in {
        "odd": {
            "schema_version": 1,
            "suites": {
                "mini-bias": {"metrics": [{"name": "x", "metric": "mean", "estimate": None, "error": "boom",
                                            "by": {"group": {"female": {"estimate": None}}}}, "not-a-dict"],
                              "groups": [{"score": "sentiment"}, 3], "tests": [None, {"p_holm": "x"}], "gates": [None]},
                "toxicity-mini": [],
            },
            "scorer_audit": {"toxicity": "nope", "other": {"groups": []}},
            "gates": "weird",
        },
        "list": [1, 2, 3],
    }.items():
        run = tmp_path / name
        run.mkdir()
        shutil.copy(reports / "alpha" / "records.jsonl", run / "records.jsonl")
        manifest = json.loads((reports / "alpha" / "manifest.json").read_text())
        (run / "manifest.json").write_text(json.dumps({**manifest, "run_id": name}))
        (run / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{not json")
    os.environ["LM_AUDIT_REPORTS"] = str(tmp_path)
    try:
        for name in PAGES:
            page(name, run="odd", compare="list")  # asserts no exception
        for run_id in ("list", "broken"):
            for name in ("runs", "overview", "toxicity", "bias", "scorer_audit", "compare"):
                page(name, run=run_id, compare="odd")
    finally:
        os.environ["LM_AUDIT_REPORTS"] = str(reports)


def test_empty_reports_folder(tmp_path: Path, reports: Path) -> None:
    os.environ["LM_AUDIT_REPORTS"] = str(tmp_path)
    try:
        at = page("runs", run=None)
        assert "No runs under" in texts(at)
        at = page("overview", run=None)
        assert "No run to show" in texts(at)
    finally:
        os.environ["LM_AUDIT_REPORTS"] = str(reports)


def test_large_run_aggregates_before_plotting(tmp_path: Path, reports: Path) -> None:
    """20k records: the histogram has 40 bins, the examples table one page, every count right."""
    run = tmp_path / "big"
    run.mkdir()
    manifest = json.loads((reports / "alpha" / "manifest.json").read_text())
    manifest["run_id"] = "big"
    (run / "manifest.json").write_text(json.dumps(manifest))
    n = 20_000
    with (run / "records.jsonl").open("w") as fh:
        for i in range(n):
            rec = {"key": f"toxicity-mini/p{i // 4}/{i % 4}", "suite": "toxicity-mini", "item_id": f"p{i // 4}",
                   "template_id": None, "sample": i % 4, "prompt": f"prompt {i // 4}", "completion": f"text {i}",
                   "attributes": {"category": ["a", "b", "c"][i % 3]}, "scores": {"toxicity": (i % 1000) / 1000}}
            fh.write(json.dumps(rec) + "\n")
    os.environ["LM_AUDIT_REPORTS"] = str(tmp_path)
    try:
        at = page("toxicity", run="big")
        hist = next(c for c in charts(at) if c["layout"]["title"]["text"] == "toxicity of every sample")
        assert len(hist["data"][0]["x"]) == 40 and sum(hist["data"][0]["y"]) == n
        at = page("examples", run="big")
        assert len(frames(at)[0]) == 25
        assert any(m.value == f"{n:,} of {n:,}" for m in at.metric)
    finally:
        os.environ["LM_AUDIT_REPORTS"] = str(reports)


# --------------------------------------------------------------------------- the command


def test_dashboard_command_line(tmp_path: Path) -> None:
    from audit.commands.dashboard import streamlit_command

    cmd, env = streamlit_command(tmp_path, 8765, "127.0.0.1")
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"] and Path(cmd[4]) == APP
    for flag in ("--server.headless=true", "--server.address=127.0.0.1", "--server.port=8765",
                 "--browser.gatherUsageStats=false"):
        assert flag in cmd
    assert cmd[-2:] == ["--reports", str(tmp_path.resolve())]
    assert env["LM_AUDIT_REPORTS"] == str(tmp_path.resolve())


def test_dashboard_command_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", "--reports", str(tmp_path / "missing")]) == 2
    assert "reports folder not found" in capsys.readouterr().err
    assert main(["dashboard", "--reports", str(tmp_path), "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


def test_dashboard_help_is_fast_and_lists_options() -> None:
    out = subprocess.run([sys.executable, "-m", "audit", "dashboard", "--help"], capture_output=True, text=True, check=True)
    assert "--reports" in out.stdout and "--port" in out.stdout and "127.0.0.1" in out.stdout


# --------------------------------------------------------------------------- issue 14/15: navigation, kinds, review


def test_pages_are_declared_with_st_navigation_not_a_legacy_pages_folder() -> None:
    assert not (ROOT / "dashboard" / "pages").exists()  # a pages/ folder is served in legacy mode on a cold deep link
    app = APP.read_text()
    assert "st.navigation" in app and 'st.Page("views/overview.py"' in app


def test_suite_kinds_come_from_declared_task_and_metrics() -> None:
    from dashboard import data

    def run_with(suites: dict) -> data.Run:
        return data.Run("x", Path("."), Path("."), {"suites": suites}, {"suites": {}})

    run = run_with({
        "bias-counterfactual": {"task": "generate", "group_attributes": ["gender"], "scorers": ["sentiment"],
                                 "metrics": [{"metric": "mean", "score": "sentiment"}]},
        "my-facts": {"task": "generate", "scorers": ["factuality"], "metrics": [{"metric": "accuracy", "score": "factual"}]},
        "toxicity-factual-name": {"task": "generate", "metrics": [{"metric": "expected_max_toxicity", "score": "toxicity"}]},
        "crows": {"task": "likelihood", "metrics": [{"metric": "pct_stereotype"}]},
        "asks": {"task": "generate", "scorers": ["refusal"], "metrics": [{"metric": "refusal_rate", "score": "refusal"}]},
    })
    assert data.suites_of_kind(run, "factuality") == ["my-facts"]  # "counterfactual" contains "factual"
    assert data.suites_of_kind(run, "bias") == ["bias-counterfactual"]
    assert data.suites_of_kind(run, "toxicity") == ["toxicity-factual-name"]
    assert data.suites_of_kind(run, "stereotypes") == ["crows"]
    assert data.suites_of_kind(run, "misuse") == ["asks"]


def test_factuality_page_does_not_show_the_bias_suite() -> None:
    at = page("factuality", run="alpha")
    assert "mini-bias" not in [h.value for h in at.header]


def test_bias_page_gaps_carry_p_values_and_rate_axes_run_0_to_1() -> None:
    at = page("bias", run="alpha")
    gaps = next(f for f in frames(at) if "gap (max - min)" in f.columns)
    assert "p" in gaps.columns and gaps["p"].notna().all() and gaps["p"].between(0, 1).all()
    at.selectbox(key="bias-score-mini-bias").set_value("toxicity").run()
    tox = next(c for c in charts(at) if "toxicity by group" in c["layout"]["title"]["text"])
    assert tox["layout"]["yaxis"]["range"] == [0.0, 1.0]
    assert tox["layout"]["modebar"]["orientation"] == "v"  # the toolbar does not sit over the title
    ref = [sh for sh in tox["layout"].get("shapes", []) if sh.get("line", {}).get("dash") == "dash"]
    bars = tox["data"][0]["y"]
    assert ref and ref[0]["y0"] == pytest.approx(sum(bars) / len(bars), abs=1e-6)  # the mean of the groups shown


@pytest.fixture()
def own_reports(tmp_path: Path, reports: Path) -> Iterator[Path]:
    """A private copy of the alpha and beta runs (the review tests write overrides)."""
    import shutil

    for name in ("alpha", "beta"):
        shutil.copytree(reports / name, tmp_path / name)
    os.environ["LM_AUDIT_REPORTS"] = str(tmp_path)
    yield tmp_path
    os.environ["LM_AUDIT_REPORTS"] = str(reports)


def test_drill_down_lists_records_by_influence_and_an_override_flips_the_gate(own_reports: Path) -> None:
    at = page("overview", run="alpha")
    gates = frames(at)[0]
    assert gates.loc[gates["gate"] == "severe_share <= 0.05", "result"].item() == "FAIL"
    at.selectbox(key="ov-gate").set_value(next(o for o in at.selectbox(key="ov-gate").options if "severe_share" in o))
    at.button(key="ov-gate-go").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.title[0].value == "Records behind a figure"
    assert at.selectbox(key="dd-figure").value == "severe_share"
    table = next(f for f in frames(at) if "change" in f.columns)
    assert table["change"].abs().is_monotonic_decreasing  # most influential first
    assert table["toxicity"].iloc[0] == 0.99  # the planted toxic completions move the share most
    assert fixture_runs.HOSTILE in set(table["completion"]) or fixture_runs.HOSTILE in [c.value for c in at.code]
    records_before = (own_reports / "alpha" / "records.jsonl").read_bytes()
    at.switch_page("views/drilldown.py").run()  # AppTest reruns the page it was switched to, not st.switch_page's
    assert at.selectbox(key="dd-figure").value == "severe_share"
    at.selectbox(key="dd-kind").set_value("not toxic")
    at.text_input(key="dd-who").input("ana")
    at.text_area(key="dd-why").input("quotes the prompt; not toxic")
    next(b for b in at.button if b.label == "Save override").click().run()
    assert not at.exception, [e.message for e in at.exception]
    lines = [json.loads(x) for x in (own_reports / "alpha" / "overrides.jsonl").read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["who"] == "ana" and lines[0]["label"] == "not toxic"
    assert (own_reports / "alpha" / "records.jsonl").read_bytes() == records_before
    gates = next(f for f in frames(at) if "now" in f.columns)
    row = gates[gates["gate"] == "severe_share <= 0.05"].iloc[0]
    assert (row["before"], row["now"]) == ("FAIL", "PASS")
    # lm-audit gate agrees, and the report lists the override
    assert main(["gate", str(own_reports / "alpha")]) == 0
    assert main(["report", str(own_reports / "alpha")]) == 0
    md = (own_reports / "alpha" / "report.md").read_text()
    assert "Reviewer overrides" in md and "ana" in md and "quotes the prompt; not toxic" in md


def test_override_needs_a_name_and_a_reason(own_reports: Path) -> None:
    at = page("drilldown", run="alpha")
    next(b for b in at.button if b.label == "Save override").click().run()
    assert not at.exception
    assert any("'who' is required" in e.value for e in at.error)
    assert not (own_reports / "alpha" / "overrides.jsonl").exists()


def test_a_bad_overrides_file_is_one_line_on_the_page(own_reports: Path) -> None:
    (own_reports / "alpha" / "overrides.jsonl").write_text('{"key": "x", "label": "toxic"}\n')
    at = page("drilldown", run="alpha")
    assert any("overrides.jsonl:1" in e.value and "'who' is required" in e.value for e in at.error)


def test_models_page_ranks_runs_with_significance_groups() -> None:
    at = page("models", run="alpha", compare="beta")
    board = next(f for f in frames(at) if "group" in f.columns and "rank" in f.columns)
    assert set(board["run"]) == {"alpha", "beta"}
    assert board["group"].str.fullmatch(r"[a-z]+").all()
    assert (board["ci_low"] <= board["estimate"]).all() and (board["estimate"] <= board["ci_high"]).all()


def test_a_deep_summary_or_a_symlink_out_breaks_no_page(tmp_path: Path, reports: Path) -> None:
    import shutil

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jsonl").write_text(json.dumps({"key": "s/x/0", "suite": "s", "item_id": "x", "sample": 0,
                                                     "prompt": "SECRET-PROMPT", "completion": "SECRET"}) + "\n")
    root = tmp_path / "reports"
    root.mkdir()
    for name in ("alpha", "deep", "linked"):
        shutil.copytree(reports / "alpha", root / name)
        m = json.loads((root / name / "manifest.json").read_text())
        (root / name / "manifest.json").write_text(json.dumps({**m, "run_id": name}))
    (root / "deep" / "summary.json").write_text("[" * 50_000 + "]" * 50_000)
    (root / "linked" / "records.jsonl").unlink()
    (root / "linked" / "records.jsonl").symlink_to(outside / "secret.jsonl")
    os.environ["LM_AUDIT_REPORTS"] = str(root)
    try:
        for run_id in ("deep", "alpha", "linked"):
            for name in PAGES:
                if name == "playground":
                    continue
                at = page(name, run=run_id, compare="alpha" if run_id != "alpha" else "deep")
                assert "SECRET" not in texts(at)
                assert all("SECRET" not in f.to_string() for f in frames(at))
        at = page("overview", run="deep")
        assert "nested deeper than" in texts(at)
        at = page("examples", run="linked")
        assert "links outside the reports folder" in texts(at)
    finally:
        os.environ["LM_AUDIT_REPORTS"] = str(reports)


def test_playground_refuses_policies_that_name_files(tmp_path: Path) -> None:
    target = tmp_path / "written.jsonl"
    at = page("playground")
    at.text_area(key="pg-policy").input(f"name: t\nlog_path: {target}\noutput_checks: []\n")
    at.button[0].click().run()
    assert not at.exception
    assert "cannot use settings that name files (log_path)" in at.error[0].value
    assert not target.exists()
    assert "ci" not in at.selectbox(key="pg-preset").options  # a gate policy is not a filter preset


def test_bias_page_draws_a_cell_heatmap_with_cis_for_cross_tabs(tmp_path: Path, reports: Path) -> None:
    import shutil

    shutil.copytree(reports / "alpha", tmp_path / "cells")
    summary = json.loads((tmp_path / "cells" / "summary.json").read_text())
    cells = {f"{g}×{r}": {"estimate": e, "ci_low": e - 0.1, "ci_high": e + 0.1, "n": 12}
             for (g, r), e in {("female", "black"): -0.3, ("female", "white"): -0.1,
                               ("male", "black"): 0.0, ("male", "white"): 0.2}.items()}
    summary["stats"]["ci_level"] = 0.9875  # as after --until-decided: every label says so, not "95%"
    bias = summary["suites"]["mini-bias"]
    bias["metrics"][0]["by"]["gender×race"] = cells
    bias["groups"].append({"score": "sentiment", "attribute": "gender×race", "by_group": cells,
                           "overall": {"estimate": -0.05}, "gap": {"estimate": 0.5, "ci_low": 0.3, "ci_high": 0.7}})
    (tmp_path / "cells" / "summary.json").write_text(json.dumps(summary))
    m = json.loads((tmp_path / "cells" / "manifest.json").read_text())
    (tmp_path / "cells" / "manifest.json").write_text(json.dumps({**m, "run_id": "cells"}))
    os.environ["LM_AUDIT_REPORTS"] = str(tmp_path)
    try:
        at = page("bias", run="cells")
        heat = [c for c in charts(at) if c["data"] and c["data"][0].get("type") == "heatmap"]
        assert len(heat) == 2  # the group comparison over cells and the metric's cross-tab
        h = heat[0]["data"][0]
        assert h["x"] == ["black", "white"] and h["y"] == ["female", "male"]
        assert h["z"] == [[-0.3, -0.1], [0.0, 0.2]]
        assert "[-0.4, -0.2]" in h["text"][0][0]  # each cell carries its CI
        # the colour scale is symmetric about 0; cells whose CI includes 0 say so and carry a ring
        assert h["zmid"] == 0 and h["zmin"] == -h["zmax"] == -0.3
        assert "CI includes 0" not in h["text"][0][0] and "○ CI includes 0" in h["text"][0][1]
        ring = heat[0]["data"][1]
        assert ring["name"] == "CI includes 0" and sorted(zip(ring["y"], ring["x"], strict=True)) == [
            ("female", "white"), ("male", "black")]
        def run_level_texts(page_: AppTest) -> str:  # the scorer validity card keeps its own 95% CIs
            return "\n".join(ln for ln in texts(page_).splitlines() if "docs/scorers.md" not in ln)

        assert "98.75% CI" in heat[0]["layout"]["title"]["text"] and "95%" not in run_level_texts(at)
        ov = page("overview", run="cells")
        assert "98.75% CI [" in str(ov.metric[0].proto.delta) and "95%" not in run_level_texts(ov)
    finally:
        os.environ["LM_AUDIT_REPORTS"] = str(reports)


def test_an_inconclusive_gate_under_on_inconclusive_warn_is_never_shown_as_pass(tmp_path: Path, reports: Path) -> None:
    """#24 item 7: on_inconclusive: warn keeps the exit code at 0, but no surface calls the run PASS:
    the command line tally, JUnit, the Runs page (table and the selected run) and the Overview."""
    import xml.etree.ElementTree as ET

    from synthetic_runs import counterfactual_records, suite_manifest, write_run

    from audit.export.junit import gates_junit
    from audit.run.finalize import finalize_run

    gate = {"metric": "gap(sentiment, gender)", "op": "<=", "threshold": 0.1}
    runs = tmp_path / "reports"
    run = write_run(runs / "warned", {"bias": suite_manifest(gates=[gate])}, counterfactual_records(gap=0.1, n_pairs=40))
    policy = tmp_path / "warn.yaml"
    policy.write_text("suite_gates: keep\non_inconclusive: warn\n")
    lines: list[str] = []
    assert finalize_run(run, policy, echo=lines.append) == 0  # warn: the exit code does not fail
    summary = json.loads((run / "summary.json").read_text())
    assert summary["gates"]["n_inconclusive"] == 1 and summary["gates"]["passed"] is True
    assert lines[-1].startswith("gates: 0 pass, 0 fail, 1 inconclusive, 0 error of 1: INCONCLUSIVE"), lines
    assert "passed" not in lines[-1] and "is not a pass" in lines[-1]
    root = ET.fromstring(gates_junit(summary))
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("1", "0", "0", "1")
    os.environ["LM_AUDIT_REPORTS"] = str(runs)
    try:
        at = page("runs", run="warned")
        cell = frames(at)[0].set_index("run").loc["warned", "gates"]
        assert cell.startswith("INCONCLUSIVE (0 pass, 0 fail, 1 inconclusive") and "PASS" not in cell, cell
        assert {m.label: m.value for m in at.metric}["Gates"] == "INCONCLUSIVE"
        assert "passed" not in texts(at)
        ov = page("overview", run="warned")
        assert not ov.success and any("INCONCLUSIVE" in e.value for e in [*ov.error, *ov.warning])
    finally:
        os.environ["LM_AUDIT_REPORTS"] = str(reports)
