"""An OpenAI-compatible HTTP server with the gate applied: ``lm-audit serve``.

Endpoints: ``POST /v1/completions``, ``POST /v1/chat/completions``, ``POST /v1/moderations``
(``audit/guard/moderation.py``), ``GET /v1/models``, ``GET /healthz``. Access control (API key,
Host allow-list, no CORS) is in ``audit/guard/access.py``. Responses keep the standard shapes (``choices[].text`` or
``choices[].message.content``, ``usage``, ``model``, ``id``); each choice carries its gate
decision under ``gate`` and the top-level ``gate`` summarises them. A blocked choice has
``finish_reason: "content_filter"`` and the policy's refusal message as its text.

Protection: request bodies over ``max_body_bytes`` get 413; malformed JSON, wrong types, unknown
roles, too many tokens or prompts get 400 with an OpenAI-style ``{"error": {...}}`` body; at most
``max_concurrency`` generations run at once with ``max_queue`` more waiting (then 429); a request
that takes longer than ``timeout_s`` gets 504. ``stream: true`` is answered with server-sent
events, checked as tokens arrive and stopped early when a check fails. Binds to 127.0.0.1 unless
told otherwise.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from audit.core.types import GenParams
from audit.guard.access import AccessControl, AccessMiddleware
from audit.guard.decision import GateResult
from audit.guard.generator import GatedGenerator
from audit.guard.http_limits import ApiError, BodyLimit, Slots, error_response
from audit.guard.moderation import add_moderation_route
from audit.guard.server_requests import ChatRequest, CompletionRequest, RequestBase, ServerLimits
from audit.models.base import clean_text


def _gate_summary(gate: GatedGenerator, results: list[GateResult]) -> dict[str, Any]:
    return {
        "policy": gate.policy.name,
        "allowed": all(r.decision.allowed for r in results),
        "actions": [r.decision.action for r in results],
        "decisions": [r.decision.to_dict() for r in results],
    }


def _finish_reason(result: GateResult, max_tokens: int) -> str:
    if not result.decision.allowed:
        return "content_filter"
    return "length" if result.n_tokens >= max_tokens else "stop"


def _render_chat(model: Any, messages: list[dict[str, str]]) -> str:
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join([*lines, "Assistant:"])


def create_app(
    gate: GatedGenerator,
    model_name: str,
    limits: ServerLimits | None = None,
    access: AccessControl | None = None,
) -> FastAPI:
    """The FastAPI app around one ``GatedGenerator`` (``gate.model`` None: moderation only).
    ``access`` adds the API key and Host allow-list checks (``audit/guard/access.py``)."""
    limits = limits or ServerLimits()
    app = FastAPI(title="lm-audit gated generation", docs_url=None, redoc_url=None, openapi_url=None)
    state: dict[str, Any] = {"slots": None, "served": 0, "blocked": 0}

    def slots() -> Slots:
        if state["slots"] is None:  # created inside the running event loop
            state["slots"] = Slots(limits.max_concurrency, limits.max_queue)
        return state["slots"]

    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.kind, exc.param)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        where = ".".join(loc) or None
        if first.get("type") == "json_invalid":
            return error_response(400, "malformed JSON body", param="body")
        return error_response(400, f"{where or 'body'}: {first.get('msg')}", param=where)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), "not_found_error" if exc.status_code == 404 else "invalid_request_error")

    @app.exception_handler(Exception)
    async def _internal(_req: Request, exc: Exception) -> JSONResponse:
        return error_response(500, f"internal error: {type(exc).__name__}", "server_error")

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        if access is not None and not access.key_ok(request.headers.get("authorization")):
            return {"status": "ok"}  # liveness only: nothing about the model, policy or traffic
        s = state["slots"]
        return {
            "status": "ok",
            "model": model_name,
            "policy": gate.policy.name,
            "served": state["served"],
            "blocked": state["blocked"],
            "waiting": s.waiting if s else 0,
        }

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "lm-audit"}]}

    def _params(req: RequestBase, max_tokens: int | None) -> GenParams:
        tokens = max_tokens or 16
        if tokens > limits.max_tokens:
            raise ApiError(400, f"max_tokens must be at most {limits.max_tokens}", param="max_tokens")
        if req.n > limits.max_n:
            raise ApiError(400, f"n must be at most {limits.max_n}", param="n")
        stop = (req.stop,) if isinstance(req.stop, str) else tuple(req.stop or ())
        if len(stop) > 4:
            raise ApiError(400, "at most 4 stop sequences", param="stop")
        return GenParams(
            max_new_tokens=tokens,
            temperature=float(req.temperature),
            top_p=float(req.top_p),
            top_k=req.top_k,
            do_sample=req.temperature > 0,
            stop=stop,
        )

    def _check_size(texts: list[str], param: str) -> None:
        if sum(len(t) for t in texts) > limits.max_prompt_chars:
            raise ApiError(400, f"{param} longer than {limits.max_prompt_chars} characters", param=param)

    def _usage(prompts: list[str], results: list[GateResult]) -> dict[str, int]:
        tokenizer = getattr(gate.model, "tokenizer", None)
        if tokenizer is not None:
            prompt_tokens = sum(len(tokenizer(p)["input_ids"]) for p in prompts)
        else:
            prompt_tokens = sum(len(p.split()) for p in prompts)
        completion_tokens = sum(r.n_tokens for r in results)
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    def _count(results: list[GateResult]) -> None:
        state["served"] += len(results)
        state["blocked"] += sum(1 for r in results if not r.decision.allowed)

    async def _stream(
        kind: str,
        prompt: str,
        params: GenParams,
        seed: int,
        input_text: str | None = None,
        build: Callable[[int, str], str | None] | None = None,
    ) -> StreamingResponse:
        """Server-sent events: checked deltas, then a final chunk with the gate decision."""
        rid = ("chatcmpl-" if kind == "chat" else "cmpl-") + secrets.token_hex(12)
        created = int(time.time())
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def work() -> None:
            try:
                for event in gate.stream(prompt, params, seed, input_text=input_text, build_prompt=build):
                    loop.call_soon_threadsafe(queue.put_nowait, event)
            except Exception as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            loop.call_soon_threadsafe(queue.put_nowait, None)

        def chunk(delta: str, finish: str | None, decision: dict | None) -> str:
            if kind == "chat":
                choice: dict[str, Any] = {"index": 0, "delta": {"content": delta} if delta else {}, "finish_reason": finish}
                obj = "chat.completion.chunk"
            else:
                choice = {"index": 0, "text": delta, "finish_reason": finish, "logprobs": None}
                obj = "text_completion"
            body: dict[str, Any] = {"id": rid, "object": obj, "created": created, "model": model_name, "choices": [choice]}
            if decision is not None:
                choice["gate"] = decision
                body["gate"] = decision
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        slot = slots()
        if slot.sem.locked() and slot.waiting >= slot.queue:
            raise ApiError(429, "server busy: too many queued requests, retry later", "rate_limit_error")

        async def events() -> AsyncIterator[str]:
            task = asyncio.ensure_future(slot.run(work, limits.timeout_s))
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    exc = task.exception()
                    if exc is not None:
                        message = exc.message if isinstance(exc, ApiError) else type(exc).__name__
                        yield f"data: {json.dumps({'error': {'message': message, 'type': 'server_error'}})}\n\n"
                        break
                    continue  # work finished; drain the queue
                item = getter.result()
                if item is None:
                    break
                if isinstance(item, Exception):
                    yield f"data: {json.dumps({'error': {'message': type(item).__name__, 'type': 'server_error'}})}\n\n"
                    break
                if item.done:
                    decision = item.decision
                    finish = "content_filter" if decision and not decision.allowed else "stop"
                    state["served"] += 1
                    state["blocked"] += int(bool(decision and not decision.allowed))
                    yield chunk(item.delta, finish, decision.to_dict() if decision else None)
                else:
                    yield chunk(item.delta, None, None)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    def _need_model() -> None:
        if gate.model is None:
            raise ApiError(404, "this server runs --moderation-only: use POST /v1/moderations", "not_found_error")

    add_moderation_route(
        app,
        gate,
        model_name,
        lambda fn: slots().run(fn, limits.timeout_s),
        _check_size,
        limits.max_prompts,
        ApiError,
    )

    @app.post("/v1/completions", response_model=None)
    async def completions(req: CompletionRequest) -> Any:
        _need_model()
        if req.echo or req.logprobs:
            raise ApiError(400, "echo and logprobs are not supported by the gated server", param="echo")
        prompts = [clean_text(p)[0] for p in ([req.prompt] if isinstance(req.prompt, str) else req.prompt)]
        if not prompts or len(prompts) > limits.max_prompts:
            raise ApiError(400, f"prompt must hold 1 to {limits.max_prompts} strings", param="prompt")
        _check_size(prompts, "prompt")
        params = _params(req, req.max_tokens)
        seed = req.seed if req.seed is not None else secrets.randbits(31)
        if req.stream:
            if len(prompts) != 1 or req.n != 1:
                raise ApiError(400, "stream supports one prompt and n=1", param="stream")
            return await _stream("text", prompts[0], params, seed, None)
        expanded = [p for p in prompts for _ in range(req.n)]
        keys = [f"srv/choice{j}" for _ in prompts for j in range(req.n)]  # same seed + prompt: same text
        results = await slots().run(lambda: gate.generate_many(expanded, params, seed, keys), limits.timeout_s)
        _count(results)
        return {
            "id": "cmpl-" + secrets.token_hex(12),
            "object": "text_completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": [
                {
                    "index": i,
                    "text": r.text,
                    "finish_reason": _finish_reason(r, params.max_new_tokens),
                    "logprobs": None,
                    "gate": r.decision.to_dict(),
                }
                for i, r in enumerate(results)
            ],
            "usage": _usage(expanded, results),
            "gate": _gate_summary(gate, results),
        }

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(req: ChatRequest) -> Any:
        _need_model()
        if req.logprobs:
            raise ApiError(400, "logprobs are not supported by the gated server", param="logprobs")
        messages = [
            {"role": "system" if m.role == "developer" else m.role, "content": clean_text(m.content)[0]}
            for m in req.messages
        ]
        _check_size([m["content"] for m in messages], "messages")
        params = _params(req, req.max_completion_tokens or req.max_tokens)
        seed = req.seed if req.seed is not None else secrets.randbits(31)
        # Input checks read every message the model will condition on (system, user and earlier
        # assistant turns, which a client can forge), one per line group; a redaction is mapped
        # back message by message.
        checked_idx = list(range(len(messages)))
        line_counts = [messages[i]["content"].count("\n") + 1 for i in checked_idx]
        input_text = "\n".join(messages[i]["content"] for i in checked_idx)

        def build(_i: int, checked: str) -> str | None:
            lines = checked.split("\n")
            if len(lines) != sum(line_counts):
                return None
            rebuilt = [dict(m) for m in messages]
            pos = 0
            for idx, count in zip(checked_idx, line_counts, strict=True):
                rebuilt[idx]["content"] = "\n".join(lines[pos : pos + count])
                pos += count
            return _render_chat(gate.model, rebuilt)

        if req.stream:
            if req.n != 1:
                raise ApiError(400, "stream supports n=1", param="stream")
            return await _stream("chat", input_text, params, seed, input_text, build)
        keys = [f"srv/choice{j}" for j in range(req.n)]
        results = await slots().run(
            lambda: gate.generate_many(
                [input_text] * req.n, params, seed, keys, input_texts=[input_text] * req.n, build_prompt=build
            ),
            limits.timeout_s,
        )
        _count(results)
        return {
            "id": "chatcmpl-" + secrets.token_hex(12),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": r.text},
                    "finish_reason": _finish_reason(r, params.max_new_tokens),
                    "gate": r.decision.to_dict(),
                }
                for i, r in enumerate(results)
            ],
            "usage": _usage([build(0, input_text) or input_text], results),
            "gate": _gate_summary(gate, results),
        }

    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    if access is not None:  # outermost: nothing runs for a foreign Host or a missing key
        app.add_middleware(AccessMiddleware, access=access)
    return app


def serve(
    gate: GatedGenerator,
    model_name: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    limits: ServerLimits | None = None,
    log_level: str = "info",
    access: AccessControl | None = None,
) -> None:
    import uvicorn

    access = access or AccessControl.for_bind(host)
    uvicorn.run(create_app(gate, model_name, limits, access), host=host, port=port, log_level=log_level)
