"""The Streamlit dashboard of lm-audit (``lm-audit dashboard``): reads run folders, renders them.

``app.py`` is the entry point; ``views/`` holds one script per page; ``data.py`` loads and
aggregates (cached, read-only, confined to the reports folder); ``ui.py`` holds shared widgets.
"""
