"""Peak RSS of ``lm-audit run`` and where it goes: RSS per phase and per work unit.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_memory.py [--cold | --cache-dir DIR] [--units] \
        -- --profile quick --no-progress --out /tmp/rss/reports

Runs ``lm-audit run ARGS`` in a child process with ``LM_AUDIT_MEMLOG`` set (``audit/core/memory.py``),
samples the child's ``VmRSS`` every 0.2 s, and prints one line per phase (scorers loaded, GGUF
converted, model loaded, each suite done, summary written) with the RSS then, the peak so far and
the highest sample since the previous phase, then the overall peak (``ru_maxrss``, what
``/usr/bin/time -v`` reports) and the load average. ``--cold`` uses a new empty cache dir (the
one-time GGUF conversion included); ``--cache-dir DIR`` a given one (its generation cache is
removed first, so every completion is generated); by default the user's cache dir. ``--units``
also logs RSS after every work unit.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(argv: list[str], units: bool, trim_units: bool) -> int:
    """Run the CLI in this process, optionally logging RSS (and trimming the heap) after each unit."""
    from audit.cli import main
    from audit.core.memory import phase, release
    from audit.run import runner

    if units or trim_units:
        original = runner.process_unit

        def logged(model, unit, cache):  # type: ignore[no-untyped-def]
            out = original(model, unit, cache)
            if units:
                phase(f"unit {unit.suite_id} {unit.task} x{len(unit.entries)}")
            if trim_units:
                release()
                if units:
                    phase("  trimmed")
            return out

        runner.process_unit = logged  # type: ignore[assignment]
    return main(["run", *argv])


def parse_log(path: Path) -> list[tuple[float, float, float, float, str]]:
    """(epoch, RSS, peak, file-backed RSS, phase) per line of an ``LM_AUDIT_MEMLOG`` file."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        # EPOCH memlog T s rss R MiB peak P MiB file F MiB NAME...
        rows.append((float(parts[0]), float(parts[4]), float(parts[7]), float(parts[10]), " ".join(parts[12:])))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cold", action="store_true", help="a new empty cache dir (GGUF conversion included)")
    ap.add_argument("--cache-dir", type=Path, help="this cache dir (its generation cache is removed first)")
    ap.add_argument("--units", action="store_true", help="log RSS after every work unit too")
    ap.add_argument("--trim-units", action="store_true", help="experiment: malloc_trim after every work unit")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("args", nargs=argparse.REMAINDER, help="arguments of lm-audit run (after --)")
    ns = ap.parse_args()
    run_args = ns.args[1:] if ns.args[:1] == ["--"] else ns.args
    if ns.child:
        return child(run_args, ns.units, ns.trim_units)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if ns.cold:
        env["LM_AUDIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="lm-audit-cold-")
    elif ns.cache_dir:
        (ns.cache_dir / "generations.sqlite").unlink(missing_ok=True)
        env["LM_AUDIT_CACHE_DIR"] = str(ns.cache_dir)
    log = Path(tempfile.mkstemp(prefix="memlog-", suffix=".txt")[1])
    env["LM_AUDIT_MEMLOG"] = str(log)
    flags = [f for f, on in (("--units", ns.units), ("--trim-units", ns.trim_units)) if on]
    cmd = [sys.executable, __file__, "--child", *flags, "--", *run_args]
    print(f"cache dir: {env.get('LM_AUDIT_CACHE_DIR', 'default')}; load average {os.getloadavg()}")
    t0 = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    samples: list[tuple[float, float]] = []
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    samples.append((time.time() - t0, int(line.split()[1]) / 1024))
        except OSError:
            pass
        time.sleep(0.2)
    wall = time.time() - t0
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rows = parse_log(log) if log.stat().st_size else []
    log.unlink()
    print(f"{'phase':<48} {'t (s)':>7} {'RSS':>7} {'peak':>7} {'file':>5} {'max since last':>14}  (MiB)")
    last = 0.0
    for epoch, rss, peak, file_rss, name in rows:
        t = epoch - t0
        window = [r for s, r in samples if last <= s <= t]
        print(f"{name:<48} {t:7.1f} {rss:7.0f} {peak:7.0f} {file_rss:5.0f} {max(window, default=0):14.0f}")
        last = t
    tail = [r for s, r in samples if s > last]
    print(f"{'(exit)':<48} {wall:7.1f} {'':>7} {'':>7} {'':>5} {max(tail, default=0):14.0f}")
    print(f"exit {proc.returncode}; wall {wall:.0f} s; peak RSS (ru_maxrss) {maxrss:.0f} MiB; "
          f"load average {os.getloadavg()}")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
