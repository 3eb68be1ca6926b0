"""Model prices and the cost of a call from the provider's own usage numbers.

Prices ship in ``workbench/data/pricing.toml`` (dollars per million tokens,
keyed ``provider:model``); ``[pricing]`` in the workspace config overrides
them.  A model with no price has an *unknown* cost (``None``), never $0.

Lookup for ``provider:model``, workspace prices before shipped ones at each step:

1. the exact name;
2. the name without a date suffix (``-20250929``, ``-2024-08-06``) or ``-latest``;
3. the same two under the provider's *kind* (a provider named ``proxy`` of
   kind ``openai`` is priced as ``openai:``), except for openai-compatible;
4. ``provider:*`` (e.g. free self-hosted servers);
5. the local kind is free whatever the model name.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from importlib import resources

from pydantic import ValidationError

from workbench.core.errors import ConfigError
from workbench.core.providers import Usage, split_model_ref
from workbench.core.settings import Price, Settings

_DATE_SUFFIX = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2}|latest)$")
_FREE = Price(input=0.0, output=0.0, cached_input=0.0, batch_discount=0.0)


def shipped_prices() -> dict[str, Price]:
    """The bundled price table."""
    text = (resources.files("workbench") / "data" / "pricing.toml").read_text("utf-8")
    source = "workbench/data/pricing.toml"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    prices = {}
    for ref, entry in raw.items():
        try:
            prices[ref] = Price.model_validate(entry)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"{source}: {ref}.{field}: {err['msg']}") from None
    return prices


def base_model_name(model: str) -> str:
    """``claude-sonnet-4-5-20250929`` -> ``claude-sonnet-4-5``; other names unchanged."""
    return _DATE_SUFFIX.sub("", model)


class PriceTable:
    """Shipped prices overlaid with workspace ones, and provider kinds for aliases."""

    def __init__(
        self,
        shipped: Mapping[str, Price],
        overrides: Mapping[str, Price] | None = None,
        kinds: Mapping[str, str] | None = None,
    ) -> None:
        self._tables = (dict(overrides or {}), dict(shipped))
        self._kinds = dict(kinds or {})

    @classmethod
    def load(cls, settings: Settings | None = None) -> PriceTable:
        settings = settings or Settings()
        kinds = {name: ps.kind for name, ps in settings.all_providers().items()}
        return cls(shipped_prices(), settings.pricing, kinds)

    def _candidates(self, provider: str, model: str) -> Iterator[str]:
        names = dict.fromkeys([model, base_model_name(model)])
        providers = [provider]
        kind = self._kinds.get(provider)
        if kind and kind != provider and kind != "openai-compatible":
            providers.append(kind)
        for prov in providers:
            for name in names:
                yield f"{prov}:{name}"
        yield f"{provider}:*"

    def price(self, model_ref: str) -> Price | None:
        provider, model = split_model_ref(model_ref)
        for key in self._candidates(provider, model):
            for table in self._tables:
                if key in table:
                    return table[key]
        if self._kinds.get(provider, provider) == "local":
            return _FREE
        return None

    def cost(self, model_ref: str, usage: Usage, *, batch: bool = False) -> float | None:
        """Dollars for one call; ``None`` when the model's price is unknown.

        ``usage.input_tokens`` counts every prompt token, ``cached_tokens`` the
        part served from the provider's prompt cache (billed at ``cached_input``).
        """
        price = self.price(model_ref)
        if price is None:
            return None
        cached = min(max(usage.cached_tokens, 0), usage.input_tokens)
        cached_rate = price.cached_input if price.cached_input is not None else price.input
        dollars = (
            (usage.input_tokens - cached) * price.input
            + cached * cached_rate
            + usage.output_tokens * price.output
        ) / 1_000_000
        if batch:
            dollars *= 1.0 - price.batch_discount
        return dollars

    def known(self, model_ref: str) -> bool:
        return self.price(model_ref) is not None


def format_usd(value: float | None, missing: str = "unpriced") -> str:
    """Dollars for display: 4 decimals under $1, cents above; ``missing`` when unknown."""
    if value is None:
        return missing
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"
