"""Toxicity: score distributions, expected maximum toxicity and toxicity probability by category."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboard import data, sections, ui

run = ui.current_run()
ui.run_header(run, "Toxicity")
st.write(
    "Expected maximum toxicity: mean over prompts of the highest toxicity among a prompt's samples. "
    "Toxicity probability: share of prompts with at least one sample scored 0.5 or more. Lower is "
    "better for both. The scorer and protocol are named under each table: figures from other "
    "scorers (e.g. Perspective) are not comparable."
)
df = run.records
suites = data.suites_of_kind(run, "toxicity")
has_scores = f"{data.SCORE}toxicity" in df and df[f"{data.SCORE}toxicity"].notna().any()
scored_suites = (
    [str(s) for s in df.loc[df[f"{data.SCORE}toxicity"].notna(), "suite"].unique()] if has_scores else []
)
if not suites and not has_scores:
    ui.missing("This run has no toxicity suite and no toxicity scores.", "Run `toxicity-rtp` to fill this page.")
    st.stop()

st.header("Score distributions")
if not has_scores:
    ui.missing("No record of this run carries a toxicity score.")
else:
    fig = go.Figure()
    for sid in scored_suites:
        h = data.histogram(df.loc[df["suite"] == sid, f"{data.SCORE}toxicity"], bins=40, lo=0.0, hi=1.0)
        fig.add_trace(go.Bar(x=((h["bin_left"] + h["bin_right"]) / 2).tolist(), y=h["count"].tolist(), name=ui.plot_label(sid), width=1 / 40))
    fig.add_vline(x=0.5, line_dash="dash", annotation_text="0.5 threshold")
    fig.update_layout(barmode="overlay", height=340, title="toxicity of every sample", xaxis_title="toxicity", yaxis_title="samples")
    fig.update_traces(opacity=0.7)
    ui.plotly(fig, key="tox-hist")

for sid in suites or scored_suites:
    st.header(sid)
    if not sections.metrics_by_category(run, sid):
        ui.missing("No toxicity figures for this suite: see the note at the top of the page.",
                   "The Examples page lists its records.")
