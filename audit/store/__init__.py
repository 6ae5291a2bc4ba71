"""The run folder on disk: ``manifest.json`` and ``records.jsonl`` (``run_store`` writes and judges
a run, ``records`` reads and checks the records file line by line), the generation cache
(``cache``) and reviewer overrides (``overrides``).
"""
