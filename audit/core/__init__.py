"""Plain shared data that imports nothing else of audit: record types, errors, score directions,
process memory and strict YAML policy reading.
"""
