"""Entry point of the dashboard: ``streamlit run dashboard/app.py -- --reports DIR``.

Pages are declared here with ``st.navigation``/``st.Page`` and live in ``views/`` (not a
``pages/`` folder, which Streamlit would serve in its legacy mode on a fresh server's first deep
link, before this script has run once).

Use ``lm-audit dashboard --reports DIR`` rather than calling streamlit directly: it serves on the
loopback interface, headless, with usage statistics off.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

try:
    import dashboard  # noqa: F401  (installed with lm-audit)
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard import ui

st.set_page_config(page_title="lm-audit dashboard", layout="wide")

PAGES = {
    "Audit": [
        st.Page("views/runs.py", title="Runs", url_path="runs"),
        st.Page("views/overview.py", title="Overview", url_path="overview"),
    ],
    "Topics": [
        st.Page("views/toxicity.py", title="Toxicity", url_path="toxicity"),
        st.Page("views/bias.py", title="Bias", url_path="bias"),
        st.Page("views/stereotypes.py", title="Stereotypes", url_path="stereotypes"),
        st.Page("views/factuality.py", title="Factuality", url_path="factuality"),
        st.Page("views/misuse.py", title="Misuse", url_path="misuse"),
        st.Page("views/scorer_audit.py", title="Scorer self-audit", url_path="scorer-audit"),
    ],
    "Explore": [
        st.Page("views/examples.py", title="Examples", url_path="examples"),
        st.Page("views/drilldown.py", title="Records behind a figure", url_path="records"),
        st.Page("views/compare.py", title="Compare", url_path="compare"),
        st.Page("views/models.py", title="Models", url_path="models"),
        st.Page("views/playground.py", title="Gated generation", url_path="playground"),
    ],
}


def _home() -> None:
    """The app root opens the Runs page. (Streamlit serves its default page at "/" only, so Runs
    itself is not the default: that keeps ``/runs`` a working link too.)"""
    st.switch_page(PAGES["Audit"][0])


home = st.Page(_home, title="Home", url_path="home", default=True)
page = st.navigation([home, *(p for pages in PAGES.values() for p in pages)], position="hidden")
ui.sidebar(PAGES)
page.run()
