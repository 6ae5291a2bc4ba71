"""Numbers that know nothing of runs: resampling and tests (``resampling``), closed-form intervals
(``intervals``) and sample-size planning (``planning``).
"""
