"""Model-vs-model comparisons: paired tests on the items runs share, rankings and significance groups.

- ``compare_many(run_dirs)``: two or more runs, per figure (see its docstring for the data shape);
- ``audit.compare.report.compare_runs(a, b)``: two runs, deltas B − A with verdicts and thresholds;
- ``audit.compare.paired``: the statistics (exact McNemar, Newcombe interval, permutation tests).
"""

from __future__ import annotations

from audit.compare.figures import DamagedRunError, load_runs
from audit.compare.many import compare_many, letter_groups

__all__ = ["DamagedRunError", "compare_many", "letter_groups", "load_runs"]
