"""A run's status as readers should report it: ``complete``, ``running``, ``interrupted`` or what the
manifest says (``failed``, ``unknown``).

A writer sets ``running`` when it starts and ``complete`` when the run (the last look of an
``--until-decided`` run) is finished; an exception it sees sets ``interrupted``. A SIGKILL or power
loss leaves ``running`` behind, so a manifest that says ``running`` while no process holds the run
folder's writer lock (``.lock``) is reported ``interrupted``: re-running the same command resumes it.
Only ``complete`` runs pass a gate or get hub metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

COMPLETE = "complete"


def is_being_written(run_dir: Path | str) -> bool:
    """Whether a process holds the run folder's writer lock now. The probe takes a shared lock for
    an instant; a writer starting in that instant retries (``RunStore.lock``)."""
    import fcntl

    path = Path(run_dir) / ".lock"
    if not path.is_file():
        return False
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return False
    try:
        fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        fh.close()  # also drops the probe's lock
    return False


def run_status(run_dir: Path | str, manifest: dict[str, Any]) -> str:
    """The manifest's status, with ``running`` read as ``interrupted`` when nothing writes the run."""
    status = manifest.get("status")
    if not isinstance(status, str) or not status:
        return "unknown"
    if status == "running" and not is_being_written(run_dir):
        return "interrupted"
    return status


def incomplete_reason(status: str) -> str | None:
    """One line saying why a run with this status is not judged as finished, or None when complete."""
    if status == COMPLETE:
        return None
    if status in ("running", "interrupted"):
        hint = (
            "wait for it to finish"
            if status == "running"
            else "re-run the same 'lm-audit run' command to resume it"
        )
        return f"the run is not complete (status: {status}); {hint}"
    return f"the run is not complete (status: {status:.40})"
