"""Helpers shared by the adapters: endpoint and key lookup, prompt shaping, error mapping.

Transport: the OpenAI and Anthropic SDKs are given their aiohttp transport
(``DefaultAioHttpClient``): about 2x the requests/s of the default httpx one
against the loopback stub on a 2-core machine, and every injected fault maps
to the same ``ErrorKind`` on both (the provider tests run each fault on both;
aiohttp reports a dropped connection as a connect timeout, which
``_stainless`` corrects).  Set ``USE_AIOHTTP = False`` to use the default.
The Cohere SDK takes an httpx client only; it keeps its default.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from workbench.core.errors import ConfigError, ErrorKind, ProviderError
from workbench.core.providers.base import (
    Continuation,
    Message,
    ModelRequest,
    Provider,
    ToolCall,
    ToolSpec,
)
from workbench.core.redact import redact_text
from workbench.core.settings import ProviderSettings

#: module-level transport choice for the OpenAI / Anthropic SDK clients
USE_AIOHTTP = True

#: the instruction that turns a chat model into a continuer (Continuation.EMULATE)
EMULATE_INSTRUCTION = (
    "Below is the beginning of an answer to the request above. Continue it exactly from "
    "where it stops, as if you had written it: do not repeat it, do not restart, and do not "
    "comment on it. Reply with the continuation only."
)


def resolve_base_url(settings: ProviderSettings, env_var: str | None, default: str) -> str:
    """Config first, then the provider's usual environment variable, then its default."""
    if settings.base_url:
        return settings.base_url
    if env_var and os.environ.get(env_var):
        return os.environ[env_var]
    return default


def key_env_vars(settings: ProviderSettings, defaults: Sequence[str]) -> tuple[str, ...]:
    """The environment variables that may hold the key, in lookup order."""
    return (settings.api_key_env,) if settings.api_key_env else tuple(defaults)


def find_key(env_vars: Sequence[str]) -> str | None:
    for var in env_vars:
        value = os.environ.get(var)
        if value:
            return value
    return None


def require_key(env_vars: Sequence[str]) -> str:
    """The key, or ``ConfigError`` naming the variable to set (callers add the provider)."""
    key = find_key(env_vars)
    if key is None:
        names = " or ".join(env_vars)
        raise ConfigError(f"no API key found; set {names}")
    return key


def redact(text: str, secret: str | None) -> str:
    """Remove keys from text that might echo one (some 401 bodies do): the adapter's own
    key and every other the shared redactor knows."""
    return redact_text(text, secret)


def one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def kind_for_status(status: int) -> ErrorKind:
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if status == 408:
        return ErrorKind.TIMEOUT
    if status >= 500:
        return ErrorKind.SERVER
    if status in (400, 413, 422):
        return ErrorKind.BAD_REQUEST
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status == 200:
        return ErrorKind.MALFORMED
    return ErrorKind.OTHER


def status_error(
    provider: str,
    status: int,
    message: str,
    headers: Mapping[str, str] | None,
    secret: str | None,
) -> ProviderError:
    return ProviderError(
        kind_for_status(status),
        f"{provider}: {one_line(redact(message, secret))}",
        status=status,
        retry_after=retry_after(headers),
    )


def unsupported(provider: str, what: str) -> ProviderError:
    """A request this adapter cannot send (fails fast, never retried)."""
    return ProviderError(ErrorKind.BAD_REQUEST, f"{provider}: {what}")


# -- prompt shaping -----------------------------------------------------------


def chat_messages(request: ModelRequest) -> tuple[Message, ...]:
    """The request as chat turns; a raw ``prompt`` alone becomes one user turn."""
    if request.messages:
        return request.messages
    if request.prompt is not None:
        return (Message(role="user", content=request.prompt),)
    return ()


def emulate_continuation(messages: Sequence[Message], prefix: str) -> tuple[Message, ...]:
    """Quote ``prefix`` in the last user turn with an instruction to continue from it."""
    block = f"{EMULATE_INSTRUCTION}\n\n<partial_answer>\n{prefix}\n</partial_answer>"
    turns = list(messages)
    if turns and turns[-1].role == "user":
        last = turns[-1]
        turns[-1] = Message(role="user", content=f"{last.content}\n\n{block}")
    else:
        turns.append(Message(role="user", content=block))
    return tuple(turns)


def strip_echoed_prefix(text: str, prefix: str) -> str:
    """Emulated continuations sometimes restate the prefix; keep only what is new."""
    stripped = prefix.strip()
    if stripped and text.lstrip().startswith(stripped):
        return text.lstrip()[len(stripped) :]
    return text


