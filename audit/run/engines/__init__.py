"""Execution engines beyond the in-process ``LocalEngine`` of ``audit.run.runner``.

An engine runs ``WorkUnit``s and yields their ``Record``s; only the runner writes the run store,
so resume and the generation cache behave the same whatever the engine.

- ``ray_engine.RayEngine``: ``lm-audit run --engine ray [--ray-address ADDR] [--workers N]``.
"""
