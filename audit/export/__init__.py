"""Exports of a run into the formats other tools read (docs/integrations.md).

- ``inspect``: Inspect eval logs, one per suite (``audit.export.inspect_log``);
- ``model-card``: Hugging Face model-card section, ``model-index`` and ``.eval_results``
  (``audit.export.model_card``);
- ``csv`` / ``parquet``: records, metrics, groups and gates tables (``audit.export.tables``);
- JUnit XML of gates or comparisons (``audit.export.junit``; ``--junit`` on run, gate, compare).

Exporters reshape figures computed in ``audit/`` (summary.json); none computes statistics.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

FORMATS = ("inspect", "model-card", "csv", "parquet")
DEFAULT_DIRS = {"inspect": "inspect", "model-card": "model-card", "csv": "tables", "parquet": "tables"}


def default_out(run_dir: Path, fmt: str) -> Path:
    return Path(run_dir) / "export" / DEFAULT_DIRS[fmt]


def export_run(
    run_dir: Path,
    fmt: str,
    out: Path | None = None,
    *,
    card: Path | None = None,
    hub_datasets: dict[str, str] | None = None,
    model_name: str | None = None,
    source_url: str | None = None,
    allow_damaged: bool = False,
) -> list[Path]:
    """Write one export of a run folder; returns the files written. A damaged, incomplete, failed or
    running run gets no model card (hub metadata) unless ``allow_damaged``, which states the damage
    in its YAML (``audit.export.hub_guard``)."""
    from audit.core.errors import UsageError

    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}' (choose from {', '.join(FORMATS)})")
    out = Path(out) if out is not None else default_out(run_dir, fmt)
    if fmt in ("csv", "parquet"):
        from audit.export.tables import write_tables

        return write_tables(Path(run_dir), out, fmt)
    from audit.export.common import load_run_data

    data = load_run_data(run_dir)
    if fmt == "inspect":
        from audit.export.inspect_log import write_inspect_logs

        return write_inspect_logs(data, out)
    from audit.export.hub_guard import hub_problem
    from audit.export.model_card import write_model_card

    damage = hub_problem(Path(run_dir), data.manifest, data.summary)
    if damage and not allow_damaged:
        raise UsageError(
            f"{run_dir}: no hub metadata from this run ({damage}); --allow-damaged writes it with the damage stated"
        )
    return write_model_card(data, out, card=card, hub_datasets=hub_datasets, model_name=model_name,
                            source_url=source_url, damage=damage)


def after_run(run_dir: Path, junit: Path | None = None, echo: Callable[[str], None] = print) -> None:
    """At the end of ``lm-audit run``: write the JUnit file (``--junit``) and say how to get the
    Inspect log, the model-card section and the tables."""
    run = shlex.quote(str(run_dir))
    if junit is not None:
        from audit.export.junit import gates_junit, write_junit
        from audit.summary.read import load_summary

        write_junit(junit, gates_junit(load_summary(Path(run_dir))))
        echo(f"junit: {junit}")
    echo("export (docs/integrations.md):")
    echo(f"  lm-audit export {run} --format inspect      # Inspect eval logs -> {default_out(run_dir, 'inspect')}"
         f" (then: inspect view --log-dir {shlex.quote(str(default_out(run_dir, 'inspect')))})")
    echo(f"  lm-audit export {run} --format model-card   # model-card section, model-index, .eval_results"
         f" -> {default_out(run_dir, 'model-card')}")
    echo(f"  lm-audit export {run} --format csv          # records/metrics/groups/gates tables (or parquet)")
    if junit is None:
        echo(f"  lm-audit gate {run} --junit junit.xml       # JUnit XML of the gates, for CI")
