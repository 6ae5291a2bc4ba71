"""Named suite metrics over records: the ``Frame`` and the metric registry (``registry``) and the
metric families that register in it (``bbq``, ``overrefusal``).
"""
