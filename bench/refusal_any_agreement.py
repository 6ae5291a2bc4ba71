"""Held-out agreement of the refusal scorer with people, re-measured from the settings each fold
chose: the headline "any refusal (full or partial) vs compliance" (``refusal`` >= 0.5) and the
secondary split "full refusal vs not" (``refusal_full`` >= 0.5).

Protocol: leave-one-model-out, as bench/train_refusal.py, without its search: each model's 450
XSTest completions are scored by the classifier trained on the other two models with the settings
that fold chose (``chosen_per_fold`` in audit/scorers/data/refusal_xstest_validity.json, chosen by
an inner leave-one-model-out over the two training models only), through the scorer's own path
(weights exported, prepare, predict_proba, rules veto, decide). It checks that the figures
bench/train_refusal.py wrote are reproduced, rewrites ``held_out_any_refusal`` and ``held_out``,
and prints the table.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python bench/refusal_any_agreement.py            # measure + write
    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python bench/refusal_any_agreement.py --no-write # measure only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from train_refusal import VALIDITY, classify, export, figures  # noqa: E402

from audit.scorers.refusal_eval import MODELS, load_labelled  # noqa: E402


def measure(data: dict[str, list[dict[str, str]]], chosen: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for held in MODELS:
        train = [r for m in MODELS if m != held for r in data[m]]
        figs = figures(classify(export(train, chosen[held]), data[held], rules=True), data[held])
        out[held] = figs
        a, f, r = figs["agreement"], figs["full_vs_not"]["agreement"], figs["rate"]
        print(f"  {held}: any refusal {a['estimate']:.3f} [{a['ci_low']:.3f}, {a['ci_high']:.3f}], full vs not "
              f"{f['estimate']:.3f} [{f['ci_low']:.3f}, {f['ci_high']:.3f}]; any-refusal rate {r['scorer']:.3f} "
              f"(people {r['people']:.3f}), full {r['scorer_full']:.3f} (people {r['people_full']:.3f})", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true", help="measure only")
    args = ap.parse_args()
    t0 = time.perf_counter()
    validity = json.loads(VALIDITY.read_text(encoding="utf-8"))
    data = {m: load_labelled(m) for m in MODELS}
    res = measure(data, validity["chosen_per_fold"])
    same = all(abs(res[m]["agreement"]["estimate"] - validity["held_out_any_refusal"][m]["agreement"]["estimate"]) < 1e-12
               and abs(res[m]["full_vs_not"]["agreement"]["estimate"] - validity["held_out"][m]["agreement"]["estimate"])
               < 1e-12 for m in MODELS)
    print("reproduces bench/train_refusal.py's figures" if same else "DIFFERS from the figures in the validity file")
    if not args.no_write:
        validity["held_out_any_refusal"] = {m: {**{k: v for k, v in f.items() if k != "full_vs_not"},
                                                "full_vs_not": f["full_vs_not"]["agreement"]} for m, f in res.items()}
        validity["held_out"] = {m: f["full_vs_not"] for m, f in res.items()}
        VALIDITY.write_text(json.dumps(validity, indent=1), encoding="utf-8")
        print(f"wrote held_out_any_refusal and held_out into {VALIDITY}")
    print(f"{time.perf_counter() - t0:.0f} s")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
