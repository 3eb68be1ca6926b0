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
"""

from __future__ import annotations

from workbench.core.errors import ConfigError
from workbench.core.providers.base import Continuation, ModelRequest, ModelResponse
from workbench.core.providers.openai import OpenAIProvider
from workbench.core.settings import ProviderSettings

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
        return await super().complete(request, timeout=timeout)

    async def aclose(self) -> None:
        for replica in self._replicas:
            await replica.aclose()
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


def build(name: str, settings: ProviderSettings) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(name, settings)
