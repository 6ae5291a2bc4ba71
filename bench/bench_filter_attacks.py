"""The filter under attack (issue #26): bypass and false-block rates per technique.

Runs ``audit.guard.attack_eval.evaluate_attacks`` with every technique (``--attacks all``: the
attack registry's and the filter's own obfuscations) on the obfuscation set (40 toxic texts and their benign twins) and the held-out texts (300 toxic
RealToxicityPrompts prompts, XSTest's 250 safe prompts), for the output and the input checks of
a policy, and prints one table per stage plus whether every technique meets the targets (bypass
<= 0.05, false block on benign twins <= 0.05). It is the same computation as
``lm-audit gate-eval --attacks all --no-latency``.

Usage (offline, no model; 10-20 minutes on 2 shared CPU cores, most of it the held-out texts):

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_filter_attacks.py [--policy default]
        [--attacks all] [--held-out 300] [--json FILE]

Exit code 0 when every technique meets both targets on the obfuscation set, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.guard.attack_eval import evaluate_attacks, render_attacks_markdown, resolve_techniques
from audit.guard.policy import load_policy


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default=None, help="filter policy (default: built-in)")
    ap.add_argument("--attacks", default="all", help="NAME[,NAME] or all (default all)")
    ap.add_argument("--held-out", type=int, default=300, help="held-out toxic RTP prompts (0: none)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    policy = load_policy(args.policy)
    attacks = resolve_techniques(args.attacks)
    t0 = time.perf_counter()
    stages = [s for s, checks in (("output", policy.output_checks), ("input", policy.input_checks)) if checks]
    results = {s: evaluate_attacks(policy, attacks, s, held_out=args.held_out) for s in stages}
    elapsed = time.perf_counter() - t0
    for r in results.values():
        print("\n".join(render_attacks_markdown(r)))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"policy {policy.name}; {len(attacks)} techniques; {elapsed:.1f} s on {platform.machine()}, load average {load}")
    ok = all(r["all_meet_target"] for r in results.values())
    print("every technique meets both targets" if ok else "some technique misses a target")
    if args.json:
        payload = {"policy": policy.name, "elapsed_s": round(elapsed, 1), "load_average": load, "stages": results}
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
