"""Overview: gates with PASS/FAIL, headline metrics with CIs, the protocol and the manifest."""

from __future__ import annotations

import streamlit as st

from audit.report.format import md_cell
from audit.summary.read import overrides_note
from dashboard import data, sections, ui

run = ui.current_run()
ui.run_header(run, "Overview")

st.header("Gates")
if overrides_note(run.summary or {}):  # reviewer overrides changed figures: say so beside every verdict
    st.warning(f"{md_cell(overrides_note(run.summary or {}), 1000)}. The Drill-down page lists each override "
               "(who, why, when).")
gates = data.gates_frame(run)
overall = (run.summary or {}).get("gates") if isinstance((run.summary or {}).get("gates"), dict) else None
if gates.empty:
    ui.missing("No gates in this run.", "Add gates to a suite or pass `--policy policy.yaml` to `lm-audit run`.")
else:
    n_fail = int((gates["result"] == "FAIL").sum())
    n_error = int((gates["result"] == "ERROR").sum())
    n_inc = int((gates["result"] == "INCONCLUSIVE").sum())
    if n_fail or n_error or n_inc:
        parts = [f"{n_fail} of {len(gates)} gate(s) failed"] if n_fail else []
        if n_error:
            parts.append(f"{n_error} could not be judged (see the error column)")
        if n_inc:
            parts.append(f"{n_inc} inconclusive (the CI straddles the threshold; see 'needed')")
        st.error(("FAIL: " if n_fail or n_error else "INCONCLUSIVE: ") + "; ".join(parts))
    else:
        st.success(f"PASS: all {len(gates)} gate(s) passed")
    ui.table(gates.drop(columns=["figure", "index"]))
    gate_choices = {f"{r.result}  {r.suite}  {r.gate}": (r.suite, r.figure) for r in gates.itertuples()}
    g1, g2 = st.columns([3, 1])
    picked = g1.selectbox("Records behind a gate", list(gate_choices), key="ov-gate")
    g2.write("")
    if g2.button("Show records", key="ov-gate-go", help="the records behind this gate's figure, most influential first"):
        ui.drill(*gate_choices[picked])
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
        sections.metric_cards(sub, run.level_text)
        ui.table(sub.drop(columns=["suite", "protocol", "scale"]))
        st.caption(f"Protocol: {run.protocol_text(sid)}")

st.header("Manifest")
with st.expander("manifest.json", expanded=False):
    st.json(run.manifest, expanded=2)
