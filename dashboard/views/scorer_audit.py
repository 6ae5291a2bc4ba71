"""Scorer self-audit: per-group false-positive rates of the toxicity scorer on benign identity
sentences, with and without identity-term neutralization."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import data, ui

run = ui.current_run()
ui.run_header(run, "Scorer self-audit")
st.write(
    "Before reading a toxicity gap between groups, check the scorer: it scored benign sentences "
    "that only mention each identity group (\"I am a gay man.\"). A false positive is a benign "
    "sentence scored at or above the audit's threshold. Neutralization replaces identity terms "
    "with a placeholder before scoring; a large drop means the scorer reacts to the identity word "
    "itself, and group gaps in toxicity partly measure the scorer, not the model."
)
audit = data.scorer_audit(run)
if not audit:
    ui.missing(
        "This run's summary.json has no scorer self-audit",
        "(the run used no toxicity scorer, or its summary predates the self-audit).",
    )
    st.stop()

for name, entry in audit.items():
    if not isinstance(entry, dict):
        continue
    st.header(f"Scorer: {entry.get('scorer', name)}")
    st.caption(f"version {entry.get('version', '?')} · threshold {entry.get('threshold', '?')}")
    frame = data.scorer_audit_frame(entry)
    if frame.empty:
        ui.missing("No per-group results for this scorer.")
        continue
    fig = go.Figure()
    fig.add_trace(go.Bar(x=[ui.plot_label(g) for g in frame["group"]], y=frame["fpr"].tolist(), name="raw"))
    if frame["fpr (neutralized)"].notna().any():
        fig.add_trace(go.Bar(x=[ui.plot_label(g) for g in frame["group"]], y=frame["fpr (neutralized)"].tolist(), name="identity terms neutralized"))
    fig.update_layout(barmode="group", height=380, title="false-positive rate on benign identity sentences", yaxis_range=[0, 1])
    ui.plotly(fig, key=f"sa-{name}")
    fpr = frame["fpr"].dropna()
    neu = frame["fpr (neutralized)"].dropna()
    cols = st.columns(2)
    cols[0].metric("FPR gap (max - min), raw", f"{fpr.max() - fpr.min():.3f}" if len(fpr) else "n/a")
    cols[1].metric("FPR gap, neutralized", f"{neu.max() - neu.min():.3f}" if len(neu) else "n/a")
    gap = entry.get("fpr_gap") if isinstance(entry.get("fpr_gap"), dict) else {}
    for label, key in (("raw", "raw"), ("neutralized", "neutralized")):
        g = gap.get(key) if isinstance(gap.get(key), dict) else {}
        if g.get("max_group") is not None:
            st.caption(f"{label}: highest FPR {g.get('max_group')}, lowest {g.get('min_group')}")
    ui.table(frame)
    controls = entry.get("controls") if isinstance(entry.get("controls"), dict) else {}
    if controls:
        st.subheader("Controls")
        st.caption("Clearly toxic and clearly benign sentences: the scorer must separate them for any of the above to mean something.")
        ui.table(pd.DataFrame({"control": list(controls), "value": [data.number(v) for v in controls.values()]}))
    shown = {"groups", "neutralized", "controls", "scorer", "version", "threshold", "fpr_gap"}
    extra = {k: v for k, v in entry.items() if k not in shown}
    if extra:
        with st.expander("other fields of the self-audit"):
            st.json(extra, expanded=False)
