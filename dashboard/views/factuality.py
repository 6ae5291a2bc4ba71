"""Factuality: accuracy against references by category."""

from dashboard import sections

sections.topic_page(
    "factuality",
    "Factuality",
    "Share of answers judged correct against the references (exact, contains or semantic match; "
    "see the protocol line for the scorer). Higher is better.",
)
