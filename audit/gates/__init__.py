"""Gates: pass/fail thresholds on summary figures, from suite defaults or a policy file.
"""
