"""Anthropic adapter (official SDK, Messages API).

Continuation: models in ``PREFILL_MODELS`` continue by assistant prefill (the
prefix is the start of the assistant turn; newer models answer a prefill with
a 400), every model can EMULATE.  The 2.x SDK's ``messages.create`` takes no
``temperature`` / ``top_p``, so they travel in ``extra_body``, only to models
that accept them (``SAMPLING_BOTH`` / ``SAMPLING_ONE``); ``sent_params``
records what went and what was dropped.  ``request.extra`` is merged into
the body as-is.
"""

from __future__ import annotations

from typing import Any

import anthropic

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

#: model-name prefixes that still accept an assistant prefill
PREFILL_MODELS = ("claude-3", "claude-2", "claude-instant")

#: prefixes of models that take temperature and top_p together
SAMPLING_BOTH = (
    "claude-3",
    "claude-2",
    "claude-instant",
    "claude-sonnet-4-0",
    "claude-opus-4-0",
    "claude-sonnet-4-2025",
    "claude-opus-4-2025",
)
#: prefixes of models that take temperature or top_p, not both ("cannot both be specified")
SAMPLING_ONE = (
    "claude-opus-4-1",
    "claude-opus-4-5",
    "claude-opus-4-6",
    "claude-sonnet-4-5",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
)
# Anything else (Opus 4.7 onward, unknown names) gets no sampling parameters:
# those models reject them with a 400 ("temperature is deprecated for this model").

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "refusal",
}


