"""Running an audit: planning work units, processing one unit, the runner and its engines, and
``--until-decided``.
"""
