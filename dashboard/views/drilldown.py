"""Records behind a figure: the records that move it most (leave-one-out, from audit.review.influence),
each with completion, scores and attributes; a reviewer's override of one record; and the run's
gates recomputed with every override."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, review, ui

run = ui.current_run()
ui.run_header(run, "Records behind a figure")
st.write(
    "The records a figure is computed from, the most influential first: *change* is how much the "
    "figure would move if that record were left out. Correct a record the scorer got wrong with an "
    "override: it is appended to the run's `overrides.jsonl` with your name and reason (records.jsonl "
    "is never edited), and every figure and gate is recomputed with it, as `lm-audit report` and "
    "`lm-audit gate` do."
)
suites = [s for s in run.suite_ids if review.figures_of(run, s)]
if not suites:
    ui.missing("This run's summary.json has no figures to drill into.", "Rebuild it with `lm-audit report <run folder>`.")
    st.stop()
want_suite = st.session_state.get(ui.DRILL_SUITE)
suite = st.selectbox("Suite", suites, index=suites.index(want_suite) if want_suite in suites else 0, key="dd-suite")
figures = review.figures_of(run, suite)
want = st.session_state.get(ui.DRILL_FIGURE)
if want and want not in figures and suite == want_suite:
    figures = [want, *figures]
figure = st.selectbox("Figure", figures, index=figures.index(want) if want in figures else 0, key="dd-figure")
st.session_state[ui.DRILL_SUITE], st.session_state[ui.DRILL_FIGURE] = suite, figure
st.query_params.update({"suite": suite, "figure": figure})

lines, problem = review.overrides(run)
if problem:
    st.error(f"The overrides of this run cannot be read: {problem}")
    st.stop()
result, why = review.drill(run, suite, figure)
if result is None:
    ui.missing(f"Cannot list the records behind {figure}:", why)
    st.stop()
st.text(f"figure: {figure}   suite: {suite}")
c1, c2, c3 = st.columns(3)
c1.metric("Figure (with overrides)", "n/a" if result["estimate"] is None else f"{result['estimate']:.4g}")
c2.metric("Records behind it", f"{result['n_records']:,}")
c3.metric("Prompts / sets", f"{result['n_clusters']:,}")
st.caption(result["method"])

rows = pd.DataFrame(result["records"])
df = run.records
if rows.empty or df.empty:
    ui.missing("No record contributes to this figure.")
    st.stop()
scores = data.score_columns(df[df["suite"] == suite])
attrs = [a for a in data.attr_columns(df) if a != "pair_id"]
merged = rows.merge(df, on="key", how="left")
view = pd.DataFrame(
    {
        "change": merged["change"],
        "without": merged["without"],
        **{s: merged[f"{data.SCORE}{s}"] for s in scores},
        **{a: merged[f"{data.ATTR}{a}"].astype("string") for a in attrs if merged[f"{data.ATTR}{a}"].notna().any()},
        "completion": merged["completion"],
        "prompt": merged["prompt"],
        "key": merged["key"],
    }
)
st.caption(f"The {min(len(view), 50)} most influential of {len(view)} records listed (scores as recorded; overrides are applied to the figure).")
ui.table(view.head(50))

st.subheader("One record")
keys = list(view["key"].head(200))
key = st.selectbox("Record", keys, key="dd-record", help="most influential first")
rec = merged[merged["key"] == key].iloc[0]
left, right = st.columns([2, 1])
with left:
    ui.text_block("prompt", str(rec["prompt"]))
    ui.text_block("completion", str(rec["completion"]))
with right:
    sc = {s: rec[f"{data.SCORE}{s}"] for s in scores if not pd.isna(rec[f"{data.SCORE}{s}"])}
    st.caption("scores (as recorded)")
    ui.table(pd.DataFrame({"score": list(sc), "value": list(sc.values())}))
    at = {a: rec[f"{data.ATTR}{a}"] for a in data.attr_columns(df) if not pd.isna(rec[f"{data.ATTR}{a}"])}
    st.caption("attributes")
    ui.table(pd.DataFrame({"attribute": list(at), "value": [str(v) for v in at.values()]}))
    st.text(f"key: {key}\nleaving it out moves the figure by {rec['change']:+.4g}" if pd.notna(rec["change"]) else f"key: {key}")

st.subheader("Override this record")
from audit.store.overrides import LABELS  # noqa: E402  (the labels audit understands)

SET_SCORE = "set a score"
with st.form("dd-override", clear_on_submit=False):
    o1, o2 = st.columns(2)
    kind = o1.selectbox("Correction", [*LABELS, SET_SCORE], key="dd-kind")
    score = o2.selectbox("Score (for 'set a score')", scores or ["(none)"], key="dd-score")
    value = o2.number_input("Value (for 'set a score')", value=0.0, step=0.05, format="%.3f", key="dd-value")
    who = o1.text_input("Your name", key="dd-who", max_chars=200)
    why_text = st.text_area("Why (kept with the override)", key="dd-why", max_chars=2000, height=80)
    save = st.form_submit_button("Save override", type="primary")
if save:
    if kind == SET_SCORE:
        problem = review.add_override(run, str(key), who=who, why=why_text, score=score, value=float(value))
    else:
        problem = review.add_override(run, str(key), who=who, why=why_text, label=kind)
    if problem:
        st.error(f"Override not saved: {problem}")
    else:
        st.session_state["dd-saved"] = f"Saved: {kind} on {key}, by {who.strip()}."
        st.rerun()
if st.session_state.get("dd-saved"):
    st.success(st.session_state.pop("dd-saved"))

st.header("Gates and figures with the overrides")
lines, _ = review.overrides(run)
if not lines:
    ui.missing("This run has no overrides yet.")
    st.stop()
summary, problem = review.recomputed(run)
if summary is None:
    st.error(problem)
    st.stop()
entries = summary.get("overrides") or []
ui.table(pd.DataFrame(
    [{"line": e.get("line"), "record": e.get("key"), "change": e.get("label") or f"{e.get('score')} = {e.get('value')}",
      "who": e.get("who"), "why": e.get("why"), "when": e.get("when"), "status": e.get("status")} for e in entries]
))
gate_rows = []
for sid, s in (summary.get("suites") or {}).items():
    for g in s.get("gates") or []:
        before = next((f["before"] for e in entries if e.get("suite") == sid for f in e.get("figures") or []
                       if f.get("gate") == f"{g.get('metric')} {g.get('op')} {g.get('threshold')}"), None)
        gate_rows.append({
            "suite": sid, "gate": f"{g.get('metric')} {g.get('op')} {g.get('threshold')}",
            "before": (before or {}).get("verdict") or data.verdict_of(g), "now": data.verdict_of(g),
            "estimate": g.get("estimate"), "ci_low": g.get("ci_low"), "ci_high": g.get("ci_high"),
        })
for g in gate_rows:
    if g["before"] != g["now"]:
        (st.success if g["now"] == "PASS" else st.error)(f"{g['suite']}: {g['gate']}: {g['before']} -> {g['now']} with the overrides")
st.subheader("Gates recomputed")
if gate_rows:
    ui.table(pd.DataFrame(gate_rows))
else:
    ui.missing("No gates in this run.")
changed = [f for e in entries for f in e.get("figures") or [] if not f.get("gate")]
if changed:
    with st.expander("figures that changed"):
        ui.table(pd.DataFrame([{"figure": f["figure"], "before": (f.get("before") or {}).get("estimate"),
                                "after": (f.get("after") or {}).get("estimate")} for f in changed]).drop_duplicates())
if st.button("Write summary.json and the reports with these overrides", key="dd-write"):
    problem = review.write_reports(run)
    (st.error if problem else st.success)(problem or "Wrote summary.json, report.md and report.html.")
