"""OpenAI adapter (official SDK): chat completions, and legacy completions for completion models.

Continuation: chat models EMULATE (the prefix is quoted in the user turn);
completion-only models (``COMPLETION_MODELS``) continue RAW on
``/v1/completions``.  ``request.extra["endpoint"]`` ("chat" / "completions")
forces an endpoint; other ``extra`` keys go into the request body as-is.
"""

from __future__ import annotations

from typing import Any

import openai

from workbench.core.errors import ConfigError, ErrorKind, ProviderError
from workbench.core.providers import _common as common
from workbench.core.providers._stainless import map_error
from workbench.core.providers.base import (
    Completion,
    Continuation,
    Message,
    ModelRequest,
    ModelResponse,
    ToolCall,
    Usage,
)
from workbench.core.settings import ProviderSettings

#: models served only by the legacy completions endpoint (prefix match)
COMPLETION_MODELS = ("gpt-3.5-turbo-instruct", "davinci-002", "babbage-002")

ENDPOINTS = ("chat", "completions")


class OpenAIProvider(common.SDKProvider):
    kind = "openai"
    base_url_env: str | None = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"
    key_envs: tuple[str, ...] = ("OPENAI_API_KEY",)
    #: the official API wants ``max_completion_tokens`` (reasoning models reject ``max_tokens``)
    chat_max_tokens_field = "max_completion_tokens"

    def _make_client(self, key: str | None) -> openai.AsyncOpenAI:
        http_client = openai.DefaultAioHttpClient() if common.USE_AIOHTTP else None
        return openai.AsyncOpenAI(
            api_key=key or "no-key",
            base_url=self.base_url,
            max_retries=0,  # the engine retries, so every attempt is seen
            timeout=self.settings.timeout_s,
            http_client=http_client,
        )

    def continuation_methods(self, model: str) -> tuple[Continuation, ...]:
        if model.startswith(COMPLETION_MODELS):
            return (Continuation.RAW,)
        return (Continuation.EMULATE,)

    def endpoint(self, request: ModelRequest, method: Continuation | None) -> str:
        """Which endpoint serves ``request``; a conflicting explicit choice is an error."""
        wanted = request.extra.get("endpoint")
        if wanted is not None and wanted not in ENDPOINTS:
            raise common.unsupported(self.name, f"extra.endpoint must be one of {ENDPOINTS}")
        if method is Continuation.RAW:
            needed = "completions"
        elif method is Continuation.EMULATE:
            needed = "chat"
        else:
            return str(wanted or self.default_endpoint(request))
        if wanted is not None and wanted != needed:
            raise common.unsupported(
                self.name,
                f"continuation '{method.value}' needs the {needed} endpoint, not {wanted}",
            )
        return needed

    def default_endpoint(self, request: ModelRequest) -> str:
        return "completions" if request.model.startswith(COMPLETION_MODELS) else "chat"

    async def complete(self, request: ModelRequest, *, timeout: float) -> ModelResponse:
        method = self.resolve_or_fail(request)
        endpoint = self.endpoint(request, method)
        extra_body = {k: v for k, v in request.extra.items() if k != "endpoint"}
        body, sent = self._body(request, method, endpoint)
        client = self.client()
        try:
            if endpoint == "completions":
                resp = await client.completions.create(
                    **body, extra_body=extra_body or None, timeout=timeout
                )
                return self._parse_completions(resp, method, sent)
            resp = await client.chat.completions.create(
                **body, extra_body=extra_body or None, timeout=timeout
            )
            return self._parse_chat(resp, request, method, sent)
        except Exception as exc:
            raise map_error(openai, self.name, exc, self._secret) from None

    def sdk_error(self, exc: Exception) -> Exception:
        """An SDK exception from a batch endpoint as a ``ProviderError`` (keys redacted)."""
        return map_error(openai, self.name, exc, self._secret)

    # -- batch shapes (provider batch API and batch files) -------------------

    def batch_request(self, request: ModelRequest) -> tuple[str, dict[str, Any]]:
        """(url, body) of one OpenAI-batch input line; ``ConfigError`` when it cannot go."""
        method = self.resolve_continuation(request)
        try:
            endpoint = self.endpoint(request, method)
        except ProviderError as exc:
            raise ConfigError(str(exc)) from None
        if endpoint == "completions" and request.tools:
            raise ConfigError(f"{self.name}: tools need the chat endpoint")
        body, _ = self._body(request, method, endpoint)
        body.update({k: v for k, v in request.extra.items() if k != "endpoint"})
        url = "/v1/completions" if endpoint == "completions" else "/v1/chat/completions"
        return url, body

    def parse_batch_body(self, request: ModelRequest, body: dict[str, Any]) -> ModelResponse:
        """A batch result body (``chat.completion`` or ``text_completion``) as a sync call's
        response: the same parsing, so a batch completion equals a sync one."""
        method = self.resolve_or_fail(request)
        endpoint = self.endpoint(request, method)
        _, sent = self._body(request, method, endpoint)
        try:
            if body.get("object") == "text_completion" or endpoint == "completions":
                resp = common.view(body)
                return self._parse_completions(resp, method, sent)
            resp = common.view(body)
            return self._parse_chat(resp, request, method, sent)
        except (AttributeError, TypeError, KeyError) as exc:
            raise ProviderError(
                ErrorKind.MALFORMED, f"{self.name}: unparseable result body ({exc})"
            ) from None

    # -- request bodies -------------------------------------------------------

    def _body(
        self, request: ModelRequest, method: Continuation | None, endpoint: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the request body without ``extra``, what ``sent_params`` records)."""
        extra_body = {k: v for k, v in request.extra.items() if k != "endpoint"}
        if endpoint == "completions":
            if request.tools:
                raise common.unsupported(self.name, "tools need the chat endpoint")
            params: dict[str, Any] = {"max_tokens": request.max_tokens}
            params.update(common.sampling_params(request))
            if request.n != 1:
                params["n"] = request.n
            body = {
                "model": request.model,
                "prompt": common.raw_prompt(request, request.prefix),
                **params,
            }
            return body, {"endpoint": "completions", **params, **extra_body}
        turns = common.chat_messages(request)
        if method is Continuation.EMULATE and request.prefix is not None:
            turns = common.emulate_continuation(turns, request.prefix)
        params = {self.chat_max_tokens_field: request.max_tokens}
        params.update(common.sampling_params(request))
        if request.n != 1:
            params["n"] = request.n
        wire_messages = [{"role": "system", "content": request.system}] if request.system else []
        wire_messages += [_chat_message(m) for m in turns]
        tools = [common.function_tool(t) for t in request.tools]
        body = {
            "model": request.model,
            "messages": wire_messages,
            **({"tools": tools} if tools else {}),
            **params,
        }
        return body, {"endpoint": "chat", **params, **extra_body}

    # -- responses ----------------------------------------------------------------

    def _parse_chat(
        self,
        resp: Any,  # openai ChatCompletion
        request: ModelRequest,
        method: Continuation | None,
        sent: dict[str, Any],
    ) -> ModelResponse:
        completions = []
        for choice in resp.choices:
            msg = choice.message
            refusal = getattr(msg, "refusal", None)
            text = msg.content or refusal or ""
            if method is Continuation.EMULATE and request.prefix is not None:
                text = common.strip_echoed_prefix(text, request.prefix)
            finish = _finish(choice.finish_reason)
            if refusal:
                finish = "refusal"
            calls = tuple(
                ToolCall(
                    id=tc.id,
                    name=tc.function.name,
                    arguments=common.tool_arguments(tc.function.arguments),
                )
                for tc in (msg.tool_calls or ())
                if getattr(tc, "function", None) is not None
            )
            completions.append(Completion(text=text, finish_reason=finish, tool_calls=calls))
        return ModelResponse(
            completions=tuple(completions),
            usage=_usage(resp.usage),
            continuation=method,
            sent_params=sent,
            model=resp.model,
        )

    def _parse_completions(
        self, resp: Any, method: Continuation | None, sent: dict[str, Any]
    ) -> ModelResponse:
        completions = tuple(
            Completion(text=c.text or "", finish_reason=_finish(c.finish_reason))
            for c in resp.choices
        )
        return ModelResponse(
            completions=completions,
            usage=_usage(resp.usage),
            continuation=method,
            sent_params=sent,
            model=resp.model,
        )


def _chat_message(m: Message) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content}
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["content"] = m.content or None
        out["tool_calls"] = common.function_tool_calls(m.tool_calls)
    return out


def _finish(reason: str | None) -> str | None:
    return {"content_filter": "refusal", "function_call": "tool_calls"}.get(reason or "", reason)


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_tokens=cached,
    )


def build(name: str, settings: ProviderSettings) -> OpenAIProvider:
    return OpenAIProvider(name, settings)
