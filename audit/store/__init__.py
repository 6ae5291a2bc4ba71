"""The run folder on disk: ``manifest.json`` and ``records.jsonl`` (``run_store``), the generation
cache (``cache``) and reviewer overrides (``overrides``).
"""
