"""Page sections shared by several topic pages: metric tables and metrics by category."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, review, ui


def metric_cards(metrics: pd.DataFrame, level: str = "95%") -> None:
    """Up to four headline numbers with their CI (``level``: the run's, ``Run.level_text``)."""
    if metrics.empty:
        return
    cols = st.columns(min(4, len(metrics)))
    for col, (_, m) in zip(cols, metrics.head(4).iterrows(), strict=False):
        est, lo, hi = m["estimate"], m["ci_low"], m["ci_high"]
        value = "n/a" if est is None or pd.isna(est) else f"{est:.3g}"
        ci = "no CI" if lo is None or hi is None or pd.isna(lo) or pd.isna(hi) else f"{level} CI [{lo:.3g}, {hi:.3g}]"
        col.metric(str(m["metric"]), value, ci, delta_color="off", delta_arrow="off")


def validity_card(run: data.Run, suite: str) -> None:
    """How far the scorers behind this suite's figures agree with people or reference labels
    (summary ``scorer_validity``), right under the figures it qualifies."""
    agreement, scorers = data.validity_frames(run, suite)
    if scorers.empty:
        return
    with st.container(border=True):
        st.markdown("**Scorer validity**: agreement of the scorers behind these figures with human or "
                    "reference labels, with 95% CIs (see docs/scorers.md).")
        if agreement.empty:
            st.caption("No reference labels ship for these scorers: their error is not measured.")
        else:
            ui.table(agreement)
        ui.table(scorers)


def metrics_by_category(
    run: data.Run,
    suite: str,
    reference: dict[str, tuple[float, str]] | None = None,
) -> bool:
    """For each metric of ``suite``: a table and, per attribute it is broken down by, a bar chart
    with CI error bars. Returns False when the summary holds no metric for the suite."""
    metrics = data.metrics_frame(run, [suite])
    if metrics.empty:
        return False
    metric_cards(metrics, run.level_text)
    ui.table(metrics.drop(columns=["suite", "protocol", "scale"]))
    st.caption(f"Protocol: {run.protocol_text(suite)}")
    validity_card(run, suite)
    by = data.metric_by_frame(run, [suite])
    for metric in metrics["metric"]:
        sub = by[by["metric"] == metric]
        row = metrics.loc[metrics["metric"] == metric].iloc[0]
        ref = (reference or {}).get(str(row["kind"]))
        if row["ideal"] is not None and not pd.isna(row["ideal"]):
            ref = (float(row["ideal"]), f"ideal {row['ideal']:g}")
        y_range = data.rate_range(str(row["scale"]), str(row["score"]))
        for attribute, part in sub.groupby("attribute", sort=False):
            if ref and ref[0] == 0.5 and str(row["kind"]) == "pct_stereotype" and part["estimate"].abs().max() > 1:
                ref = (50.0, ref[1])  # the metric is a percentage, not a share
            if ui.is_cross(str(attribute)):
                ui.plotly(ui.cell_heatmap(part, str(attribute), f"{metric} by {attribute}", run.level_text), key=f"{suite}-{metric}-{attribute}-heat")
            else:
                fig = ui.ci_bar_chart(
                    part,
                    x="value",
                    title=f"{metric} by {attribute}",
                    reference=ref[0] if ref else None,
                    reference_label=ref[1] if ref else "",
                    y_range=y_range,
                )
                ui.plotly(fig, key=f"{suite}-{metric}-{attribute}", suite=suite,
                          figure_of=lambda x, m=metric, a=attribute: f"{m}[{a}={ui.unplot_label(x)}]")
            with st.expander(f"{metric} by {attribute}: table"):
                ui.table(part.drop(columns=["suite", "metric", "kind", "attribute"]))
    ui.drill_picker(suite, review.figures_of(run, suite), key=f"drill-{suite}")
    return True


def topic_page(kind: str, title: str, intro: str, reference: dict[str, tuple[float, str]] | None = None) -> None:
    """A whole topic page: one section per suite of ``kind``."""
    run = ui.current_run()
    ui.run_header(run, title)
    st.write(intro)
    suites = data.suites_of_kind(run, kind)
    if not suites:
        ui.missing(f"This run has no {title.lower()} suite.", "Run one to fill this page.")
        return
    for suite in suites:
        st.header(suite)
        if not metrics_by_category(run, suite, reference):
            ui.missing("No figures for this suite: see the note at the top of the page.",
                       "The Examples page lists its records.")
