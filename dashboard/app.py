"""Entry point of the dashboard: ``streamlit run dashboard/app.py -- --reports DIR``.

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
        st.Page("pages/runs.py", title="Runs", url_path="runs", default=True),
        st.Page("pages/overview.py", title="Overview", url_path="overview"),
    ],
    "Topics": [
        st.Page("pages/toxicity.py", title="Toxicity", url_path="toxicity"),
        st.Page("pages/bias.py", title="Bias", url_path="bias"),
        st.Page("pages/stereotypes.py", title="Stereotypes", url_path="stereotypes"),
        st.Page("pages/factuality.py", title="Factuality", url_path="factuality"),
        st.Page("pages/misuse.py", title="Misuse", url_path="misuse"),
        st.Page("pages/scorer_audit.py", title="Scorer self-audit", url_path="scorer-audit"),
    ],
    "Explore": [
        st.Page("pages/examples.py", title="Examples", url_path="examples"),
        st.Page("pages/compare.py", title="Compare", url_path="compare"),
        st.Page("pages/playground.py", title="Gated generation", url_path="playground"),
    ],
}

page = st.navigation(PAGES)
ui.sidebar()
page.run()
