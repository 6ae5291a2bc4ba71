"""Suite loading, validation, expansion and ``--limit`` sampling, one concern per module.

``audit.suite`` re-exports the public names; import from there.
"""
