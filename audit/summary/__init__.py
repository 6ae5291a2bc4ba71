"""Records -> ``summary.json``: one suite's figures (``suite``, ``metrics``, ``groups``,
``paired``, ``estimates``) and the whole run (``build``).
"""
