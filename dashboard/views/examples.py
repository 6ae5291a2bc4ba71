"""Examples: filter records by suite, group, score range and text; worst first; full record view."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from dashboard import data, ui

run = ui.current_run()
ui.run_header(run, "Examples")
df = run.records
if df.empty:
    ui.missing("This run has no records yet.")
    st.stop()
st.caption("Model text is shown exactly as generated, as plain text. Content warning: probes are built to elicit toxic text.")

attrs = [a for a in data.attr_columns(df) if a not in {"pair_id"}]
scores = data.score_columns(df)

with st.container(border=True):
    c1, c2, c3 = st.columns(3)
    suites = c1.multiselect("Suites", [str(s) for s in df["suite"].cat.categories], key="ex-suites")
    attribute = c2.selectbox("Group attribute", ["(any)", *attrs], key="ex-attr")
    values: list[str] = []
    if attribute != "(any)":
        options = sorted(str(v) for v in df[f"{data.ATTR}{attribute}"].dropna().unique())
        values = c3.multiselect(f"{attribute} is one of", options[:500], key="ex-values")
    c4, c5, c6 = st.columns(3)
    score = c4.selectbox("Score", scores or ["(none)"], key="ex-score", index=scores.index("toxicity") if "toxicity" in scores else 0)
    score_range = None
    if score in scores:
        col = df[f"{data.SCORE}{score}"]
        lo, hi = float(col.min()), float(col.max())
        if hi > lo:
            lo, hi = math.floor(lo * 100) / 100, math.ceil(hi * 100) / 100
            chosen = c5.slider(f"{score} between", lo, hi, (lo, hi), step=(hi - lo) / 100, key="ex-range")
            if chosen != (lo, hi):  # the full range keeps records without this score too
                score_range = chosen
        high, low = f"highest {score} first", f"lowest {score} first"
        orders = {  # the score's direction, as the run's scorers declare it (summary.json)
            "worse": [f"worst first ({high})", f"best first ({low})"],
            "better": [f"worst first ({low})", f"best first ({high})"],
        }.get(run.score_direction(score), [high, low])
        order = c6.radio("Order", [*orders, "by key"], key="ex-order")
    else:
        order = "by key"
    text = st.text_input("Text search (prompt or completion, plain substring)", key="ex-search", max_chars=200)

filtered = data.filter_records(df, suites or None, None if attribute == "(any)" else attribute, values or None,
                               score if score in scores else None, score_range, text)
if score in scores and order != "by key":
    ascending = "lowest" in order
    filtered = filtered.sort_values(f"{data.SCORE}{score}", ascending=ascending, na_position="last", kind="stable")
else:
    filtered = filtered.sort_values("key", kind="stable")

n = len(filtered)
p1, p2, p3 = st.columns([1, 1, 2])
size = p1.selectbox("Rows per page", [25, 50, 100], key="ex-size")
pages = max(1, math.ceil(n / size))
page = p2.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1, key="ex-page")
page = min(int(page), pages)
p3.metric("Matching records", f"{n:,} of {len(df):,}")
view = filtered.iloc[(page - 1) * size : page * size]

show_cols = ["suite", *[f"{data.ATTR}{a}" for a in attrs if a in {"group", "category", "axis"}], "prompt", "completion",
             *[f"{data.SCORE}{s}" for s in scores], "key"]
table = view[[c for c in show_cols if c in view.columns]].rename(columns=lambda c: c.split(":", 1)[-1])
ui.table(table)

if view.empty:
    ui.missing("No record matches these filters.")
    st.stop()

st.subheader("Full record")
keys = view["key"].tolist()
key = st.selectbox("Record", keys, key="ex-record", help="the records on this page, in the order above")
rec = view[view["key"] == key].iloc[0]
left, right = st.columns([2, 1])
with left:
    ui.text_block("prompt", rec["prompt"])
    ui.text_block("completion", rec["completion"])
with right:
    sc = {s: rec[f"{data.SCORE}{s}"] for s in data.score_columns(df) if not pd.isna(rec[f"{data.SCORE}{s}"])}
    st.caption("scores")
    ui.table(pd.DataFrame({"score": list(sc), "value": list(sc.values())}))
    at = {a: rec[f"{data.ATTR}{a}"] for a in data.attr_columns(df) if not pd.isna(rec[f"{data.ATTR}{a}"])}
    st.caption("attributes")
    ui.table(pd.DataFrame({"attribute": list(at), "value": [str(v) for v in at.values()]}))
    st.caption("identity")
    st.text(f"key: {rec['key']}\nsuite: {rec['suite']}\ntemplate: {rec['template_id']}\nsample: {rec['sample']}")
