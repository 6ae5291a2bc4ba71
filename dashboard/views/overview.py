"""Overview: gates with PASS/FAIL, headline metrics with CIs, the protocol and the manifest."""

from __future__ import annotations

import streamlit as st

from dashboard import data, sections, ui

run = ui.current_run()
ui.run_header(run, "Overview")

st.header("Gates")
gates = data.gates_frame(run)
overall = (run.summary or {}).get("gates") if isinstance((run.summary or {}).get("gates"), dict) else None
if gates.empty:
    ui.missing("No gates in this run.", "Add gates to a suite or pass `--policy policy.yaml` to `lm-audit run`.")
else:
    n_fail = int((gates["result"] == "FAIL").sum())
    n_error = int((gates["result"] == "ERROR").sum())
    if n_fail or n_error:
        parts = [f"{n_fail} of {len(gates)} gate(s) failed"] if n_fail else []
        if n_error:
            parts.append(f"{n_error} could not be judged (see the error column)")
        st.error("FAIL: " + "; ".join(parts))
    else:
        st.success(f"PASS: all {len(gates)} gate(s) passed")
    ui.table(gates)
    if overall and overall.get("n_total") not in (None, len(gates)):
        st.caption(f"summary.json counts {overall.get('n_total')} gate(s) in total.")
    for name in (overall or {}).get("unmatched") or []:
        st.warning(f"A gate names a figure this run does not have: {name}")

st.header("Headline metrics")
metrics = data.metrics_frame(run)
if metrics.empty:
    ui.missing("summary.json has no suite metrics.")
    df = run.records
    counts = df.groupby("suite", observed=True).size().rename("records").reset_index() if not df.empty else df
    if not df.empty:
        st.write("Records per suite:")
        ui.table(counts)
else:
    for sid in metrics["suite"].unique():
        sub = metrics[metrics["suite"] == sid]
        st.subheader(sid)
        title = run.suite_manifest(sid).get("title") or run.suite_summary(sid).get("title")
        if title:
            st.caption(str(title))
        sections.metric_cards(sub)
        ui.table(sub.drop(columns=["suite", "protocol"]))
        st.caption(f"Protocol: {run.protocol_text(sid)}")

st.header("Manifest")
with st.expander("manifest.json", expanded=False):
    st.json(run.manifest, expanded=2)
