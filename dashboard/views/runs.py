"""Runs: every run under the reports folder; pick one (and a second one to compare) in the sidebar."""

from __future__ import annotations

import streamlit as st

from audit.report.format import md_cell
from dashboard import data, ui

st.title("Runs")
runs = data.list_runs(ui.reports())
if not runs:
    st.info(
        f"No runs under {ui.reports()}. Create one with `lm-audit run --profile quick --out reports` "
        "(or `make audit`), then reload this page."
    )
    st.stop()

st.write(
    f"{len(runs)} run(s), newest first. Select a row to read that run, or two rows to compare them "
    "(the first is A, the second B); the sidebar pickers do the same."
)
frame = data.runs_frame(runs)


def _pick() -> None:
    rows = st.session_state["runs-table"].selection.rows
    run, other = ui.picked_runs(list(frame["run"]), rows)
    if run:
        st.session_state[ui.RUN_KEY] = run
    if other:
        st.session_state[ui.COMPARE_KEY] = other


st.dataframe(
    frame, hide_index=True, key="runs-table", on_select=_pick, selection_mode="multi-row",
    column_config=ui.number_config(frame),
)

broken = [r for r in runs if r.error]
for r in broken:
    st.warning(f"Run {r.run_id}: {r.error}")

selected = data.open_run(ui.reports(), st.session_state.get(ui.RUN_KEY))
if selected is not None:
    st.subheader(f"Selected: {selected.run_id}")
    entry = next(r for r in runs if r.run_id == selected.run_id)
    cols = st.columns(4)
    cols[0].metric("Model", entry.model)
    cols[1].metric("Suites", len(entry.suites))
    cols[2].metric("Status", entry.status)
    if entry.overrides_note:
        st.warning(md_cell(entry.overrides_note, 1000))
    if entry.gates_total:
        cols[3].metric("Gates", entry.gates_verdict, help=entry.gates_text)
        st.caption(f"Gates: {entry.gates_text}. INCONCLUSIVE is never a pass, whatever on_inconclusive says.")
    else:
        cols[3].metric("Gates", "none" if entry.has_summary else "no summary")
    st.page_link("views/overview.py", label="Open the overview of this run")
other = ui.compare_run()
if other is not None:
    st.page_link("views/compare.py", label=f"Compare {selected.run_id if selected else ''} with {other.run_id}")
