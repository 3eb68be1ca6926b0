"""OpenAI-compatible servers (vLLM, Together, ...) and the shared prompt helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from tests.stub_server import StubServer
from workbench.core.errors import ConfigError, ErrorKind, ProviderError
from workbench.core.providers import Continuation, Message, ModelRequest, ProviderRegistry, _common
from workbench.core.providers.openai_compatible import OpenAICompatibleProvider, build
from workbench.core.settings import ProviderSettings, parse_settings

KEY = "together-secret-0123456789"
MODEL = "meta-llama/Llama-3.1-8B"
ASK = (Message("user", "What is six times seven?"),)

Factory = Callable[..., OpenAICompatibleProvider]


@pytest.fixture
async def make(
    stub_server: StubServer, clean_provider_env: pytest.MonkeyPatch
) -> AsyncIterator[Factory]:
    clean_provider_env.setenv("TOGETHER_API_KEY", KEY)
    built: list[OpenAICompatibleProvider] = []

    def factory(**kw: object) -> OpenAICompatibleProvider:
        kw.setdefault("base_url", stub_server.openai_base_url)
        kw.setdefault("api_key_env", "TOGETHER_API_KEY")
        settings = ProviderSettings(kind="openai-compatible", **kw)  # type: ignore[arg-type]
        provider = build("together", settings)
        built.append(provider)
        return provider

    yield factory
    for p in built:
        await p.aclose()


async def test_raw_continuation_uses_completions(make: Factory, stub_server: StubServer) -> None:
    p = make()
    assert p.continuation_methods(MODEL) == (Continuation.RAW, Continuation.EMULATE)
    req = ModelRequest(model=MODEL, messages=ASK, system="Solve it.", prefix="6 * 7 =", seed=3)
    resp = await p.complete(req, timeout=5)
    assert resp.continuation is Continuation.RAW
    assert resp.sent_params["endpoint"] == "completions" and resp.sent_params["seed"] == 3
    logged = stub_server.requests[0]
    assert logged.path == "/v1/completions"
    assert logged.body["prompt"] == (
        "Solve it.\n\nUser: What is six times seven?\n\nAssistant: 6 * 7 ="
    )
    assert logged.headers["Authorization"] == f"Bearer {KEY}"


async def test_emulate_goes_to_chat_with_max_tokens(make: Factory, stub_server: StubServer) -> None:
    req = ModelRequest(model=MODEL, messages=ASK, prefix="6 * 7", continuation=Continuation.EMULATE)
    resp = await make().complete(req, timeout=5)
    assert resp.continuation is Continuation.EMULATE and resp.text == " The answer is 42."
    logged = stub_server.requests[0]
    assert logged.path == "/v1/chat/completions"
    assert logged.body["max_tokens"] == 1024 and "max_completion_tokens" not in logged.body


async def test_endpoint_choice_without_prefix(make: Factory, stub_server: StubServer) -> None:
    p = make()
    await p.complete(ModelRequest(model=MODEL, messages=ASK), timeout=5)
    await p.complete(ModelRequest(model=MODEL, prompt="Once upon a time"), timeout=5)
    await p.complete(
        ModelRequest(model=MODEL, messages=ASK, extra={"endpoint": "completions"}), timeout=5
    )
    paths = [r.path for r in stub_server.requests]
    assert paths == ["/v1/chat/completions", "/v1/completions", "/v1/completions"]
    assert "endpoint" not in stub_server.requests[2].body  # our switch, not a wire field


async def test_conflicting_endpoint_is_refused_before_any_request(
    make: Factory, stub_server: StubServer
) -> None:
    req = ModelRequest(
        model=MODEL,
        messages=ASK,
        prefix="x",
        continuation=Continuation.RAW,
        extra={"endpoint": "chat"},
    )
    with pytest.raises(ProviderError) as info:
        await make().complete(req, timeout=5)
    assert info.value.kind is ErrorKind.BAD_REQUEST and "completions" in str(info.value)
    assert stub_server.total == 0


async def test_no_base_url_is_a_config_error(clean_provider_env: pytest.MonkeyPatch) -> None:
    p = build("vllm", ProviderSettings(kind="openai-compatible"))
    with pytest.raises(ConfigError, match=r"base_url is required.*\[providers\.vllm\]"):
        p.check_ready()
    with pytest.raises(ProviderError) as info:
        await p.complete(ModelRequest(model=MODEL, messages=ASK), timeout=1)
    assert info.value.kind is ErrorKind.BAD_REQUEST


async def test_openai_key_is_never_sent_to_a_third_party(
    stub_server: StubServer, clean_provider_env: pytest.MonkeyPatch
) -> None:
    clean_provider_env.setenv("OPENAI_API_KEY", "sk-openai-must-not-leak")
    p = build(
        "vllm", ProviderSettings(kind="openai-compatible", base_url=stub_server.openai_base_url)
    )
    p.check_ready()  # no key configured: fine for a local server
    await p.complete(ModelRequest(model=MODEL, messages=ASK), timeout=5)
    assert "sk-openai-must-not-leak" not in str(stub_server.requests[0].headers)
    await p.aclose()


async def test_missing_configured_key(clean_provider_env: pytest.MonkeyPatch) -> None:
    p = build(
        "together",
        ProviderSettings(
            kind="openai-compatible", base_url="http://127.0.0.1:9/v1", api_key_env="TG_KEY"
        ),
    )
    with pytest.raises(ConfigError, match="set TG_KEY"):
        p.check_ready()


async def test_registry_builds_each_kind_lazily(clean_provider_env: pytest.MonkeyPatch) -> None:
    settings = parse_settings(
        {"providers": {"vllm": {"kind": "openai-compatible", "base_url": "http://127.0.0.1:9/v1"}}}
    )
    registry = ProviderRegistry(settings)
    for ref, kind in [
        ("anthropic:claude-sonnet-4-5", "anthropic"),
        ("openai:gpt-4o", "openai"),
        ("cohere:command-a-03-2025", "cohere"),
        ("vllm:qwen", "openai-compatible"),
        ("local:gemma-3-270m", "local"),
    ]:
        provider, _ = registry.resolve(ref)
        assert provider.kind == kind
    problems = registry.check_ready(["anthropic:claude-sonnet-4-5", "vllm:qwen"])
    assert problems == ["anthropic:claude-sonnet-4-5: no API key found; set ANTHROPIC_API_KEY"]
    await registry.aclose()


def test_retry_after_header_forms() -> None:
    assert _common.retry_after({"Retry-After": "7"}) == 7.0
    assert _common.retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert _common.retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert _common.retry_after({"retry-after": "soon"}) is None
    assert _common.retry_after(None) is None


def test_transcript_for_base_models() -> None:
    req = ModelRequest(
        model="m",
        system="Be exact.",
        messages=(Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "2+2?")),
    )
    assert _common.raw_prompt(req, "4") == (
        "Be exact.\n\nUser: Hi\n\nAssistant: Hello\n\nUser: 2+2?\n\nAssistant: 4"
    )
    assert (
        _common.raw_prompt(ModelRequest(model="m", prompt="Q: 2+2?\nA:"), " 4") == "Q: 2+2?\nA: 4"
    )


async def test_stub_counters_predicates_and_waits(make: Factory, stub_server: StubServer) -> None:
    p = make()
    stub_server.fail_when(lambda path, body: body.get("model") == "flaky", "status", status=502)
    with pytest.raises(ProviderError) as info:
        await p.complete(ModelRequest(model="flaky", messages=ASK), timeout=5)
    assert info.value.kind is ErrorKind.SERVER
    await p.complete(ModelRequest(model=MODEL, messages=ASK, n=2), timeout=5)
    assert stub_server.wait_for(lambda s: s.total >= 2, timeout=1)
    assert stub_server.by_model == {"flaky": 1, MODEL: 1}
    assert stub_server.paid == 1
    assert [r.outcome for r in stub_server.requests] == ["status", "ok"]
    stub_server.clear_faults()
    await p.complete(ModelRequest(model="flaky", messages=ASK), timeout=5)
    stub_server.reset()
    assert stub_server.total == 0 and stub_server.requests == []
