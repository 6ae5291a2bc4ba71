"""Compare: two runs side by side, per-metric deltas with CIs and a verdict."""

from __future__ import annotations

import streamlit as st

from dashboard import data, ui

run = ui.current_run()
st.title("Compare")
other = ui.compare_run()
if other is None:
    ui.missing("Pick a second run under 'Compare with' in the sidebar.", "Run A is the sidebar's run; B is the one to compare.")
    st.stop()
a, b = run, other


def describe(r: data.Run, side: str) -> None:
    model = r.manifest.get("model") if isinstance(r.manifest.get("model"), dict) else {}
    st.subheader(f"{side}: {r.run_id}")
    st.text(
        f"model: {model.get('name', '?')}{' (random weights)' if model.get('random_weights') else ''}\n"
        f"fingerprint: {model.get('fingerprint', '?')}\n"
        f"created: {r.manifest.get('created', '')}\n"
        f"suites: {', '.join(r.suite_ids)}"
    )
    gates = data.gates_frame(r)
    if gates.empty:
        st.caption("no gates")
    else:
        n_fail = int((gates["result"] == "FAIL").sum())
        (st.error if n_fail else st.success)(f"gates: {len(gates) - n_fail}/{len(gates)} passed")
    for note in r.notes:
        st.warning(note)


left, right = st.columns(2)
with left:
    describe(a, "A")
with right:
    describe(b, "B")

shared = [s for s in a.suite_ids if s in b.suite_ids]
if not shared:
    ui.missing("These two runs share no suite, so there is nothing to compare.")
    st.stop()
for sid in shared:
    ga = a.suites_manifest.get(sid, {}).get("generation")
    gb = b.suites_manifest.get(sid, {}).get("generation")
    if ga != gb:
        st.warning(
            f"{sid}: the generation settings differ (A: {a.protocol_text(sid)}; B: {b.protocol_text(sid)}); "
            "deltas mix model and protocol changes."
        )

st.header("Metric deltas (B - A)")
st.caption(
    "Mean-type metrics: paired bootstrap over the prompts both runs share. Others: normal "
    "approximation from the two CIs. A verdict needs a CI that excludes 0. `lm-audit compare A B` "
    "gives the authoritative test with its exit code."
)
table = data.compare_runs(a, b)
if table.empty:
    ui.missing("No shared metrics: one of the runs has no metrics in its summary.json.", "See the score deltas below.")
else:
    counts = table["verdict"].value_counts()
    cols = st.columns(4)
    for col, verdict in zip(cols, ["better", "worse", "no significant change", "no CI"], strict=True):
        col.metric(verdict, int(counts.get(verdict, 0)))
    ui.table(table)
    chart = table.dropna(subset=["delta (B - A)"]).copy()
    if not chart.empty:
        chart["label"] = chart["suite"] + " · " + chart["metric"]
        chart = chart.rename(columns={"delta (B - A)": "estimate", "delta ci_low": "ci_low", "delta ci_high": "ci_high"})
        fig = ui.ci_bar_chart(chart, x="label", title="metric delta B - A with 95% CI", color="verdict", reference=0.0)
        st.plotly_chart(fig, key="cmp-delta")

st.header("Score deltas on shared prompts (B - A)")
st.caption("Every per-record score, averaged per prompt, over the prompts both runs share; paired bootstrap CI (1000).")
scores = data.compare_scores(a, b)
if scores.empty:
    ui.missing("The two runs share no scored prompts.")
else:
    ui.table(scores)
    chart = scores.copy()
    chart["label"] = chart["suite"] + " · " + chart["score"]
    chart = chart.rename(columns={"delta (B - A)": "estimate", "delta ci_low": "ci_low", "delta ci_high": "ci_high"})
    st.plotly_chart(ui.ci_bar_chart(chart, x="label", title="score delta B - A with 95% CI", color="verdict", reference=0.0), key="cmp-scores")