def transcript(system: str | None, messages: Sequence[Message]) -> str:
    """Chat turns as a plain-text transcript for base models, ending with an open answer."""
    parts = [f"{system.strip()}\n"] if system else []
    for m in messages:
        if m.role == "system":
            parts.append(f"{m.content.strip()}\n")
        elif m.role == "tool":
            parts.append(f"Tool result: {m.content.strip()}\n")
        else:
            parts.append(f"{m.role.capitalize()}: {m.content.strip()}\n")
    parts.append("Assistant:")
    return "\n".join(parts)


def raw_prompt(request: ModelRequest, prefix: str | None) -> str:
    """Text for a completion endpoint: the raw prompt (or a transcript), then the prefix."""
    if request.prompt is not None:
        base = request.prompt
    else:
        base = transcript(request.system, request.messages)
        if prefix:
            base += " "
    return base + (prefix or "")


def system_text(request: ModelRequest) -> str | None:
    """``request.system`` plus any system turns, joined (for APIs with a separate system field)."""
    parts = [request.system] if request.system else []
    parts += [m.content for m in request.messages if m.role == "system"]
    return "\n\n".join(parts) if parts else None


def sampling_params(request: ModelRequest) -> dict[str, Any]:
    """The optional sampling parameters the request set (None = provider default)."""
    params: dict[str, Any] = {}
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.top_p is not None:
        params["top_p"] = request.top_p
    if request.seed is not None:
        params["seed"] = request.seed
    if request.stop:
        params["stop"] = list(request.stop)
    return params


# -- function tools (the OpenAI wire shape, which Cohere v2 chat speaks too) -----


def function_tool(spec: ToolSpec) -> dict[str, Any]:
    """A tool declaration as ``{"type": "function", "function": {...}}``."""
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.parameters,
        },
    }


def function_tool_calls(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """An assistant turn's tool calls, arguments as a JSON string."""
    return [
        {
            "id": tc.id,
            "type": "function",
            "function": {"name": tc.name, "arguments": json.dumps(tc.arguments)},
        }
        for tc in calls
    ]


def tool_arguments(raw: str | None) -> dict[str, Any]:
    """Tool arguments as a dict; text that is not a JSON object is kept under ``_raw``."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_raw": raw}


# -- a base for SDK-backed adapters --------------------------------------------


class SDKProvider(Provider):
    """An adapter around an official SDK client, built lazily on first use.

    The client is tied to the event loop it was built on (its HTTP sessions
    are), so a call from another loop builds a fresh one.  The key is read
    from the environment when the client is built and kept only in memory.
    """

    base_url_env: str | None = None
    default_base_url = ""
    key_envs: tuple[str, ...] = ()
    key_required = True

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        super().__init__(name, resolve_base_url(settings, self.base_url_env, self.default_base_url))
        self.settings = settings
        self._key_vars = key_env_vars(settings, self.key_envs)
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._secret: str | None = None

    def check_ready(self) -> None:
        if self.key_required:
            require_key(self._key_vars)

    def _checked_key(self) -> str | None:
        """The API key once the provider is ready, a missing one as a provider error."""
        try:
            self.check_ready()
            return self._api_key()
        except ConfigError as exc:
            kind = ErrorKind.AUTH if "API key" in str(exc) else ErrorKind.BAD_REQUEST
            raise ProviderError(kind, f"{self.name}: {exc}") from None

    def _api_key(self) -> str | None:
        if self.key_required:
            return require_key(self._key_vars)
        return find_key(self._key_vars)

    def client(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            key = self._checked_key()
            self._secret = key
            self._client = self._make_client(key)
            self._loop = loop
        return self._client

    def _make_client(self, key: str | None) -> Any:
        raise NotImplementedError

    async def _close_client(self, client: Any) -> None:
        await client.close()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await self._close_client(client)

    def resolve_or_fail(self, request: ModelRequest) -> Continuation | None:
        """``resolve_continuation`` as a ``ProviderError`` (the engine checks it before spend)."""
        try:
            return self.resolve_continuation(request)
        except ConfigError as exc:
            raise ProviderError(ErrorKind.BAD_REQUEST, str(exc)) from None


class AttrView(dict[str, Any]):
    """A JSON object read the way the adapters read SDK response models: attributes,
    ``None`` for a missing field, nested objects and lists viewed the same way.

    Batch result bodies are plain JSON; building the SDK's models for each (its
    ``construct_type``) took most of the ingestion time, and the adapters' parsing
    only reads attributes, so they parse this view with the same code.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return view(self.get(name))


def view(value: Any) -> Any:
    if isinstance(value, dict):
        return AttrView(value)
    if isinstance(value, list):
        return [view(v) for v in value]
    return value
