"""Price lookup and cost per call."""

from __future__ import annotations

import pytest

from workbench.core.engine.pricing import PriceTable, base_model_name, shipped_prices
from workbench.core.errors import ConfigError
from workbench.core.providers import Usage
from workbench.core.settings import Price, parse_settings


def test_shipped_table_parses_and_covers_each_provider() -> None:
    prices = shipped_prices()
    for ref in (
        "anthropic:claude-sonnet-4-5",
        "openai:gpt-4o",
        "cohere:command-a-03-2025",
        "local:gemma-3-270m",
    ):
        assert ref in prices
    assert prices["local:gemma-3-270m"].input == 0


def test_exact_match_then_date_suffix() -> None:
    table = PriceTable.load(parse_settings({}))
    assert table.price("anthropic:claude-sonnet-4-5-20250929") == table.price(
        "anthropic:claude-sonnet-4-5"
    )
    assert table.price("openai:gpt-4o-mini-2024-07-18") == table.price("openai:gpt-4o-mini")
    # an exact entry wins over the date rule
    dated = table.price("openai:gpt-4o-2024-05-13")
    assert dated is not None and dated.input == 5.0
    assert base_model_name("claude-3-5-haiku-latest") == "claude-3-5-haiku"
    assert base_model_name("command-a-03-2025") == "command-a-03-2025"


def test_unknown_model_costs_none_not_zero() -> None:
    table = PriceTable.load(parse_settings({}))
    assert table.price("openai:no-such-model") is None
    assert table.cost("openai:no-such-model", Usage(10, 10)) is None
    assert table.cost("together:meta-llama/Llama-3-8b", Usage(10, 10)) is None


def test_cost_uses_cached_and_batch_rates() -> None:
    table = PriceTable.load(parse_settings({}))
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cached_tokens=400_000)
    # sonnet: 3 in, 15 out, 0.3 cached
    cost = table.cost("anthropic:claude-sonnet-4-5", usage)
    assert cost is not None and cost == pytest.approx(0.6 * 3 + 0.4 * 0.3 + 15)
    batch = table.cost("anthropic:claude-sonnet-4-5", usage, batch=True)
    assert batch == pytest.approx(cost / 2)
    assert table.cost("local:gemma-3-270m", usage) == 0.0


def test_cached_rate_defaults_to_input_rate() -> None:
    table = PriceTable({"x:m": Price(input=2.0, output=4.0)})
    assert table.cost("x:m", Usage(1_000_000, 0, 500_000)) == pytest.approx(2.0)


def test_workspace_prices_override_and_wildcards() -> None:
    settings = parse_settings(
        {
            "providers": {
                "vllm": {"kind": "openai-compatible", "base_url": "http://127.0.0.1:1/v1"},
                "proxy": {"kind": "openai", "base_url": "http://127.0.0.1:2/v1"},
                "mine": {"kind": "local"},
            },
            "pricing": {
                "openai:gpt-4o": {"input": 1.0, "output": 2.0},
                "vllm:*": {"input": 0.0, "output": 0.0},
            },
        }
    )
    table = PriceTable.load(settings)
    assert table.cost("openai:gpt-4o", Usage(1_000_000, 1_000_000)) == pytest.approx(3.0)
    assert table.cost("vllm:anything", Usage(5, 5)) == 0.0
    # a provider of kind openai under another name is priced as openai
    assert table.price("proxy:gpt-4o-2024-08-06") == table.price("openai:gpt-4o")
    assert table.cost("mine:whatever", Usage(5, 5)) == 0.0


def test_bad_workspace_price_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError, match="pricing"):
        parse_settings({"pricing": {"openai:gpt-4o": {"input": -1, "output": 1}}})
