"""What a reviewer drills into: which records move a figure (``influence``) and where two scorers
disagree (``disagreement``).
"""
