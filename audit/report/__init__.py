"""Report rendering: ``report.md`` and a self-contained ``report.html`` from a summary dict."""

from audit.report.html import render_html
from audit.report.markdown import render_markdown

__all__ = ["render_html", "render_markdown"]
