"""Provider-neutral request and response types, and the adapter interface.

A ``ModelRequest`` is what an experiment asks for; each adapter turns it into
its provider's wire format and returns a ``ModelResponse``.  Adapters do not
retry (the SDKs are built with ``max_retries=0``): the engine owns retries,
so every attempt is counted and visible.  Adapters raise ``ProviderError``
with an ``ErrorKind`` for every failure.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from workbench.core.errors import ConfigError


class Continuation(StrEnum):
    """How an adapter continues a partial assistant answer (``ModelRequest.prefix``)."""

    RAW = "raw"  # native text completion: the prompt text ends with the prefix
    PREFILL = "prefill"  # the prefix is sent as the start of the assistant turn
    EMULATE = "emulate"  # the prefix is quoted in the user turn with an instruction to continue


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call; ``parameters`` is a JSON schema object."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Message:
    """One chat turn.  ``tool_calls`` on assistant turns; ``tool_call_id`` on tool results."""

    role: str  # system / user / assistant / tool
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True)
class ModelRequest:
    """What to ask a model.  Either ``messages`` (chat), ``prompt`` (raw text), or both.

    ``prefix`` is a partial assistant answer to continue; ``continuation`` names
    the method the experiment requires (``None`` = the adapter's preferred one).
    """

    model: str
    messages: tuple[Message, ...] = ()
    prompt: str | None = None  # raw text for completion-style models
    system: str | None = None
    prefix: str | None = None
    continuation: Continuation | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int = 1024
    stop: tuple[str, ...] = ()
    n: int = 1
    seed: int | None = None
    tools: tuple[ToolSpec, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # provider-specific passthrough

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form; stored on every call and hashed for the cache key.

        Built field by field: ``dataclasses.asdict`` deep-copies, and was most of
        the engine's per-item CPU time.  The JSON is the same as ``asdict``'s (a
        test checks); should the dataclasses gain a field, ``asdict`` is used.
        """
        if not _FIELDS_KNOWN:
            return asdict(self)
        return {
            "model": self.model,
            "messages": [_message_json(m) for m in self.messages],
            "prompt": self.prompt,
            "system": self.system,
            "prefix": self.prefix,
            "continuation": self.continuation,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "stop": self.stop,
            "n": self.n,
            "seed": self.seed,
            "tools": [
                {"name": t.name, "description": t.description, "parameters": t.parameters}
                for t in self.tools
            ],
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelRequest:
        data = dict(data)
        data["messages"] = tuple(
            Message(
                role=m["role"],
                content=m["content"],
                tool_calls=tuple(ToolCall(**tc) for tc in m.get("tool_calls", ())),
                tool_call_id=m.get("tool_call_id"),
            )
            for m in data.get("messages", ())
        )
        data["tools"] = tuple(ToolSpec(**t) for t in data.get("tools", ()))
        data["stop"] = tuple(data.get("stop", ()))
        if data.get("continuation") is not None:
            data["continuation"] = Continuation(data["continuation"])
        return cls(**data)


def _message_json(m: Message) -> dict[str, Any]:
    return {
        "role": m.role,
        "content": m.content,
        "tool_calls": [
            {"id": t.id, "name": t.name, "arguments": t.arguments} for t in m.tool_calls
        ],
        "tool_call_id": m.tool_call_id,
    }


# The fields ``ModelRequest.to_json`` writes by hand, per dataclass.
_JSON_FIELDS: dict[type, set[str]] = {
    ModelRequest: {
        "model", "messages", "prompt", "system", "prefix", "continuation", "temperature",
        "top_p", "max_tokens", "stop", "n", "seed", "tools", "extra",
    },
    Message: {"role", "content", "tool_calls", "tool_call_id"},
    ToolCall: {"id", "name", "arguments"},
    ToolSpec: {"name", "description", "parameters"},
}  # fmt: skip
_FIELDS_KNOWN = all({f.name for f in fields(cls)} == names for cls, names in _JSON_FIELDS.items())


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None = None  # stop / length / tool_calls / refusal / ...
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class ModelResponse:
    completions: tuple[Completion, ...]
    usage: Usage
    continuation: Continuation | None = None  # method actually used, when a prefix was given
    sent_params: dict[str, Any] = field(default_factory=dict)  # e.g. where temperature went
    model: str | None = None  # the model name the provider reports

    @property
    def text(self) -> str:
        return self.completions[0].text if self.completions else ""

    @property
    def finish_reason(self) -> str | None:
        return self.completions[0].finish_reason if self.completions else None


class Provider(ABC):
    """An adapter for one endpoint.  One instance per configured provider."""

    #: registry name, e.g. "anthropic", "openai", "cohere", "openai-compatible", "local"
    kind: str = ""

    def __init__(self, name: str, base_url: str) -> None:
        self.name = name  # the configured name ("together", "vllm", ...), used in model refs
        self.base_url = base_url

    @abstractmethod
    def continuation_methods(self, model: str) -> tuple[Continuation, ...]:
        """Methods this adapter supports for ``model``, preferred first."""

    def resolve_continuation(self, request: ModelRequest) -> Continuation | None:
        """The method that will be used, or ``ConfigError`` before any spend."""
        if request.prefix is None:
            return None
        supported = self.continuation_methods(request.model)
        if request.continuation is None:
            if not supported:
                raise ConfigError(f"{self.name}:{request.model} cannot continue from a prefix")
            return supported[0]
        if request.continuation not in supported:
            names = ", ".join(m.value for m in supported) or "none"
            raise ConfigError(
                f"{self.name}:{request.model} does not support continuation "
                f"'{request.continuation.value}' (supported: {names})"
            )
        return request.continuation

    def check_ready(self) -> None:  # noqa: B027 - optional hook
        """Raise ``ConfigError`` if the adapter cannot run (e.g. missing API key)."""

    def replicas(self) -> tuple[Provider, ...]:
        """The replicas of an endpoint pool, one adapter per URL; ``()``: one endpoint.

        The engine dispatches a pooled provider's requests to its replicas; the
        logical provider itself (its name, an empty ``base_url``) is the cache key.
        """
        return ()

    async def probe(self, timeout: float) -> None:
        """Check that the endpoint answers (a pool's health probe); ``ProviderError`` if not."""
        raise NotImplementedError

    @abstractmethod
    async def complete(self, request: ModelRequest, *, timeout: float) -> ModelResponse:
        """Send one request (one attempt, no retries).  Raise ``ProviderError`` on failure."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release HTTP clients / model handles."""


def split_model_ref(ref: str) -> tuple[str, str]:
    """``"provider:model"`` -> (provider, model); the model part may contain ':' too."""
    provider, sep, model = ref.partition(":")
    if not sep or not provider or not model:
        raise ConfigError(f"model '{ref}' must be written provider:model (e.g. local:gemma-3-270m)")
    return provider, model
