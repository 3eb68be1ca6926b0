"""OpenAI-compatible servers (vLLM, Together, OpenRouter, llama.cpp server) via the OpenAI SDK.

Configure one per server in ``workbench.toml``::

    [providers.vllm]
    kind = "openai-compatible"
    base_url = "http://localhost:8000/v1"
    api_key_env = "VLLM_API_KEY"   # optional: no key is sent without it

``base_url`` is required (there is no usual environment variable for it), and
the key comes only from ``api_key_env``: the OpenAI key is never sent to a
third-party server.  Continuation: RAW (preferred, the model continues the
prefix natively on ``/v1/completions``) or EMULATE on chat.  Without a prefix
a request goes to chat, unless it has only a raw ``prompt`` (then
completions) or ``request.extra["endpoint"]`` says otherwise.  Chat turns sent
to ``/v1/completions`` are rendered as a plain-text transcript.

An endpoint pool (``base_urls = [...]``, docs/scale.md) is one logical provider
with an empty ``base_url`` (so a request served by any replica is one cache
entry) and one adapter per replica URL (``replicas()``), each with its own client;
the engine dispatches between them and probes ``GET {base}/models`` for health.

Transport: chat and completions requests go over aiohttp directly, not through the
openai SDK, whose per-request work (``_transform`` over the typed params, building its
request and response models) was most of a request's client CPU.  The JSON body is the
one the SDK sends (``_body`` builds it; the SDK's transform leaves those plain values as
they are and merges ``extra_body`` on top; a test compares both on the wire), errors map
to the same ``ErrorKind`` as through the SDK (the fault tests run both), and responses
are parsed by the same ``_parse_chat`` / ``_parse_completions``.  Batch endpoints and
health probes still use the SDK client.  ``USE_SDK = True`` restores the SDK path.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from workbench.core.errors import ConfigError, ErrorKind, ProviderError
from workbench.core.providers import _common as common
from workbench.core.providers.base import Continuation, ModelRequest, ModelResponse
from workbench.core.providers.openai import OpenAIProvider
from workbench.core.settings import ProviderSettings

#: send chat / completions through the openai SDK instead of the direct transport
USE_SDK = False

#: endpoint for requests without a prefix, chat turns and no explicit choice
DEFAULT_ENDPOINT = "chat"


class OpenAICompatibleProvider(OpenAIProvider):
    kind = "openai-compatible"
    base_url_env = None
    default_base_url = ""
    key_envs = ()
    chat_max_tokens_field = "max_tokens"  # what vLLM / llama.cpp / Together all accept

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        super().__init__(name, settings)
        self.key_required = settings.api_key_env is not None
        urls = settings.base_urls or ()
        self._replicas = tuple(
            OpenAICompatibleProvider(
                name, settings.model_copy(update={"base_urls": None, "base_url": url})
            )
            for url in urls
        )
        self._http: aiohttp.ClientSession | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        self._headers: dict[str, str] = {}

    def replicas(self) -> tuple[OpenAICompatibleProvider, ...]:
        return self._replicas

    async def probe(self, timeout: float) -> None:
        try:
            await self.client().models.list(timeout=timeout)
        except Exception as exc:
            raise self.sdk_error(exc) from None

    async def complete(self, request: ModelRequest, *, timeout: float) -> ModelResponse:
        if self._replicas:  # outside the engine's dispatch (which picks a replica): the first
            return await self._replicas[0].complete(request, timeout=timeout)
        if USE_SDK:
            return await super().complete(request, timeout=timeout)
        method = self.resolve_or_fail(request)
        endpoint = self.endpoint(request, method)
        body, sent = self._body(request, method, endpoint)
        body.update((k, v) for k, v in request.extra.items() if k != "endpoint")
        path = "completions" if endpoint == "completions" else "chat/completions"
        status, headers, raw = await self._post(path, body, timeout)
        if not 200 <= status < 300:
            raise common.status_error(
                self.name, status, _error_message(status, raw), headers, self._secret
            )
        try:
            data = common.view(json.loads(raw))
            if endpoint == "completions":
                return self._parse_completions(data, method, sent)
            return self._parse_chat(data, request, method, sent)
        except (ValueError, AttributeError, TypeError, KeyError) as exc:
            # a 200 whose body is not the documented JSON: retryable, like a 5xx
            detail = common.one_line(common.redact(str(exc), self._secret), 120)
            raise ProviderError(
                ErrorKind.MALFORMED, f"{self.name}: malformed response body ({detail})", status=200
            ) from None

    def _session(self) -> aiohttp.ClientSession:
        """This loop's HTTP session (built on first use, like the SDK client)."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop:
            key = self._checked_key()
            self._secret = key
            self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
            if key:
                self._headers["Authorization"] = f"Bearer {key}"
            # no connection cap here: the engine's limiter bounds what is in flight
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            self._http_loop = loop
        return self._http

    async def _post(
        self, path: str, body: dict[str, Any], timeout: float
    ) -> tuple[int, dict[str, str], bytes]:
        session = self._session()
        url = f"{self.base_url.rstrip('/')}/{path}"
        try:
            async with session.post(
                url,
                data=json.dumps(body).encode(),
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                return resp.status, dict(resp.headers), await resp.read()
        except TimeoutError:  # aiohttp's own timeouts subclass it
            raise ProviderError(ErrorKind.TIMEOUT, f"{self.name}: request timed out") from None
        except aiohttp.ClientError as exc:  # refused, reset, hung up mid-answer
            detail = common.one_line(common.redact(f"{type(exc).__name__}: {exc}", self._secret))
            raise ProviderError(
                ErrorKind.CONNECTION, f"{self.name}: connection failed ({detail})"
            ) from None

    async def aclose(self) -> None:
        for replica in self._replicas:
            await replica.aclose()
        http, self._http = self._http, None
        if http is not None and self._http_loop is asyncio.get_running_loop():
            await http.close()
        await super().aclose()

    def check_ready(self) -> None:
        if self._replicas:
            self._replicas[0].check_ready()
            return
        if not self.base_url:
            raise ConfigError(
                "base_url is required for an openai-compatible provider; "
                f"set it under [providers.{self.name}] in workbench.toml"
            )
        super().check_ready()

    def continuation_methods(self, model: str) -> tuple[Continuation, ...]:
        return (Continuation.RAW, Continuation.EMULATE)

    def default_endpoint(self, request: ModelRequest) -> str:
        if request.prompt is not None and not request.messages:
            return "completions"
        return DEFAULT_ENDPOINT


def _error_message(status: int, raw: bytes) -> str:
    """The server's own message (``{"error": {"message": ...}}``), else the body's start."""
    text = raw.decode("utf-8", errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        return f"Error code: {status} - {text[:200]}"
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return f"Error code: {status} - {text[:200]}"


def build(name: str, settings: ProviderSettings) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(name, settings)
