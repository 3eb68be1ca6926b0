"""Builds provider adapters from settings, lazily: nothing connects until first use."""

from __future__ import annotations

from collections.abc import Callable

from workbench.core.errors import ConfigError
from workbench.core.providers.base import Provider, split_model_ref
from workbench.core.settings import ProviderSettings, Settings

# Each builder imports its adapter when first used: an SDK is only loaded for a provider
# that a workspace actually calls (cohere alone takes about a second to import).


def _build_anthropic(name: str, ps: ProviderSettings) -> Provider:
    from workbench.core.providers import anthropic

    return anthropic.build(name, ps)


def _build_openai(name: str, ps: ProviderSettings) -> Provider:
    from workbench.core.providers import openai

    return openai.build(name, ps)


def _build_cohere(name: str, ps: ProviderSettings) -> Provider:
    from workbench.core.providers import cohere

    return cohere.build(name, ps)


def _build_compatible(name: str, ps: ProviderSettings) -> Provider:
    from workbench.core.providers import openai_compatible

    return openai_compatible.build(name, ps)


def _build_local(name: str, ps: ProviderSettings) -> Provider:
    from workbench.core.providers import local

    return local.build(name, ps)


#: adapter builder for each provider kind
BUILDERS: dict[str, Callable[[str, ProviderSettings], Provider]] = {
    "anthropic": _build_anthropic,
    "openai": _build_openai,
    "cohere": _build_cohere,
    "openai-compatible": _build_compatible,
    "local": _build_local,
}


class ProviderRegistry:
    """Configured providers by name.  ``overrides`` lets tests inject adapters."""

    def __init__(self, settings: Settings, overrides: dict[str, Provider] | None = None) -> None:
        self.settings = settings
        self._built: dict[str, Provider] = dict(overrides or {})

    def names(self) -> list[str]:
        return sorted(set(self.settings.all_providers()) | set(self._built))

    def settings_for(self, name: str) -> ProviderSettings:
        return self.settings.provider(name)

    def get(self, name: str) -> Provider:
        if name not in self._built:
            ps = self.settings.provider(name)
            self._built[name] = BUILDERS[ps.kind](name, ps)
        return self._built[name]

    def resolve(self, model_ref: str) -> tuple[Provider, str]:
        provider, model = split_model_ref(model_ref)
        return self.get(provider), model

    def check_ready(self, model_refs: list[str]) -> list[str]:
        """One line per problem (unknown provider, missing key) for the given models."""
        problems = []
        for ref in dict.fromkeys(model_refs):
            try:
                provider, _ = self.resolve(ref)
                provider.check_ready()
            except ConfigError as exc:
                problems.append(f"{ref}: {exc}")
        return problems

    async def aclose(self) -> None:
        for p in self._built.values():
            await p.aclose()
