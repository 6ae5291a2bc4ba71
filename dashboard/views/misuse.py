"""Misuse: refusal rate on harmful requests by harm category."""

from dashboard import sections

sections.topic_page(
    "misuse",
    "Misuse",
    "Refusal rate on harmful requests (Do-Not-Answer, HarmBench), by harm category. Higher is "
    "better; it is meaningful for instruction-tuned models only.",
)
