"""Inspect (UK AISI ``inspect_ai``) eval logs: one ``EvalLog`` JSON file (format version 2) per suite.

Written as plain JSON, so exporting needs no inspect-ai; the tests read every file back with
``inspect_ai.log.read_eval_log`` (the dev extra), and ``inspect view`` opens the folder.

Mapping (a suite is an Inspect task, a prompt x sample record is a sample):

- ``eval``: task = suite id, task_version = suite version, model = ``<backend>/<model name>``,
  ``model_generate_config`` = the suite's generation protocol (max_tokens, temperature, top_p,
  top_k, seed), ``config.epochs`` = samples per prompt, ``metadata.lm_audit`` = protocol, seeds,
  model fingerprint, random-weights flag, scorer versions, data hash and the command;
- ``samples``: id = the record's item id, epoch = sample index + 1, input = the prompt, the
  completion as the assistant message and ``output``, one Inspect score per score key (a score of
  null, i.e. not computed, is left out), metadata = the group attributes plus ``lm_audit``
  (record key, template, overridden by a reviewer);
- ``results.scores``: one entry per figure of ``summary.json`` (metrics, then group gaps) with
  metrics ``estimate``, ``ci_low``, ``ci_high`` and one per group cell (Inspect's ``group`` field
  is the attribute), each cell's CI in its metadata; the gates of the suite are in
  ``results.metadata.lm_audit.gates``.

Likelihood suites have no prompt or completion per record; their samples say so in ``input``.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

from audit.export.common import (
    RunData,
    cells,
    ci_level,
    finite,
    gate_results,
    producer,
    safe_name,
    suite_figures,
)

LOG_VERSION = 2
_STATUS = {"complete": "success", "running": "started", "interrupted": "cancelled"}


def clean_text(s: Any) -> str:
    """Model text as valid UTF-8 (lone surrogates would make the file unreadable)."""
    text = "" if s is None else str(s)
    return text.encode("utf-8", "replace").decode("utf-8")


def _model_id(model: dict[str, Any]) -> str:
    return f"{model.get('backend') or 'lm-audit'}/{model.get('name') or 'unknown'}"


def _eval_id(run_id: str, suite: str) -> str:
    """A stable id (Inspect uses short random ids; ours depend on the run and suite only)."""
    return f"{zlib.crc32(f'{run_id}/{suite}'.encode()):08x}{zlib.crc32(f'{suite}/{run_id}'.encode()):08x}"


def _stop_reason(rec: dict[str, Any], max_new_tokens: Any) -> str:
    n = (rec.get("extra") or {}).get("n_tokens")
    if isinstance(n, int) and isinstance(max_new_tokens, int) and max_new_tokens > 0:
        return "max_tokens" if n >= max_new_tokens else "stop"
    return "unknown"


def _sample(rec: dict[str, Any], model_id: str, gen: dict[str, Any], likelihood: bool,
            overridden: set[str]) -> dict[str, Any]:
    prompt, completion = clean_text(rec.get("prompt")), clean_text(rec.get("completion"))
    if likelihood and not prompt:
        prompt = f"(log-likelihood item {clean_text(rec.get('item_id'))}: options are scored, nothing is generated)"
    scores = {
        str(k): {"value": f}
        for k, v in (rec.get("scores") or {}).items()
        if (f := finite(v)) is not None
    }
    assistant = {"role": "assistant", "content": completion, "source": "generate", "model": model_id}
    meta = {str(k): v for k, v in (rec.get("attributes") or {}).items()}
    meta["lm_audit"] = {
        "key": rec.get("key"),
        "item_id": rec.get("item_id"),
        "template_id": rec.get("template_id"),
        "sample": rec.get("sample"),
        "overridden": rec.get("key") in overridden,
        "extra": rec.get("extra") or {},
    }
    sample: dict[str, Any] = {
        "id": str(rec.get("item_id")),
        "epoch": int(rec.get("sample") or 0) + 1,
        "input": prompt,
        "target": "",
        "messages": [{"role": "user", "content": prompt, "source": "input"}, assistant],
        "output": {
            "model": model_id,
            "choices": [{"message": assistant, "stop_reason": _stop_reason(rec, gen.get("max_new_tokens"))}],
            "completion": completion,
        },
        "scores": scores,
        "metadata": meta,
    }
    timings = rec.get("timings") or {}
    total = sum(v for v in timings.values() if isinstance(v, int | float))
    if total:
        sample["total_time"] = round(float(total), 6)
    return sample


def _metric(name: str, value: float, group: str | None = None, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "value": value, "params": {}}
    if group is not None:
        out["group"] = group
    if meta:
        out["metadata"] = meta
    return out


def _eval_score(fig: dict[str, Any], level: float) -> dict[str, Any] | None:
    metrics: dict[str, Any] = {}
    for key in ("estimate", "ci_low", "ci_high"):
        v = finite(fig.get(key))
        if v is not None:
            metrics[key] = _metric(key, v)
    for attr, value, cell in cells(fig.get("by") or {}):
        v = finite(cell.get("estimate"))
        if v is None:
            continue
        meta = {k: cell.get(k) for k in ("ci_low", "ci_high", "n", "n_clusters") if cell.get(k) is not None}
        metrics[f"{attr}:{value}"] = _metric(value, v, group=attr, meta=meta)
    if not metrics:
        return None
    n = fig.get("n")
    return {
        "name": str(fig["figure"]),
        "scorer": str(fig.get("score") or fig.get("metric") or "lm-audit"),
        "scored_samples": n if isinstance(n, int) else None,
        "params": {"metric": fig.get("metric")},
        "metrics": metrics,
        "metadata": {
            "kind": fig.get("kind"),
            "ci_level": fig.get("ci_level") or level,
            "method": fig.get("method"),
            "n": n,
            "higher_is": fig.get("higher_is"),
            "ideal": fig.get("ideal"),
            "scale": fig.get("scale"),
            "warnings": fig.get("warnings") or [],
            "uninformative": fig.get("uninformative", False),
        },
    }


def build_eval_log(data: RunData, suite: str) -> dict[str, Any]:
    """The ``EvalLog`` of one suite of a run, as a JSON-ready dict."""
    manifest, summary = data.manifest, data.summary
    sm = (manifest.get("suites") or {})[suite]
    ss = (summary.get("suites") or {}).get(suite) or {}
    gen = sm.get("generation") or {}
    model = data.model
    model_id = _model_id(model)
    likelihood = sm.get("task") == "likelihood"
    records = data.suite_records(suite)
    level = ci_level(summary)
    samples = [_sample(r, model_id, gen, likelihood, data.overridden) for r in records]
    item_ids = list(dict.fromkeys(s["id"] for s in samples))
    scores = [e for f in suite_figures(ss) if (e := _eval_score(f, level)) is not None]
    gates = [g for g in gate_results(summary) if g.get("suite") == suite]
    created = manifest.get("created") or summary.get("created")
    protocol = ss.get("protocol") or {}
    status = _STATUS.get(str(manifest.get("status")), "started")
    damaged = summary.get("damaged")
    spec: dict[str, Any] = {
        "eval_id": _eval_id(data.run_id, suite),
        "run_id": data.run_id,
        "created": created,
        "task": suite,
        "task_id": str(sm.get("data_hash") or ""),
        "task_version": str(sm.get("version") or 0),
        "task_display_name": sm.get("title") or suite,
        "task_args": {k: sm.get(k) for k in ("protocol", "limit", "selection_seed") if sm.get(k) is not None},
        "solver": "lm-audit/loglikelihood" if likelihood else "lm-audit/generate",
        "tags": ["lm-audit"] + (["random-weights"] if model.get("random_weights") else []),
        "dataset": {"name": suite, "location": sm.get("path"), "samples": len(item_ids),
                    "sample_ids": item_ids, "shuffled": False},
        "model": model_id,
        "model_generate_config": {
            k: v for k, v in {
                "max_tokens": gen.get("max_new_tokens"), "temperature": gen.get("temperature"),
                "top_p": gen.get("top_p"), "top_k": gen.get("top_k"), "seed": manifest.get("seed"),
                "stop_seqs": list(gen.get("stop") or []) or None,
            }.items() if v is not None and not likelihood
        },
        "model_args": {"fingerprint": model.get("fingerprint"), "random_weights": bool(model.get("random_weights"))},
        "config": {"epochs": int(gen.get("samples") or 1), "limit": sm.get("limit")},
        "packages": {str(k): str(v) for k, v in (manifest.get("packages") or {}).items()},
        "metadata": {
            "lm_audit": {
                "producer": producer(),
                "protocol": protocol,
                "seed": manifest.get("seed"),
                "selection_seed": manifest.get("selection_seed"),
                "engine": manifest.get("engine"),
                "command": manifest.get("command"),
                "model": {k: model.get(k) for k in ("name", "backend", "fingerprint", "random_weights")},
                "scorers": {s: (manifest.get("scorers") or {}).get(s) for s in sm.get("scorers") or []},
                "group_attributes": sm.get("group_attributes") or [],
                "citation": sm.get("citation"),
                "licence": sm.get("licence"),
            }
        },
    }
    log: dict[str, Any] = {
        "version": LOG_VERSION,
        "status": "error" if damaged else status,
        "eval": spec,
        "plan": {"name": "plan", "steps": [{"solver": spec["solver"], "params": {}}], "config": {}},
        "results": {
            "total_samples": len(samples),
            "completed_samples": len(samples),
            "scores": scores,
            "metadata": {"lm_audit": {"protocol": protocol.get("text"), "gates": gates,
                                      "n_items": ss.get("n_items"), "n_records": ss.get("n_records")}},
        },
        "stats": {"started_at": created or "", "completed_at": manifest.get("finished") or "", "model_usage": {}},
        "samples": samples,
    }
    if damaged:
        log["error"] = {"message": str(damaged.get("reason") or "damaged run"), "traceback": "", "traceback_ansi": ""}
    return log


def log_file_name(data: RunData, suite: str) -> str:
    """Inspect's naming convention: ``<created>_<task>_<id>.json`` (``:`` replaced by ``-``)."""
    created = str(data.manifest.get("created") or "1970-01-01T00:00:00Z").replace("Z", "+00:00")
    stamp = created.replace(":", "-")
    return f"{stamp}_{safe_name(suite)}_{_eval_id(data.run_id, suite)}.json"


def write_inspect_logs(data: RunData, out_dir: Path) -> list[Path]:
    """One Inspect eval log per suite of the run into ``out_dir``; returns the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for suite in data.manifest.get("suites") or {}:
        log = build_eval_log(data, suite)
        path = out_dir / log_file_name(data, suite)
        text = json.dumps(log, ensure_ascii=False, allow_nan=False, indent=1, default=str)
        path.write_text(text + "\n", encoding="utf-8")
        paths.append(path)
    return paths
