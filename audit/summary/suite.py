"""One suite's summary: ``summarize_suite`` computes, from the suite's records, every declared
metric (overall and per ``by`` attribute), per-group comparisons of every score (per-group value,
overall, gap, each group versus overall), paired permutation tests on counterfactual pairs with
Holm correction and Cohen's dz, and the worst examples. Every CI is closed-form over the clusters
(``audit/summary/estimates.py`` says which method each kind of figure gets), inside the figure's
range, so figures are reproducible. ``protocol_of`` is the generation protocol every figure quotes.

The parts live in ``summary_metrics`` (metrics), ``summary_groups`` (group comparisons and gaps),
``summary_paired`` (paired tests) and ``summary_estimates`` (the deferred CIs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from audit.core.score_directions import scorer_directions
from audit.core.score_ranges import scorer_ranges
from audit.gates.evaluate import StatsSettings
from audit.metrics.frame import Frame
from audit.stats.resampling import clean_float
from audit.summary.attacks import attack_section, has_attacks, is_attack_spec, split_records
from audit.summary.estimates import Pending
from audit.summary.groups import finish_gaps, group_comparisons, group_entries, group_score_keys
from audit.summary.metrics import default_metric_specs, derive_likelihood_scores, metric_entries
from audit.summary.paired import paired_tests

N_WORST = 5
# what each figure of a group comparison uses (each figure also names its own ``method``)
GROUP_METHODS = (
    "by_group/overall: Wilson (0/1 scores) or bounded-mean interval (cluster-robust se); "
    "gap: pairwise t; vs_overall, mean_of_groups: linearized cluster t; resampling unit: clusters"
)


def protocol_of(suite_manifest: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    """The generation protocol and scorer versions of a suite, with a one-line text to quote."""
    gen = suite_manifest.get("generation") or {}
    versions = {}
    for name in suite_manifest.get("scorers", []):
        info = (manifest.get("scorers") or {}).get(name, {})
        versions[name] = f"{info.get('name', name)} {info.get('version', '?')}".strip()
    proto: dict[str, Any] = {
        "name": suite_manifest.get("protocol", "default"),
        "task": suite_manifest.get("task", "generate"),
        "samples": gen.get("samples", 1),
        "max_new_tokens": gen.get("max_new_tokens"),
        "temperature": gen.get("temperature"),
        "top_p": gen.get("top_p"),
        "do_sample": gen.get("do_sample", True),
        "seed": manifest.get("seed"),
        "scorers": versions,
    }
    scorer_text = ", ".join(f"{k}={v.split(' ', 1)[-1]}" for k, v in versions.items())
    if proto["task"] == "likelihood":
        text = "log-likelihood of each option (sum of token log-probs), no sampling"
        if gen.get("chat"):  # answer frames (suites/answers.py): the chat template where the model has one
            has = bool(((manifest.get("model") or {}).get("details") or {}).get("chat_template"))
            proto["chat_template"] = has
            text += ", in the model's chat template" if has else ", plain text (the model has no chat template)"
    else:
        greedy = not proto["do_sample"] or (proto["temperature"] or 0) <= 0
        decoding = "greedy" if greedy else f"T={proto['temperature']}, top_p={proto['top_p']}"
        text = f"k={proto['samples']}, {proto['max_new_tokens']} tokens, {decoding}"
        coupling = gen.get("coupling")
        if coupling and not greedy:
            proto["coupling"] = coupling
            backend = (manifest.get("model") or {}).get("backend")
            text += f", {coupling}-coupled seeds" if backend in (None, "hf") else (
                f", {coupling} coupling not applied ({backend} samples on its server)"
            )
    text = f"{text}, seed={proto['seed']}" + (f", {scorer_text}" if scorer_text else "")
    if proto["name"] not in (None, "default"):
        text = f"protocol {proto['name']}: {text}"
    proto["text"] = text
    return proto


def _worst_examples(frame: Frame, keys: list[str], n: int = N_WORST) -> list[dict[str, Any]]:
    out = []
    for key in keys:
        direction = frame.direction(key)
        if direction not in ("worse", "better"):
            continue
        v = frame.score(key)
        ok = np.flatnonzero(np.isfinite(v))
        if ok.size == 0:
            continue
        order = ok[np.argsort(-v[ok] if direction == "worse" else v[ok], kind="stable")][:n]
        for i in order:
            out.append(
                {
                    **frame.texts(i),
                    "score": key,
                    "value": clean_float(v[i]),
                    "attributes": frame.attributes[i],
                }
            )
    return out


def summarize_suite(
    suite_id: str,
    suite_manifest: dict[str, Any],
    records: Sequence[Any],
    manifest: dict[str, Any],
    stats: StatsSettings,
) -> dict[str, Any]:
    plain_records, attack_records = split_records(records) if has_attacks(records) else (records, [])
    # every figure but the attack ones: plain prompts
    frame = Frame(plain_records, scorer_directions(manifest), scorer_ranges(manifest))
    protocol = protocol_of(suite_manifest, manifest)
    task = suite_manifest.get("task", "generate")
    specs = list(suite_manifest.get("metrics") or []) or default_metric_specs(frame, task)
    attack_specs = [s for s in specs if is_attack_spec(s)]
    specs = [s for s in specs if not is_attack_spec(s)]
    if task == "likelihood":
        derive_likelihood_scores(frame, specs)
    unit = "counterfactual sets" if frame.has_pairs else "prompts"
    pending = Pending(stats.ci_level)
    metrics = metric_entries(frame, specs, pending, protocol["text"])
    keys = group_score_keys(frame)
    if (
        task == "likelihood"
        and "stereotype_preferred" not in keys
        and "stereotype_preferred" in frame._score_cache
    ):
        keys.append("stereotype_preferred")
    comparisons = group_comparisons(frame, suite_manifest.get("group_attributes") or [])
    groups = group_entries(frame, comparisons, keys, pending, stats)
    pending.fill()
    finish_gaps(groups)
    for g in groups:
        g["method"] = GROUP_METHODS
        g["protocol"] = protocol["text"]
    tests = paired_tests(frame, comparisons, keys, stats)
    for t in tests:
        t["protocol"] = protocol["text"]
    attacks = _attacks(suite_id, attack_records, attack_specs, manifest, stats, protocol["text"], metrics)
    return {
        "title": suite_manifest.get("title", suite_id),
        "task": task,
        "n_items": frame.n_items,
        "n_records": frame.n,
        "n_items_planned": suite_manifest.get("n_items"),
        "resampling_unit": unit,
        "protocol": protocol,
        "metrics": metrics,
        "groups": groups,
        "tests": tests,
        "gates": [],
        "examples": {"worst": _worst_examples(frame, keys), **_disagreement(frame)},
        **_disagreement_summary(frame),
        **attacks,
    }


def _attacks(suite_id: str, records: list[Any], specs: list[dict[str, Any]], manifest: dict[str, Any],
             stats: StatsSettings, protocol: str, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs with attacks: the attack metrics (appended to ``metrics``, so gates read them) over all
    records, plain and attacked, resampling each plain prompt with its attacked versions; and the
    ``attacks`` section (audit/summary/attacks.py)."""
    if not records:
        return {}
    frame = Frame(records, scorer_directions(manifest), scorer_ranges(manifest))
    pending = Pending(stats.ci_level)
    entries = metric_entries(frame, specs, pending, protocol)
    pending.fill()
    metrics.extend(entries)
    return {"attacks": attack_section(frame, entries, stats.ci_level, protocol)}


def _disagreement(frame: Frame) -> dict[str, Any]:
    """examples["disagreement"] when records carry two toxicity opinions (audit/review/disagreement.py)."""
    from audit.review.disagreement import disagreement_examples

    rows = disagreement_examples(frame)
    return {"disagreement": rows} if rows else {}


def _disagreement_summary(frame: Frame) -> dict[str, Any]:
    from audit.review.disagreement import disagreement_summary

    found = disagreement_summary(frame)
    return {"scorer_disagreement": found} if found else {}