def sampling_split(model: str, request: ModelRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    """(sent, dropped) temperature / top_p for ``model``."""
    pairs = (("temperature", request.temperature), ("top_p", request.top_p))
    wanted = {k: v for k, v in pairs if v is not None}
    if model.startswith(SAMPLING_BOTH):
        return wanted, {}
    if model.startswith(SAMPLING_ONE):
        if len(wanted) == 2:  # temperature wins, as most clients choose
            return {"temperature": wanted["temperature"]}, {"top_p": wanted["top_p"]}
        return wanted, {}
    return {}, wanted


class AnthropicProvider(common.SDKProvider):
    kind = "anthropic"
    base_url_env = "ANTHROPIC_BASE_URL"
    default_base_url = "https://api.anthropic.com"
    key_envs = ("ANTHROPIC_API_KEY",)

    def _make_client(self, key: str | None) -> anthropic.AsyncAnthropic:
        http_client = anthropic.DefaultAioHttpClient() if common.USE_AIOHTTP else None
        return anthropic.AsyncAnthropic(
            api_key=key,
            base_url=self.base_url,
            max_retries=0,  # the engine retries, so every attempt is seen
            timeout=self.settings.timeout_s,
            http_client=http_client,
        )

    def continuation_methods(self, model: str) -> tuple[Continuation, ...]:
        if model.startswith(PREFILL_MODELS):
            return (Continuation.PREFILL, Continuation.EMULATE)
        return (Continuation.EMULATE,)

    async def complete(self, request: ModelRequest, *, timeout: float) -> ModelResponse:
        method = self.resolve_or_fail(request)
        if request.n != 1:
            raise common.unsupported(self.name, "the Messages API returns one completion (n=1)")
        body, extra_body, sent_params = self._params(request, method)
        client = self.client()
        try:
            resp = await client.messages.create(
                **body, extra_body=extra_body or None, timeout=timeout
            )
        except Exception as exc:
            raise map_error(anthropic, self.name, exc, self._secret) from None
        return self._parse(resp, request, method, sent_params)

    def sdk_error(self, exc: Exception) -> Exception:
        """An SDK exception from a batch endpoint as a ``ProviderError`` (keys redacted)."""
        return map_error(anthropic, self.name, exc, self._secret)

    # -- batch shapes (Message Batches API) --------------------------------------

    def batch_params(self, request: ModelRequest) -> dict[str, Any]:
        """The ``params`` of one Message Batches request; ``ConfigError`` when it cannot go."""
        method = self.resolve_continuation(request)
        if request.n != 1:
            raise ConfigError(f"{self.name}: the Messages API returns one completion (n=1)")
        body, extra_body, _ = self._params(request, method)
        return {**body, **extra_body}

    def parse_batch_body(self, request: ModelRequest, body: dict[str, Any]) -> ModelResponse:
        """A batch result ``message`` as a sync call's response (the same parsing)."""
        method = self.resolve_or_fail(request)
        _, _, sent_params = self._params(request, method)
        try:
            resp = common.view(body)
            return self._parse(resp, request, method, sent_params)
        except (AttributeError, TypeError, KeyError) as exc:
            raise ProviderError(
                ErrorKind.MALFORMED, f"{self.name}: unparseable result body ({exc})"
            ) from None

    # -- the request and the response ----------------------------------------------

    def _params(
        self, request: ModelRequest, method: Continuation | None
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(body, extra body, what ``sent_params`` records) for one request."""
        turns = [m for m in common.chat_messages(request) if m.role != "system"]
        prefill = None
        if method is Continuation.EMULATE and request.prefix is not None:
            turns = list(common.emulate_continuation(turns, request.prefix))
        elif method is Continuation.PREFILL and request.prefix is not None:
            # the API rejects a final assistant turn that ends in whitespace
            prefill = request.prefix.rstrip()
        wire = _wire_messages(turns)
        if prefill:
            wire.append({"role": "assistant", "content": prefill})
        sent, dropped = sampling_split(request.model, request)
        extra_body = {**sent, **request.extra}
        params: dict[str, Any] = {"max_tokens": request.max_tokens}
        if request.stop:
            params["stop_sequences"] = list(request.stop)
        system = common.system_text(request)
        if system:
            params["system"] = system
        if request.tools:
            params["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
        sent_params: dict[str, Any] = {"extra_body": extra_body} if extra_body else {}
        sent_params.update({k: v for k, v in params.items() if k not in ("system", "tools")})
        if dropped:
            sent_params["dropped"] = dropped
        if prefill is not None:
            sent_params["prefill_chars"] = len(prefill)
        body = {"model": request.model, "messages": wire, **params}
        return body, extra_body, sent_params

    def _parse(
        self,
        resp: Any,  # anthropic Message
        request: ModelRequest,
        method: Continuation | None,
        sent_params: dict[str, Any],
    ) -> ModelResponse:
        text = "".join(b.text for b in resp.content if b.type == "text")
        if method is Continuation.EMULATE and request.prefix is not None:
            text = common.strip_echoed_prefix(text, request.prefix)
        calls = tuple(
            ToolCall(id=b.id, name=b.name, arguments=dict(b.input or {}))
            for b in resp.content
            if b.type == "tool_use"
        )
        stop = resp.stop_reason
        completion = Completion(
            text=text, finish_reason=_STOP_REASONS.get(stop or "", stop), tool_calls=calls
        )
        return ModelResponse(
            completions=(completion,),
            usage=_usage(resp.usage),
            continuation=method,
            sent_params=sent_params,
            model=resp.model,
        )


def _wire_messages(turns: list[Message]) -> list[dict[str, Any]]:
    """Chat turns as Anthropic messages; tool results ride in user turns, merged when adjacent."""
    out: list[dict[str, Any]] = []
    for m in turns:
        if m.role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": m.tool_call_id or "",
                "content": m.content,
            }
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif m.role == "assistant" and m.tool_calls:
            blocks: list[dict[str, Any]] = (
                [{"type": "text", "text": m.content}] if m.content else []
            )
            blocks += [
                {"type": "tool_use", "id": tc.id, "name": tc.name, "input": tc.arguments}
                for tc in m.tool_calls
            ]
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def _usage(usage: Any) -> Usage:
    """Input counts every prompt token (Anthropic reports cache reads and writes apart)."""
    read = getattr(usage, "cache_read_input_tokens", None) or 0
    written = getattr(usage, "cache_creation_input_tokens", None) or 0
    return Usage(
        input_tokens=(usage.input_tokens or 0) + read + written,
        output_tokens=usage.output_tokens or 0,
        cached_tokens=read,
    )


def build(name: str, settings: ProviderSettings) -> AnthropicProvider:
    return AnthropicProvider(name, settings)
