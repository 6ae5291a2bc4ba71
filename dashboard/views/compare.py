"""Compare: two runs side by side, per-figure deltas with CIs and a verdict, as `lm-audit compare`\ncomputes them (the dashboard runs no test of its own)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from audit.report.format import level_text
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
        n_fail = int(gates["result"].isin(["FAIL", "ERROR", "INCONCLUSIVE"]).sum())
        (st.error if n_fail else st.success)(f"gates: {len(gates) - n_fail}/{len(gates)} PASS")
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
    ga = a.suite_manifest(sid).get("generation")
    gb = b.suite_manifest(sid).get("generation")
    if ga != gb:
        st.warning(
            f"{sid}: the generation settings differ (A: {a.protocol_text(sid)}; B: {b.protocol_text(sid)}); "
            "deltas mix model and protocol changes."
        )



def verdict_cards(verdicts: pd.Series) -> None:
    counts = verdicts.value_counts()
    cols = st.columns(4)
    for col, verdict in zip(cols, ["better", "worse", "no significant change", "other"], strict=True):
        n = int(counts.get(verdict, 0)) if verdict != "other" else int(counts.drop(
            ["better", "worse", "no significant change"], errors="ignore").sum())
        col.metric(verdict, n)


def delta_chart(frame: pd.DataFrame, label_col: str, key: str, title: str) -> None:
    chart = frame.dropna(subset=["delta (B - A)"]).copy()
    if chart.empty:
        return
    chart["label"] = chart["suite"] + " · " + chart[label_col]
    chart = chart.rename(columns={"delta (B - A)": "estimate", "delta ci_low": "ci_low", "delta ci_high": "ci_high"})
    ui.plotly(ui.ci_bar_chart(chart, x="label", title=title, color="verdict", reference=0.0), key=key)


st.header("Deltas B - A")
result, why = data.official_compare(a, b)
if result is None:
    ui.missing(f"The comparison is not available: {why}.", "The dashboard shows only what `lm-audit compare A B` computes.")
    st.stop()
st.caption(
    "As `lm-audit compare A B`: every figure recomputed on the prompts both runs share; the delta's "
    "CI and its p-value come from one method at one level (Newcombe for 0/1 outcomes, a paired "
    "cluster bootstrap otherwise), and the verdict reads that interval, from each figure's direction "
    "(or its ideal value, e.g. 50 for pct_stereotype). A figure whose score is constant in a run is "
    "uninformative, never better or worse."
)
for sid, s in (result.get("suites") or {}).items():
    for w in (s.get("warnings") or []) if isinstance(s, dict) else []:
        st.warning(f"{sid}: {w}")
table = data.official_compare_frame(result)
if table.empty:
    ui.missing("The runs share no figure to compare.")
else:
    verdict_cards(table["verdict"])
    ui.table(table)
    level = level_text((result.get("stats") or {}).get("ci_level"))
    delta_chart(table, "figure", "cmp-official", f"delta B - A with {level} CI")
