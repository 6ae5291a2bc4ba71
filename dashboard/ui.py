"""Widgets shared by the pages: the run picker, text-safe display of model text, CI charts.

Model text (prompts, completions) is shown only with ``st.code``/``st.text``/dataframes, which
render it as text. Nothing here uses ``unsafe_allow_html``. Labels that reach plotly (group names,
categories) are entity-escaped, because plotly interprets a few HTML-like tags in its labels.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import data

RUN_KEY = "run_id"
COMPARE_KEY = "compare_id"
NONE = "(none)"
DRILL_SUITE = "drill_suite"
DRILL_FIGURE = "drill_figure"
DRILL_PAGE = "views/drilldown.py"
# the plotly toolbar sits vertically at the right edge, so it never covers a chart's title
PLOTLY_CONFIG = {"displaylogo": False}


def reports() -> Any:
    return data.reports_dir()


def _initial_from_query(runs: list[data.RunEntry]) -> None:
    """Take ``?run=`` / ``?compare=`` / ``?suite=&figure=`` from the URL when they change (a new
    link, or a page switch that carries them), only if they name a listed run."""
    q = st.query_params
    wanted = (q.get("run"), q.get("compare"), q.get("suite"), q.get("figure"))
    if st.session_state.get("_query_seen") == wanted:
        return
    st.session_state["_query_seen"] = wanted
    ids = {r.run_id for r in runs}
    if q.get("run") in ids:
        st.session_state[RUN_KEY] = q.get("run")
    if q.get("compare") in ids:
        st.session_state[COMPARE_KEY] = q.get("compare")
    if q.get("figure") and q.get("suite"):
        st.session_state[DRILL_SUITE] = str(q.get("suite"))[:200]
        st.session_state[DRILL_FIGURE] = str(q.get("figure"))[:300]


def sidebar(pages: dict[str, list[Any]] | None = None) -> None:
    """The page links and the run pickers, shown on every page. Their values live in
    ``st.session_state``."""
    runs = data.list_runs(reports())
    _initial_from_query(runs)
    ids = [r.run_id for r in runs]
    with st.sidebar:
        with st.container(key="lm-audit-nav"):
            for section, entries in (pages or {}).items():
                st.caption(section)
                for p in entries:
                    st.page_link(p)
        st.caption("Reports folder")
        st.text(str(reports()))
        if not ids:
            st.warning("No runs in this folder yet.")
            return
        if st.session_state.get(RUN_KEY) not in ids:
            st.session_state[RUN_KEY] = ids[0]
        st.selectbox("Run", ids, key=RUN_KEY, help="newest first")
        others = [NONE, *[i for i in ids if i != st.session_state[RUN_KEY]]]
        if st.session_state.get(COMPARE_KEY) not in others:
            st.session_state[COMPARE_KEY] = NONE
        st.selectbox("Compare with", others, key=COMPARE_KEY, help="a second run for the Compare page")
    st.query_params["run"] = st.session_state[RUN_KEY]
    st.session_state["_query_seen"] = (
        st.session_state[RUN_KEY], st.query_params.get("compare"), st.query_params.get("suite"), st.query_params.get("figure"),
    )


def picked_runs(ids: list[str], rows: list[int]) -> tuple[str | None, str | None]:
    """Rows selected in the runs table -> (run, run to compare with)."""
    chosen = [ids[i] for i in rows if 0 <= i < len(ids)]
    return (chosen[0] if chosen else None, chosen[1] if len(chosen) > 1 else None)


def current_run() -> data.Run:
    """The selected run, or a message and a stop when there is none."""
    run = data.open_run(reports(), st.session_state.get(RUN_KEY))
    if run is None:
        st.info(
            f"No run to show. The reports folder {reports()} holds no run folders yet: "
            "create one with `lm-audit run ...` or `make audit`, then reload."
        )
        st.stop()
    return run


def compare_run() -> data.Run | None:
    cid = st.session_state.get(COMPARE_KEY)
    if not cid or cid == NONE:
        return None
    return data.open_run(reports(), cid)


def run_header(run: data.Run, title: str) -> None:
    st.title(title)
    model = run.manifest.get("model") if isinstance(run.manifest.get("model"), dict) else {}
    st.caption(f"Run {run.run_id} · model {model.get('name', '?')} · {run.manifest.get('created', '')}")
    if model.get("random_weights"):
        st.warning("This model has random weights: its completions are noise, for tests and demos only.")
    for note in run.notes:
        st.warning(note)


def text_block(label: str, text: str) -> None:
    """Untrusted text, shown verbatim as text."""
    st.caption(label)
    st.code(text if text else "(empty)", language=None, wrap_lines=True)


def plot_label(x: Any) -> str:
    return str(x).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def ci_bar_chart(
    frame: pd.DataFrame,
    x: str,
    title: str,
    y: str = "estimate",
    color: str | None = None,
    reference: float | None = None,
    reference_label: str = "",
    y_range: tuple[float, float] | None = None,
) -> go.Figure:
    """Bars with asymmetric CI error bars; one trace per ``color`` value."""
    fig = go.Figure()
    frame = frame.copy()
    for col in (y, "ci_low", "ci_high"):  # None from a failed metric must not break the arithmetic
        if col in frame:
            frame[col] = pd.to_numeric(frame[col], errors="coerce")
    groups = [(None, frame)] if color is None else list(frame.groupby(color, sort=False, observed=True))
    for name, sub in groups:
        err = None
        if {"ci_low", "ci_high"} <= set(sub.columns) and sub["ci_high"].notna().any():
            err = {
                "type": "data",
                "symmetric": False,
                "array": (sub["ci_high"] - sub[y]).clip(lower=0).fillna(0).tolist(),
                "arrayminus": (sub[y] - sub["ci_low"]).clip(lower=0).fillna(0).tolist(),
            }
        fig.add_trace(
            go.Bar(
                x=[plot_label(v) for v in sub[x]],
                y=sub[y].tolist(),
                error_y=err,
                name=plot_label(name) if name is not None else y,
            )
        )
    if reference is not None:
        fig.add_hline(y=reference, line_dash="dash", annotation_text=plot_label(reference_label))
    fig.update_layout(
        title=plot_label(title), barmode="group", height=360, margin={"l": 40, "r": 40, "t": 50, "b": 40},
        showlegend=color is not None, modebar={"orientation": "v"},
    )
    if y_range:
        fig.update_yaxes(range=list(y_range))
    return fig


COUNT_COLUMNS = {"n", "pairs", "prompts", "records", "groups", "count"}


def number_config(frame: pd.DataFrame, fmt: str = "%.3f") -> dict[str, Any]:
    """Column configs: counts as integers, every other float column with a fixed format."""
    config: dict[str, Any] = {}
    for c in frame.columns:
        if str(c) in COUNT_COLUMNS:
            config[c] = st.column_config.NumberColumn(format="%d")
        elif pd.api.types.is_float_dtype(frame[c]):
            config[c] = st.column_config.NumberColumn(format=fmt)
    return config


def table(frame: pd.DataFrame, drop_empty: bool = True, **kwargs: Any) -> None:
    """A dataframe (rendered as text, never HTML); columns with no value at all are left out."""
    if drop_empty and not frame.empty:
        frame = frame.loc[:, [c for c in frame.columns if frame[c].notna().any() and (frame[c].astype(str) != "").any()]]
    st.dataframe(frame, hide_index=True, column_config=number_config(frame), **kwargs)


def plotly(fig: go.Figure, key: str, suite: str | None = None, figure_of: Any = None) -> None:
    """A plotly chart; with ``figure_of(x_label) -> figure name`` a click on a bar opens the
    records behind that figure (the drill-down page)."""
    fig.update_layout(modebar={"orientation": "v"})
    if suite is None or figure_of is None:
        st.plotly_chart(fig, key=key, config=PLOTLY_CONFIG)
        return
    event = st.plotly_chart(fig, key=key, config=PLOTLY_CONFIG, on_select="rerun", selection_mode="points")
    points = (getattr(event, "selection", None) or {}).get("points") if event else None
    if points:
        name = figure_of(points[0].get("x"))
        if name:
            drill(suite, name)


def drill(suite: str, figure: str) -> None:
    """Open the drill-down page on one figure of one suite."""
    st.session_state[DRILL_SUITE] = suite
    st.session_state[DRILL_FIGURE] = figure
    query = {"suite": suite, "figure": figure}
    if st.session_state.get(RUN_KEY):
        query["run"] = st.session_state[RUN_KEY]
    st.switch_page(DRILL_PAGE, query_params=query)


def drill_picker(suite: str, figures: list[str], key: str, label: str = "Records behind a figure") -> None:
    """A figure picker and a button that opens the records behind it, sorted by influence."""
    if not figures:
        return
    c1, c2 = st.columns([3, 1])
    choice = c1.selectbox(label, figures, key=f"{key}-pick")
    c2.write("")
    if c2.button("Show records", key=f"{key}-go", help="the records behind this figure, the most influential first"):
        drill(suite, str(choice))


CROSS_SEPARATORS = ("×", ",")


def is_cross(attribute: str) -> bool:
    """A cross-tab of two attributes (``gender×race``), shown as a heatmap of cells."""
    return any(sep in attribute for sep in CROSS_SEPARATORS)


def _split(x: str) -> list[str]:
    for sep in CROSS_SEPARATORS:
        if sep in x:
            return [p.strip() for p in x.split(sep)]
    return [x]


def cell_heatmap(frame: pd.DataFrame, attribute: str, title: str, level: str = "95%") -> go.Figure:
    """Cells of a two-attribute cross-tab: colour = estimate on a scale symmetric about 0 (white at
    0, the same depth for +x and -x), text = estimate [CI] and n; a cell whose CI includes 0 says
    "○ CI includes 0" and carries a ring (its colour is no evidence of a sign). ``level``: the run's
    CI level (``Run.level_text``)."""
    names = _split(attribute)
    cells = frame.copy()
    parts = cells["value"].astype(str).map(_split)
    cells["row"] = parts.map(lambda p: p[0])
    cells["col"] = parts.map(lambda p: p[1] if len(p) > 1 else "")
    rows, cols = list(dict.fromkeys(cells["row"])), list(dict.fromkeys(cells["col"]))
    z = [[None] * len(cols) for _ in rows]
    text = [[""] * len(cols) for _ in rows]
    straddles = []
    for r in cells.itertuples():
        i, j = rows.index(r.row), cols.index(r.col)
        est = None if pd.isna(r.estimate) else float(r.estimate)
        lo, hi = getattr(r, "ci_low", None), getattr(r, "ci_high", None)
        has_ci = not (lo is None or hi is None or pd.isna(lo) or pd.isna(hi))
        zero = has_ci and float(lo) <= 0.0 <= float(hi)
        z[i][j] = est
        ci = f"<br>[{lo:.3g}, {hi:.3g}]" if has_ci else ""
        n = getattr(r, "n", None)
        mark = "<br>○ CI includes 0" if zero else ""
        text[i][j] = ("n/a" if est is None else f"{est:.3g}") + ci + ("" if n is None or pd.isna(n) else f"<br>n={int(n)}") + mark
        if zero:
            straddles.append((i, j))
    values = [abs(float(x)) for x in cells["estimate"] if not pd.isna(x)]
    span = max(values, default=0.0) or 1.0
    fig = go.Figure(go.Heatmap(
        z=z, x=[plot_label(c) for c in cols], y=[plot_label(r) for r in rows], text=text,
        texttemplate="%{text}", colorscale="RdBu", zmid=0.0, zmin=-span, zmax=span, hoverongaps=False,
    ))
    if straddles:
        fig.add_trace(go.Scatter(
            x=[plot_label(cols[j]) for _, j in straddles], y=[plot_label(rows[i]) for i, _ in straddles],
            mode="markers", name="CI includes 0", hoverinfo="name", showlegend=True,
            marker={"symbol": "circle-open", "size": 44, "color": "black", "line": {"width": 2}},
        ))
    fig.update_layout(
        title=plot_label(f"{title} (cells with {level} CI; colour symmetric about 0; ○ = CI includes 0)"),
        height=140 + 60 * len(rows),
        xaxis_title=plot_label(names[1] if len(names) > 1 else ""), yaxis_title=plot_label(names[0]),
        margin={"l": 40, "r": 40, "t": 50, "b": 40}, modebar={"orientation": "v"},
    )
    return fig


def unplot_label(x: Any) -> str:
    return str(x).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def missing(what: str, why: str = "") -> None:
    st.info(f"{what} {why}".strip())
