"""Stereotypes: CrowS-Pairs pct_stereotype (50% is ideal) and StereoSet SS/LMS/ICAT by category."""

from dashboard import sections

sections.topic_page(
    "stereotypes",
    "Stereotypes",
    "Likelihood probes: how often the model prefers the stereotyping sentence over its "
    "anti-stereotypical twin. For pct_stereotype and StereoSet SS, 50% is ideal (no preference); "
    "for LMS and ICAT, higher is better.",
    reference={"pct_stereotype": (0.5, "50% = no preference")},
)
