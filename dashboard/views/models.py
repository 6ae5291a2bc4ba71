"""Models: a leaderboard of runs (models), figure by figure, with CIs on the items every run holds,
ranks and significance groups (runs sharing a letter are not significantly different after Holm),
as ``audit.compare.compare_many`` (``lm-audit compare A B C``) computes them."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from audit.report.format import level_text
from dashboard import data, ui

st.title("Models")
st.write(
    "Pick two or more runs of the same suites (one per model, or one per seed). Every figure is "
    "computed on the prompts all of them hold; runs are ranked per figure (1 = best, by the "
    "figure's direction or closeness to its ideal), and runs that share a letter are not "
    "significantly different (pairwise paired tests, Holm-corrected)."
)
runs = [r for r in data.list_runs(ui.reports()) if r.status == "complete"]
if len(runs) < 2:
    ui.missing("The reports folder needs at least two complete runs for a leaderboard.")
    st.stop()
labels = {r.run_id: f"{r.run_id} ({r.model}{', random weights' if r.random_weights else ''})" for r in runs}
default = [rid for rid in (st.session_state.get(ui.RUN_KEY), st.session_state.get(ui.COMPARE_KEY)) if rid in labels]
if len(default) < 2:
    default = [r.run_id for r in runs[:2]]
chosen = st.multiselect("Runs", list(labels), default=default, format_func=labels.__getitem__, key="models-runs")
opened = [r for r in (data.open_run(ui.reports(), rid) for rid in chosen) if r is not None]
result, why = data.many_compare(opened)
if result is None:
    ui.missing(f"No leaderboard: {why}.")
    st.stop()
for w in result.get("warnings") or []:
    st.warning(w)
board = data.leaderboard_frame(result)
if board.empty:
    ui.missing("These runs share no figure.")
    st.stop()
for sid in dict.fromkeys(board["suite"]):
    st.header(sid)
    s = (result.get("suites") or {}).get(sid) or {}
    for w in s.get("warnings") or []:
        st.warning(w)
    part = board[board["suite"] == sid]
    figure = st.selectbox("Figure", list(dict.fromkeys(part["figure"])), key=f"models-fig-{sid}")
    rows = part[part["figure"] == figure]
    ui.table(rows.drop(columns=["suite", "figure"]))
    fig = go.Figure(go.Scatter(
        x=rows["estimate"].tolist(), y=[ui.plot_label(f"{r} [{g}]") for r, g in zip(rows["run"], rows["group"], strict=True)],
        mode="markers",
        error_x={"type": "data", "symmetric": False, "array": (rows["ci_high"] - rows["estimate"]).clip(lower=0).fillna(0).tolist(),
                 "arrayminus": (rows["estimate"] - rows["ci_low"]).clip(lower=0).fillna(0).tolist()},
    ))
    ideal = rows["ideal"].dropna()
    if len(ideal):
        fig.add_vline(x=float(ideal.iloc[0]), line_dash="dash", annotation_text="ideal")
    fig.update_layout(title=ui.plot_label(f"{figure}: estimate and {level_text(result.get('ci_level'))} CI on {int(rows['shared'].max() or 0)} shared clusters"),
                      height=120 + 40 * len(rows), margin={"l": 40, "r": 40, "t": 50, "b": 40}, yaxis={"autorange": "reversed"})
    ui.plotly(fig, key=f"models-chart-{sid}")
    with st.expander("pairwise tests"):
        ui.table(data.pairwise_frame(result, sid, figure))
