"""``lm-audit run --model A --model B ...``: one run folder per model on the same items and seeds,
then the multi-model comparison (``compare_many``) written beside them and printed."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from audit.core.errors import UsageError
from audit.store.run_store import atomic_write_json, atomic_write_text, check_run_id


def model_slug(model: str) -> str:
    """A run-name-safe short name of a model argument (``openai:m@url`` -> ``openai_m_url``)."""
    name = Path(model.rstrip("/")).name if "/" in model and not model.startswith("openai:") else model
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
    return (slug or "model")[:40]


def run_names(base: str, models: Sequence[str]) -> list[str]:
    """``<base>-<model-slug>`` per model, made unique when two slugs collide."""
    names: list[str] = []
    for m in models:
        name = f"{base}-{model_slug(m)}"
        k = 2
        while name in names:
            name = f"{base}-{model_slug(m)}-{k}"
            k += 1
        names.append(check_run_id(name))
    return names


def run_many_models(config: Any, models: Sequence[str], echo: Callable[[str], None] = print) -> int:
    """Run ``config`` once per model (same suites, limits, seed and selection seed, hence the same
    items and per-record random streams), then compare the runs. Returns the worst gate exit code.

    Writes ``<out>/<base>-compare.json`` (the ``compare_many`` data) and ``<out>/<base>-compare.md``.
    """
    from audit.compare import compare_many
    from audit.compare.render import many_lines, render_many_markdown
    from audit.gates.evaluate import load_policy
    from audit.run.runner import run_audit

    if len(set(models)) < len(models):
        raise UsageError("--model lists the same model twice")
    policy = load_policy(config.policy)  # fail on a bad policy before any model loads
    base = config.name or datetime.now().strftime("%Y%m%d-%H%M%S")
    names = run_names(base, models)
    dirs: list[Path] = []
    code = 0
    for model, name in zip(models, names, strict=True):
        echo(f"== model {model}: run {name}")
        run_dir, c = run_audit(replace(config, model=model, name=name))
        echo(f"report: {run_dir / 'report.html'}")
        dirs.append(run_dir)
        code = max(code, c)
    result = compare_many(dirs, policy.stats, policy.compare)
    for line in many_lines(result):
        echo(line)
    out = Path(config.out)
    json_path, md_path = out / f"{base}-compare.json", out / f"{base}-compare.md"
    atomic_write_json(json_path, json.loads(json.dumps(result)))
    atomic_write_text(md_path, render_many_markdown(result))
    echo(f"comparison: {json_path} and {md_path}")
    return code
