"""``openai`` backend: any OpenAI-compatible completions or chat endpoint.

Works with vLLM, TGI, the llama.cpp server, ``lm-audit serve`` and hosted APIs. Name syntax:
``openai:<model>@<base_url>``, e.g. ``openai:gpt2@http://127.0.0.1:8000/v1``; without ``@`` the base
URL comes from the ``base_url`` option, then ``OPENAI_BASE_URL``, then ``https://api.openai.com/v1``.

Options (``load_model(name, **options)``):

- ``base_url``: overrides the URL in the name.
- ``api_key_env`` (default ``OPENAI_API_KEY``): the environment variable holding the API key; sent
  as ``Authorization: Bearer ...`` when set, never written to the manifest.
- ``chat`` (default false): always use ``/chat/completions`` (the prompt becomes one user message).
  Without it, ``/completions`` is used unless the suite asks for chat formatting.
- ``concurrency`` (default 8; ``lm-audit run --batch-size N`` sets it to N): requests in flight.
- ``timeout`` (default 60 s): per request.
- ``max_retries`` (default 5): retries on 429, 5xx, timeouts and connection errors, with
  exponential backoff (0.5 s doubling, capped at 30 s, with jitter) that honours ``Retry-After``.

Reproducibility: one request per completion (``n=1``) carrying ``seed = record_seed(run_seed, key,
sample)`` folded to 31 bits (some servers keep seeds in a 32-bit int), so a server that honours seeds
returns the same text for a record whatever the batching or engine. Many hosted APIs do not
honour seeds; then sampled completions are not reproducible, and only the cache makes re-runs equal.
The server draws the tokens, so a suite's ``coupling: gumbel`` cannot apply here: the protocol
line of its figures says so (audit/summary/suite.py).

``loglikelihood`` uses the vLLM / legacy-OpenAI form: ``/completions`` with ``echo=true``,
``logprobs=1``, ``max_tokens=0`` (or ``max_tokens=1``, dropping the generated token, for servers
that refuse 0); continuation tokens are those whose ``text_offset`` starts at or after the end of
the context and before the end of the prompt. A server that rejects this, or answers without prompt log-probs,
raises ``LoglikelihoodUnsupportedError`` (a ``UsageError``: the CLI prints one line and exits 2).
Servers give no log-prob for the first prompt token, so with an empty context the first
continuation token is not scored (``n_tokens`` counts the scored ones).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

import httpx

from audit.core.errors import UsageError
from audit.core.types import Completion, GenParams, GenRequest, LoglikelihoodRequest, record_seed
from audit.models.base import LoglikelihoodResult, ModelBackend, ModelInfo
from audit.models.openai_http import (
    RETRY_STATUSES,
    UNSUPPORTED_STATUSES,
    EndpointError,
    LoglikelihoodUnsupportedError,
    retry_delay,
    run_sync,
    short,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
SEED_MASK = (1 << 31) - 1


def parse_name(name: str) -> tuple[str, str | None]:
    """``openai:<model>@<base_url>`` -> (model, base_url or None)."""
    rest = name.removeprefix("openai:")
    base_url = None
    for scheme in ("@http://", "@https://"):
        at = rest.find(scheme)
        if at >= 0:
            rest, base_url = rest[:at], rest[at + 1 :]
            break
    if not rest:
        raise UsageError(f"'{name}': give a model, e.g. openai:gpt2@http://127.0.0.1:8000/v1")
    return rest, base_url


class OpenAIBackend(ModelBackend):
    """An OpenAI-compatible HTTP endpoint."""

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        name: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        chat: bool = False,
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise UsageError(f"base URL must start with http:// or https://, got '{base_url}'")
        if concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise UsageError("openai backend: concurrency >= 1, max_retries >= 0 and timeout > 0 please")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.name = name or f"openai:{model}@{self.base_url}"
        self.api_key_env = api_key_env
        self.chat = bool(chat)
        self.concurrency = int(concurrency)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.supports_loglikelihood = not self.chat
        self._info: ModelInfo | None = None
        self._echo_max_tokens = 0  # becomes 1 for servers that refuse max_tokens=0
        self.stats = {"requests": 0, "retries": 0}

    # ------------------------------------------------------------------ HTTP
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        return httpx.AsyncClient(
            base_url=self.base_url, headers=self._headers(), timeout=self.timeout, limits=limits
        )

    async def _request(
        self, client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        """One call with retries; returns the parsed JSON body or raises ``EndpointError``."""
        url = f"{self.base_url}{path}"
        last = ""
        for attempt in range(self.max_retries + 1):
            retry_after = None
            self.stats["requests"] += 1
            try:
                resp = await client.request(method, path, json=body)
            except httpx.TimeoutException:
                last = f"timed out after {self.timeout:g} s"
            except httpx.TransportError as exc:
                last = f"connection failed ({type(exc).__name__}: {short(str(exc), 120)})"
            else:
                if resp.status_code < 400:
                    try:
                        return json.loads(resp.content.decode("utf-8", "surrogateescape"))  # lone surrogates kept, cleaned later
                    except ValueError:
                        raise EndpointError(
                            f"{url} returned a response that is not JSON: {short(resp.text)!r}"
                        ) from None
                if resp.status_code not in RETRY_STATUSES:
                    raise self._http_error(url, resp)
                last = f"HTTP {resp.status_code}: {short(resp.text)}"
                retry_after = resp.headers.get("retry-after")
            if attempt < self.max_retries:
                self.stats["retries"] += 1
                await asyncio.sleep(retry_delay(attempt, retry_after, self.backoff, self.max_backoff))
        raise EndpointError(
            f"{url}: giving up after {self.max_retries + 1} attempts; last: {last}", gave_up=True
        )

    def _http_error(self, url: str, resp: httpx.Response) -> EndpointError:
        detail = short(resp.text)
        if resp.status_code in (401, 403):
            return EndpointError(
                f"{url}: HTTP {resp.status_code} (authentication); set {self.api_key_env} to a valid key: {detail}",
                status=resp.status_code,
            )
        return EndpointError(f"{url}: HTTP {resp.status_code}: {detail}", status=resp.status_code)

    # ------------------------------------------------------------------ info
    def info(self) -> ModelInfo:
        if self._info is None:
            self._info = self._fetch_info()
        return self._info

    def _fetch_info(self) -> ModelInfo:
        async def go() -> Any:
            async with self._client() as client:
                return await self._request(client, "GET", "/models")

        served: list[dict[str, Any]] = []
        note = None
        try:
            data = run_sync(go)
            served = [m for m in (data.get("data") or []) if isinstance(m, dict)]
        except EndpointError as exc:
            if exc.gave_up or exc.status in (401, 403):  # unreachable or no access: fail now
                raise
            note = f"GET /models failed: {exc}"  # some servers do not list models
        except AttributeError:
            note = "GET /models returned an unexpected shape"
        entry = next((m for m in served if m.get("id") == self.model), None)
        server_id = (
            f"{entry.get('id')}|{entry.get('root', '')}|{entry.get('owned_by', '')}" if entry else "unlisted"
        )
        fp = hashlib.sha256(f"{self.base_url}\x1f{self.model}\x1f{server_id}".encode()).hexdigest()[:16]
        details: dict[str, Any] = {
            "base_url": self.base_url,
            "model": self.model,
            "server_model": entry,
            "endpoint": "chat/completions" if self.chat else "completions",
            "concurrency": self.concurrency,
            "timeout_s": self.timeout,
            "max_retries": self.max_retries,
        }
        if served and entry is None:
            details["served_models"] = [m.get("id") for m in served][:20]
        if note:
            details["note"] = note
        return ModelInfo(name=self.name, backend="openai", fingerprint=fp, details=details)

    # ------------------------------------------------------------------ generation
    def _gen_body(self, req: GenRequest, params: GenParams, seed: int, chat: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": params.max_new_tokens,
            "temperature": 0.0 if params.greedy else params.temperature,
            "top_p": 1.0 if params.greedy else params.top_p,
            "n": 1,
            "seed": record_seed(seed, req.key, req.sample) & SEED_MASK,
        }
        if params.top_k and not params.greedy:
            body["top_k"] = params.top_k  # vLLM / TGI / llama.cpp extension
        if params.stop:
            body["stop"] = list(params.stop)[:4]  # the OpenAI API accepts at most 4
        if chat:
            body["messages"] = [{"role": "user", "content": req.prompt}]
        else:
            body["prompt"] = req.prompt
        return body

    def _parse_completion(self, data: Any, chat: bool, params: GenParams) -> Completion:
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] if chat else choice["text"]
            if text is None:
                text = ""
            if not isinstance(text, str):
                raise TypeError("text is not a string")
        except (KeyError, IndexError, TypeError) as exc:
            raise EndpointError(
                f"{self.base_url}: malformed {'chat ' if chat else ''}completion response "
                f"({type(exc).__name__}: {exc}): {short(repr(data))}"
            ) from None
        for stop in params.stop:  # servers differ; the contract is "text before the first stop"
            if stop and stop in text:
                text = text[: text.index(stop)]
        usage = data.get("usage") if isinstance(data, dict) else None
        n_tokens = usage.get("completion_tokens", 0) if isinstance(usage, dict) else 0
        return Completion(text=text, n_tokens=int(n_tokens or 0))

    def generate(self, requests: Sequence[GenRequest], params: GenParams, seed: int) -> list[Completion]:
        if not requests:
            return []
        chat = self.chat or params.chat
        path = "/chat/completions" if chat else "/completions"

        async def go() -> list[Completion]:
            sem = asyncio.Semaphore(self.concurrency)
            async with self._client() as client:

                async def one(req: GenRequest) -> Completion:
                    async with sem:
                        data = await self._request(
                            client, "POST", path, self._gen_body(req, params, seed, chat)
                        )
                    return self._parse_completion(data, chat, params)

                return list(await asyncio.gather(*(one(r) for r in requests)))

        return run_sync(go)

    # ------------------------------------------------------------------ log-likelihood
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        if not requests:
            return []
        if self.chat:
            raise LoglikelihoodUnsupportedError(
                f"{self.name}: likelihood suites need the completions endpoint with echo + logprobs; "
                "chat mode has no prompt log-probabilities (drop chat=true, or use a vLLM server)"
            )

        async def go() -> list[LoglikelihoodResult]:
            sem = asyncio.Semaphore(self.concurrency)
            async with self._client() as client:

                async def one(req: LoglikelihoodRequest) -> LoglikelihoodResult:
                    prompt = req.context + req.continuation
                    body = {
                        "model": self.model,
                        "prompt": prompt,
                        "max_tokens": self._echo_max_tokens,
                        "echo": True,
                        "logprobs": 1,
                        "temperature": 0.0,
                    }
                    async with sem:
                        try:
                            data = await self._request(client, "POST", "/completions", body)
                        except EndpointError as exc:
                            if exc.status not in UNSUPPORTED_STATUSES:
                                raise
                            if body["max_tokens"] != 0:
                                raise self._unsupported(str(exc)) from None
                            # some servers refuse max_tokens=0; ask for 1 token and drop it
                            try:
                                data = await self._request(
                                    client, "POST", "/completions", {**body, "max_tokens": 1}
                                )
                            except EndpointError as exc2:
                                if exc2.status not in UNSUPPORTED_STATUSES:
                                    raise
                                raise self._unsupported(str(exc)) from None
                            self._echo_max_tokens = 1
                    return self._parse_loglikelihood(data, len(req.context), len(prompt))

                return list(await asyncio.gather(*(one(r) for r in requests)))

        return run_sync(go)

    def _unsupported(self, why: str) -> LoglikelihoodUnsupportedError:
        return LoglikelihoodUnsupportedError(
            f"{self.name} does not return prompt log-probabilities (completions with echo=true, "
            f"logprobs=1, max_tokens=0), which likelihood suites need; use a vLLM server or a local "
            f"model. Server said: {short(why, 160)}"
        )

    def _parse_loglikelihood(self, data: Any, context_chars: int, prompt_chars: int) -> LoglikelihoodResult:
        try:
            lp = data["choices"][0]["logprobs"]
            tokens = lp["tokens"]
            token_lps = lp["token_logprobs"]
            offsets = lp["text_offset"]
            top = lp.get("top_logprobs") or [None] * len(tokens)
            if not (len(tokens) == len(token_lps) == len(offsets)) or not tokens:
                raise ValueError("tokens, token_logprobs and text_offset differ in length or are empty")
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise self._unsupported(f"no usable prompt logprobs ({exc})") from None
        total, n, greedy = 0.0, 0, True
        for tok, tok_lp, off, alts in zip(tokens, token_lps, offsets, top, strict=False):
            if off < context_chars or off >= prompt_chars or tok_lp is None:  # context, or generated
                continue
            total += float(tok_lp)
            n += 1
            if isinstance(alts, dict) and alts:
                best = max(alts.items(), key=lambda kv: kv[1])[0]
                greedy = greedy and best == tok
        return LoglikelihoodResult(logprob=total, n_tokens=n, is_greedy=greedy and n > 0)


def load_openai(name: str, **options: Any) -> OpenAIBackend:
    """Build the backend for ``openai:<model>[@<base_url>]`` (see the module docstring)."""
    model, url_in_name = parse_name(name)
    options = dict(options)
    batch_size = options.pop("batch_size", None)  # ``lm-audit run --batch-size``: requests in flight
    options.pop("device", None)  # a local-model option, meaningless for an endpoint
    if options.get("concurrency") is None and batch_size:
        options["concurrency"] = int(batch_size)
    options = {k: v for k, v in options.items() if v is not None}
    base_url = options.pop("base_url", None) or url_in_name or os.environ.get("OPENAI_BASE_URL")
    allowed = {"api_key_env", "chat", "concurrency", "timeout", "max_retries", "backoff", "max_backoff"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise UsageError(
            f"unknown option(s) for the openai backend: {', '.join(unknown)} "
            f"(known: base_url, {', '.join(sorted(allowed))})"
        )
    return OpenAIBackend(model, base_url or DEFAULT_BASE_URL, name=name, **options)
