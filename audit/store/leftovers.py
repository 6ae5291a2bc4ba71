"""Folders a failed start leaves behind: a run folder that holds nothing but its writer lock.

``lm-audit run`` takes the run folder's lock (``.lock``, ``RunStore.lock``) before it loads the
scorers and the model. When loading fails nothing else has been written, and the folder would stay
behind holding only ``.lock``. ``lm-audit run`` notes the run folders that exist before it starts
(``run_dirs``) and, when it fails, removes each new one that is unused (``remove_unused``): nothing
in it but ``.lock``, and no process holding that lock. A folder another run is filling, or one that
holds anything else, is never touched.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK = ".lock"


def run_dirs(out: Path) -> set[str]:
    """Names of the folders in ``out`` (empty when it does not exist)."""
    try:
        return {p.name for p in Path(out).iterdir() if p.is_dir() and not p.is_symlink()}
    except OSError:
        return set()


def remove_unused(run_dir: Path) -> bool:
    """Remove ``run_dir`` if it holds only an unheld ``.lock``; True when it was removed."""
    run_dir = Path(run_dir)
    lock = run_dir / LOCK
    try:
        if run_dir.is_symlink() or {p.name for p in run_dir.iterdir()} != {LOCK} or lock.is_symlink():
            return False
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # another process is starting a run here
        lock.unlink()
        run_dir.rmdir()  # fails, and keeps the folder, if anything appeared meanwhile
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
