"""Validation of command-line values at the boundary: every mistake is one line and exit 2.

Used as argparse ``type=`` functions (``seed``, ``positive_int``) or called before any work starts
(``check_out_dir``, ``check_device``). Not a subcommand (the leading underscore keeps
``audit/cli.py`` from registering it).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from audit.core.errors import UsageError

MAX_SEED = 2**63 - 1
_DEVICE_RE = re.compile(r"^(cpu|mps|cuda(:\d{1,2})?)$")


def seed(text: str) -> int:
    """A seed: a whole number from 0 to 2**63 - 1."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed must be a whole number, not '{text}'") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed must be between 0 and 2**63 - 1, not {text}")
    return value


def check_out_dir(path: Path, flag: str = "--out") -> Path:
    """``path`` is (or can become) a writable folder: not a file, not under a file."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        where = "is a file" if probe == path else f"is under a file ({probe})"
        raise UsageError(f"{flag} {path} {where}; give a folder")
    import os

    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: {probe} is not writable")
    return path


def check_device(device: str | None) -> None:
    """``--device`` names a device this machine has (cpu, cuda, cuda:N, mps)."""
    if device is None:
        return
    if not _DEVICE_RE.match(device):
        raise UsageError(f"--device must be cpu, cuda, cuda:N or mps, not '{device}'")
    if device == "cpu":
        return
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--device mps: MPS is not available on this machine (use --device cpu)")
