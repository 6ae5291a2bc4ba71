"""One work unit -> finished records: ``process_unit`` does the cache lookup, the batched
generation of the misses (or the log-likelihoods of a likelihood unit) and the batched scoring.
Every engine calls it, in this process or in a worker.
"""

from __future__ import annotations

import time
from typing import Any

from audit.core.types import Completion, GenParams, GenRequest, LoglikelihoodRequest, Record
from audit.models.base import ModelBackend, clean_completion
from audit.run.work_units import WorkUnit
from audit.scorers.base import PromptContext, Reference
from audit.store.cache import GenerationCache, cache_key
from audit.suites.answers import decision_scores
from audit.suites.panel import panel_scores


def unit_requests(unit: WorkUnit) -> list[GenRequest]:
    """The generation requests of a generate unit, in entry order."""
    return [GenRequest(key=e.seed_key, prompt=e.item.prompt, sample=e.sample) for e in unit.entries]


def unit_cache_keys(fingerprint: str, unit: WorkUnit) -> list[str]:
    """The generation-cache keys of a unit's requests (empty for likelihood units)."""
    if unit.task != "generate":
        return []
    params = GenParams.from_dict(unit.params)
    return [cache_key(fingerprint, r, params, unit.seed) for r in unit_requests(unit)]


def process_unit(model: ModelBackend, unit: WorkUnit, cache: GenerationCache | None) -> list[Record]:
    """Generate (or look up), score, and build the records of one unit."""
    t0 = time.perf_counter()
    extra: list[dict[str, Any]] = [{} for _ in unit.entries]
    scores: list[dict[str, float | None]] = [{} for _ in unit.entries]
    if unit.task == "likelihood":
        texts = [""] * len(unit.entries)
        _likelihood(model, unit, scores, extra)
        t1 = t2 = time.perf_counter()
    else:
        texts = _generate(model, unit, cache, extra)
        t1 = time.perf_counter()
        _score(unit, _read(unit, texts, scores, extra), scores)
        t2 = time.perf_counter()
    n = max(1, len(unit.entries))
    records = []
    for e, text, sc, ex in zip(unit.entries, texts, scores, extra, strict=True):
        records.append(
            Record(
                key=e.record_key,
                suite=unit.suite_id,
                item_id=e.item.item_id,
                template_id=e.item.template_id,
                sample=e.sample,
                prompt=e.item.prompt,
                completion=text,
                attributes=dict(e.item.attributes),
                scores=sc,
                extra=ex,
                timings={"generate_s": round((t1 - t0) / n, 6), "score_s": round((t2 - t1) / n, 6)},
            )
        )
    return records


def _generate(
    model: ModelBackend,
    unit: WorkUnit,
    cache: GenerationCache | None,
    extra: list[dict[str, Any]],
) -> list[str]:
    reqs = unit_requests(unit)
    keys = unit_cache_keys(model.info().fingerprint, unit)
    hits = cache.get_many(keys) if cache else {}
    todo = [i for i, k in enumerate(keys) if k not in hits]
    fresh: dict[int, Completion] = {}
    if todo:
        outs = model.generate([reqs[i] for i in todo], GenParams.from_dict(unit.params), unit.seed)
        fresh = dict(zip(todo, outs, strict=True))  # raw: the cache keeps it as it came
        if cache:
            cache.put_many((keys[i], c) for i, c in fresh.items())
    texts = []
    for i, k in enumerate(keys):
        # untrusted text: valid Unicode before scoring and the store (cached or fresh, the same note)
        c, repaired = clean_completion(hits.get(k) or fresh[i])
        if repaired:
            extra[i]["text_repaired"] = repaired
        if c.prompt_truncated:
            extra[i]["prompt_truncated_tokens"] = c.prompt_truncated
        extra[i]["n_tokens"] = c.n_tokens
        extra[i]["cached"] = k in hits
        texts.append(c.text)
    return texts


def _likelihood(
    model: ModelBackend, unit: WorkUnit, scores: list[dict[str, float | None]], extra: list[dict[str, Any]]
) -> None:
    reqs: list[LoglikelihoodRequest] = []
    where: list[tuple[int, str]] = []
    chat = bool(unit.params.get("chat"))
    for i, e in enumerate(unit.entries):
        framed = None
        if e.item.answer_prefix is not None:  # an answer frame (suites/answers.py): answers verbatim
            framed, templated = model.answer_context(e.item.context, e.item.answer_prefix, chat)
            extra[i]["chat_template"] = templated
        for name, option in e.item.options.items():
            ctx = e.item.context
            cont = option if not ctx else (option if option.startswith((" ", "\n")) else " " + option)
            if framed is not None:
                ctx, cont = framed, option
            reqs.append(LoglikelihoodRequest(context=ctx, continuation=cont))
            where.append((i, name))
    results = model.loglikelihood(reqs)
    for (i, name), res in zip(where, results, strict=True):
        scores[i][f"ll_{name}"] = res.logprob
        extra[i][f"ll_{name}_tokens"] = res.n_tokens
    if unit.panel:
        for sc in scores:
            sc.update(panel_scores(sc))
    for e, sc in zip(unit.entries, scores, strict=True):
        if e.item.answer_prefix is not None:
            sc.update(decision_scores(sc))


def _prompt_class(attributes: dict[str, Any]) -> str | None:
    """The item's declared prompt class (attribute ``prompt_class``: safe/unsafe), None if absent."""
    v = attributes.get("prompt_class")
    return str(v) if v is not None else None


def _read(
    unit: WorkUnit, texts: list[str], scores: list[dict[str, float | None]], extra: list[dict[str, Any]]
) -> list[str]:
    """Runs with attacks: what the scorers read of each answer (audit/attacks/answers.py: decoded from
    the attack's encoding, cut to its opening), score ``answer_readable`` and ``extra.answer``."""
    if not any("technique" in e.item.attributes for e in unit.entries):
        return texts
    from audit.attacks.answers import read_answers

    out = []
    read = read_answers([e.item.attributes for e in unit.entries], texts, [e.item.prompt for e in unit.entries])
    for r, sc, ex in zip(read, scores, extra, strict=True):
        if r.readable is not None:
            sc["answer_readable"] = r.readable
        if r.decoded is not None:
            ex["answer"] = r.decoded
        if r.echo:
            ex["answer_echo"] = True
        out.append(r.text)
    return out


def _score(unit: WorkUnit, texts: list[str], scores: list[dict[str, float | None]]) -> None:
    from audit.scorers.registry import get_scorer

    for name in unit.scorers:
        scorer = get_scorer(name)
        refs = None
        if scorer.needs_refs:
            refs = [Reference(correct=e.item.correct, incorrect=e.item.incorrect) for e in unit.entries]
        if getattr(scorer, "needs_prompts", False) and not refs:  # prompt-aware scorers (refusal) need the prompts
            ctx = [PromptContext(e.item.prompt, _prompt_class(e.item.attributes)) for e in unit.entries]
            out = scorer.score_in_context(texts, ctx)
        else:
            out = scorer.score(texts, refs)
        for sc, row in zip(scores, out, strict=True):
            sc.update(row)
