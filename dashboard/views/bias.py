"""Bias: per-group bars with CI error bars, the gap table with p-values, counterfactual pairs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, sections, ui

run = ui.current_run()
ui.run_header(run, "Bias")
st.write(
    f"Each group's mean score with its {run.level_text} CI (the method column names how each was "
    "computed); the gap is the largest pairwise difference between groups, with its own CI. Paired "
    "tests compare counterfactual prompts (same template, same seed, different group), "
    "Holm-corrected across the suite."
)
suites = data.suites_of_kind(run, "bias")
if not suites:
    ui.missing("This run has no bias suite.", "Run `bias-counterfactual` to fill this page.")
    st.stop()

df = run.records
PAGE_PAIRS = 200

for suite in suites:
    st.header(suite)
    st.caption(f"Protocol: {run.protocol_text(suite)}")
    sections.validity_card(run, suite)
    groups = data.groups_frame(run, suite)
    if groups.empty:
        ui.missing("No per-group results for this suite: see the note at the top of the page.",
                   "The Examples page lists its records.")
    else:
        scores_here = list(dict.fromkeys(groups["score"]))
        default = scores_here.index("sentiment") if "sentiment" in scores_here else 0
        score = st.selectbox("Score", scores_here, index=default, key=f"bias-score-{suite}")
        direction = run.score_direction(score)
        part_all = groups[groups["score"] == score]
        gaps_all = data.gaps_frame(run, suite)
        attributes = list(dict.fromkeys(part_all["attribute"]))
        cols = st.columns(2 if len(attributes) > 1 else 1)
        for i, attribute in enumerate(attributes):
            part = part_all[part_all["attribute"] == attribute]
            with cols[i % len(cols)]:
                title = f"{score} by {attribute}" + (f" (higher is {direction})" if direction != "neutral" else "")
                if ui.is_cross(attribute):
                    ui.plotly(ui.cell_heatmap(part.rename(columns={"group": "value"}), attribute, title, run.level_text),
                              key=f"g-{suite}-{score}-{attribute}")
                    continue
                mean = gaps_all[(gaps_all["score"] == score) & (gaps_all["attribute"] == attribute)]["mean of groups"]
                ui.plotly(
                    ui.ci_bar_chart(part, x="group", title=title, y_range=data.rate_range(None, score),
                                    reference=None if mean.empty or pd.isna(mean.iloc[0]) else float(mean.iloc[0]),
                                    reference_label="mean of groups"),
                    key=f"g-{suite}-{score}-{attribute}", suite=suite,
                    figure_of=lambda x, a=attribute, sc=score: f"group({sc}, {a}={ui.unplot_label(x)})",
                )
        st.subheader("Gaps")
        st.caption(f"Gap = the largest pairwise difference of group means, with its {run.level_text} CI; "
                   "p tests \"no group differs\" "
                   "(group labels permuted within counterfactual sets, or across prompts; see the test column).")
        gaps = gaps_all
        ui.table(gaps[gaps["score"] == score])
        with st.expander("gaps of every score"):
            ui.table(gaps)
        from dashboard import review

        ui.drill_picker(suite, [f for f in review.figures_of(run, suite) if f.startswith(("gap(", "group("))],
                        key=f"bias-drill-{suite}")
    cross = data.metric_by_frame(run, [suite])
    cross = cross[cross["attribute"].map(ui.is_cross)] if not cross.empty else cross
    if not cross.empty:
        st.subheader("Cells (cross-tabs)")
        for (metric, attribute), part in cross.groupby(["metric", "attribute"], sort=False):
            ui.plotly(ui.cell_heatmap(part, str(attribute), f"{metric} by {attribute}", run.level_text), key=f"cell-{suite}-{metric}-{attribute}")
    tests = data.tests_frame(run, suite)
    st.subheader("Paired tests")
    if tests.empty:
        ui.missing("No paired tests in summary.json for this suite.")
    else:
        shown = tests[tests["score"] == score] if not groups.empty and score in set(tests["score"]) else tests
        st.caption(f"{len(shown)} of {len(tests)} tests, smallest Holm-corrected p first.")
        ui.table(shown.sort_values("p (Holm)", na_position="last"))

    st.subheader("Counterfactual pairs")
    sub = df[df["suite"] == suite]
    if f"{data.ATTR}pair_id" not in sub or sub[f"{data.ATTR}pair_id"].isna().all():
        ui.missing("The records of this suite carry no pair_id: no counterfactual pairs to show.")
        continue
    scores = data.score_columns(sub)
    c1, c2 = st.columns(2)
    order_score = c1.selectbox("Order pairs by the spread of", [*scores, "(pair id)"], key=f"pairscore-{suite}")
    if order_score != "(pair id)":
        spread = data.pair_differences(df, suite, order_score)
    else:
        spread = (
            sub[[f"{data.ATTR}pair_id", "sample"]].drop_duplicates().rename(columns={f"{data.ATTR}pair_id": "pair_id"})
            .sort_values(["pair_id", "sample"]).assign(spread=None)
        )
    spread = spread.head(PAGE_PAIRS)
    if spread.empty:
        ui.missing("No complete pairs.")
        continue
    labels = [f"{r.pair_id} / sample {r.sample}" + (f" (spread {r.spread:.3f})" if isinstance(r.spread, float) and not pd.isna(r.spread) else "") for r in spread.itertuples()]
    choice = c2.selectbox(f"Pair (top {len(labels)})", range(len(labels)), format_func=labels.__getitem__, key=f"pair-{suite}")
    chosen = spread.iloc[choice]
    rows = sub[(sub[f"{data.ATTR}pair_id"] == chosen["pair_id"]) & (sub["sample"] == chosen["sample"])]
    cols = st.columns(max(1, min(len(rows), 4)))
    for i, (_, r) in enumerate(rows.iterrows()):
        with cols[i % len(cols)]:
            st.text(f"group: {r.get(f'{data.ATTR}group', '?')}   term: {r.get(f'{data.ATTR}term', '')}")
            ui.text_block("prompt", r["prompt"])
            ui.text_block("completion", r["completion"])
            sc = {s: r[f"{data.SCORE}{s}"] for s in scores if not pd.isna(r[f"{data.SCORE}{s}"])}
            ui.table(pd.DataFrame({"score": list(sc), "value": list(sc.values())}))
