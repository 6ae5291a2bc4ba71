"""Process memory: RSS readings at phase boundaries, and handing freed heap back to the system.

``phase("model loaded")`` records the resident set size (``VmRSS``) and its high-water mark
(``VmHWM``) when ``LM_AUDIT_MEMLOG`` is set: ``1`` writes one line per phase to stderr, any other
value is a file the lines are appended to, each after the epoch time (``bench/bench_memory.py``
reads it). Unset, it costs one
environment lookup.

``release()`` runs the garbage collector and glibc's ``malloc_trim(0)``: after a phase that
allocated and freed large temporary buffers (GGUF dequantization, a batch's logits), glibc keeps
the freed pages mapped in its arenas, so the resident set stays at the phase's peak although
nothing uses the memory. Trimming returns those pages; it changes no result.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys
import time
from functools import cache

_T0 = time.perf_counter()


def status_mib() -> dict[str, float]:
    """This process's memory figures from /proc/self/status in MiB (``VmRSS``, ``VmHWM`` = peak RSS,
    ``RssAnon``, ``RssFile``, ...); empty where /proc is missing."""
    out: dict[str, float] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if value.strip().endswith("kB"):
                    out[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def rss_mib() -> tuple[float, float]:
    """(current RSS, peak RSS so far) of this process in MiB; (0, 0) where /proc is missing."""
    st = status_mib()
    return st.get("VmRSS", 0.0), st.get("VmHWM", 0.0)


def phase(name: str) -> None:
    """Log RSS at a phase boundary when ``LM_AUDIT_MEMLOG`` is set (see the module docstring)."""
    dest = os.environ.get("LM_AUDIT_MEMLOG")
    if not dest:
        return
    st = status_mib()
    line = (
        f"memlog {time.perf_counter() - _T0:8.1f}s rss {st.get('VmRSS', 0):7.0f} MiB peak {st.get('VmHWM', 0):7.0f} "
        f"MiB file {st.get('RssFile', 0):5.0f} MiB  {name}\n"
    )
    if dest == "1":
        sys.stderr.write(line)
        return
    with open(dest, "a", encoding="utf-8") as fh:  # the epoch first, to line up with outside samples
        fh.write(f"{time.time():.2f} {line}")


@cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return lib if hasattr(lib, "malloc_trim") else None


def release() -> bool:
    """Collect garbage and return the heap's free pages to the system (glibc ``malloc_trim``).
    True when the trim ran (Linux with glibc), False elsewhere (only the collection then)."""
    gc.collect()
    lib = _libc()
    if lib is None:
        return False
    lib.malloc_trim(0)
    return True
