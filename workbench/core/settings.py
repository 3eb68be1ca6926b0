"""Workspace settings from ``workbench.toml``, validated strictly.

API keys are never read from this file: a provider names the environment
variable that holds its key (``api_key_env``), and the key is looked up at
the moment a client is built.  A key-looking field in the file is an error.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from workbench.core.errors import ConfigError

SETTINGS_FILE = "workbench.toml"

ProviderKind = Literal["anthropic", "openai", "cohere", "openai-compatible", "local"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderSettings(_Strict):
    kind: ProviderKind
    base_url: str | None = None  # None: the provider's usual env var, then its default
    api_key_env: str | None = None  # None: the provider's usual env var
    max_concurrency: int = Field(default=64, ge=1, le=4096)
    initial_concurrency: int | None = Field(default=None, ge=1)
    adaptive: bool = True  # AIMD on 429s
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=6, ge=1, le=50)
    # an endpoint pool (openai-compatible only): several replicas of one model server;
    # max_concurrency is then per replica (docs/scale.md)
    base_urls: tuple[str, ...] | None = None
    affinity: Literal["problem", "none"] = "none"
    pool_down_timeout_s: float = Field(default=600.0, gt=0)
    # local provider only
    model_path: str | None = None
    n_ctx: int = Field(default=4096, ge=256)
    n_threads: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_kind_of_url(self) -> ProviderSettings:
        if self.base_urls is None:
            return self
        if self.base_url is not None:
            raise ValueError("give base_url or base_urls, not both")
        if self.kind != "openai-compatible":
            raise ValueError("base_urls (an endpoint pool) is for openai-compatible providers")
        if not self.base_urls:
            raise ValueError("base_urls is empty")
        if len(set(self.base_urls)) != len(self.base_urls):
            raise ValueError("base_urls lists a replica twice")
        return self


class Price(_Strict):
    """Dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    batch_discount: float = Field(default=0.5, ge=0, le=1)


class BinSettings(_Strict):
    """Difficulty bins from solve rates: hard < edges[0] <= medium < edges[1] <= easy."""

    edges: tuple[float, float] = (0.2, 0.8)
    names: tuple[str, str, str] = ("hard", "medium", "easy")

    @field_validator("edges")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 <= v[0] < v[1] <= 1.0:
            raise ValueError("edges must satisfy 0 <= low < high <= 1")
        return v


class Settings(_Strict):
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    pricing: dict[str, Price] = Field(default_factory=dict)  # "provider:model" -> price
    bins: BinSettings = BinSettings()
    confirm_above_usd: float = Field(default=5.0, ge=0)  # launch asks to confirm above this
    default_model: str = "local:gemma-3-270m"
    #: TUI binding id -> keys, e.g. "runs.export" = "ctrl+e" (ids: docs/keys.md)
    keys: dict[str, str] = Field(default_factory=dict)

    def provider(self, name: str) -> ProviderSettings:
        merged = {**default_providers(), **self.providers}
        try:
            return merged[name]
        except KeyError:
            known = ", ".join(sorted(merged))
            raise ConfigError(f"unknown provider '{name}' (configured: {known})") from None

    def all_providers(self) -> dict[str, ProviderSettings]:
        return {**default_providers(), **self.providers}


def default_providers() -> dict[str, ProviderSettings]:
    """Providers available with no config: each official API and the local model."""
    return {
        "anthropic": ProviderSettings(kind="anthropic", max_concurrency=64),
        "openai": ProviderSettings(kind="openai", max_concurrency=128),
        "cohere": ProviderSettings(kind="cohere", max_concurrency=32),
        # the embedded model runs one call at a time on the CPU: calls queue behind each other
        "local": ProviderSettings(kind="local", max_concurrency=1, adaptive=False, timeout_s=900),
    }


_SECRET_KEYS = {"api_key", "key", "token", "secret", "password"}


def _reject_secrets(data: Any, path: str, source: str) -> None:
    if isinstance(data, dict):
        for k, v in data.items():
            where = f"{path}.{k}" if path else str(k)
            if str(k).lower() in _SECRET_KEYS:
                raise ConfigError(
                    f"{source}: {where}: secrets do not belong in config; "
                    "set api_key_env to the name of an environment variable"
                )
            _reject_secrets(v, where, source)


def parse_settings(data: dict[str, Any], source: str = SETTINGS_FILE) -> Settings:
    _reject_secrets(data, "", source)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{source}: {where}: {err['msg']}") from None


def load_settings(path: str | Path | None = None) -> Settings:
    """Read settings; a missing file means defaults."""
    p = Path(path) if path else Path(os.environ.get("WORKBENCH_CONFIG", SETTINGS_FILE))
    if not p.exists():
        if path is not None:
            raise ConfigError(f"{p}: no such settings file")
        return Settings()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    return parse_settings(data, str(p))


def api_key(env_var: str | None) -> str | None:
    """Read a key from the environment at use time; never cached on disk."""
    return os.environ.get(env_var) if env_var else None
