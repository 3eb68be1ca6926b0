"""OpenAI adapter end to end against the loopback stub (real HTTP through the official SDK)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import pytest

from tests.stub_server import StubReply, StubServer, StubToolCall
from workbench.core.errors import ConfigError, ErrorKind, ProviderError
from workbench.core.providers import (
    Continuation,
    Message,
    ModelRequest,
    ToolCall,
    ToolSpec,
    _common,
)
from workbench.core.providers.openai import OpenAIProvider, build
from workbench.core.settings import ProviderSettings

KEY = "sk-test-secret-0123456789"
ASK = (Message("user", "What is six times seven?"),)

Factory = Callable[..., OpenAIProvider]


@pytest.fixture
async def make(
    stub_server: StubServer, clean_provider_env: pytest.MonkeyPatch
) -> AsyncIterator[Factory]:
    clean_provider_env.setenv("OPENAI_API_KEY", KEY)
    built: list[OpenAIProvider] = []

    def factory(**kw: object) -> OpenAIProvider:
        kw.setdefault("base_url", stub_server.openai_base_url)
        provider = build("openai", ProviderSettings(kind="openai", **kw))  # type: ignore[arg-type]
        built.append(provider)
        return provider

    yield factory
    for p in built:
        await p.aclose()


async def test_chat_text_usage_and_auth(make: Factory, stub_server: StubServer) -> None:
    p = make()
    req = ModelRequest(model="gpt-4o", messages=ASK, system="Be brief.", temperature=0.2, seed=7)
    resp = await p.complete(req, timeout=5)
    assert resp.text.endswith("The answer is 42.")
    assert resp.finish_reason == "stop"
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0
    assert resp.model == "gpt-4o"
    assert resp.sent_params["endpoint"] == "chat"
    assert resp.sent_params["temperature"] == 0.2 and resp.sent_params["seed"] == 7
    [logged] = stub_server.requests
    assert logged.path == "/v1/chat/completions"
    assert logged.headers["Authorization"] == f"Bearer {KEY}"
    assert logged.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert logged.body["max_completion_tokens"] == 1024
    assert logged.headers.get("x-stainless-retry-count") == "0"


async def test_n_completions(make: Factory, stub_server: StubServer) -> None:
    resp = await make().complete(ModelRequest(model="gpt-4o-mini", messages=ASK, n=3), timeout=5)
    assert len(resp.completions) == 3
    assert stub_server.requests[0].body["n"] == 3


async def test_tool_calls_round_trip(make: Factory, stub_server: StubServer) -> None:
    stub_server.responder = lambda path, body: StubReply(
        tool_calls=(StubToolCall("python", {"code": "print(6*7)"}),)
    )
    tool = ToolSpec("python", "Run Python", {"type": "object", "properties": {}})
    p = make()
    resp = await p.complete(ModelRequest(model="gpt-4o", messages=ASK, tools=(tool,)), timeout=5)
    assert resp.finish_reason == "tool_calls"
    [call] = resp.completions[0].tool_calls
    assert call.name == "python" and call.arguments == {"code": "print(6*7)"}
    sent = stub_server.requests[0].body
    assert sent["tools"][0]["function"]["name"] == "python"

    stub_server.responder = lambda path, body: "It printed 42."
    follow = ModelRequest(
        model="gpt-4o",
        messages=(
            *ASK,
            Message("assistant", "", tool_calls=(ToolCall(call.id, "python", call.arguments),)),
            Message("tool", "42", tool_call_id=call.id),
        ),
        tools=(tool,),
    )
    resp2 = await p.complete(follow, timeout=5)
    assert resp2.text == "It printed 42."
    wire = stub_server.requests[1].body["messages"]
    assert wire[1]["tool_calls"][0]["function"]["arguments"] == json.dumps(call.arguments)
    assert wire[2] == {"role": "tool", "tool_call_id": call.id, "content": "42"}


async def test_emulated_continuation_on_chat(make: Factory, stub_server: StubServer) -> None:
    p = make()
    req = ModelRequest(model="gpt-4o", messages=ASK, prefix="Six times seven is")
    assert p.resolve_continuation(req) is Continuation.EMULATE
    resp = await p.complete(req, timeout=5)
    assert resp.continuation is Continuation.EMULATE
    assert resp.text == " The answer is 42."
    last = stub_server.requests[0].body["messages"][-1]
    assert last["role"] == "user" and "<partial_answer>\nSix times seven is\n" in last["content"]
    assert "Continue it exactly from where it stops" in last["content"]


async def test_raw_continuation_on_legacy_completions(
    make: Factory, stub_server: StubServer
) -> None:
    p = make()
    req = ModelRequest(model="gpt-3.5-turbo-instruct", prompt="Q: 6*7?\nA:", prefix=" It is")
    resp = await p.complete(req, timeout=5)
    assert resp.continuation is Continuation.RAW
    assert resp.sent_params["endpoint"] == "completions"
    logged = stub_server.requests[0]
    assert logged.path == "/v1/completions"
    assert logged.body["prompt"] == "Q: 6*7?\nA: It is"
    assert resp.text == " The answer is 42."


async def test_unsupported_continuation_fails_before_any_request(
    make: Factory, stub_server: StubServer
) -> None:
    p = make()
    req = ModelRequest(model="gpt-4o", messages=ASK, prefix="x", continuation=Continuation.RAW)
    with pytest.raises(ConfigError, match="does not support continuation 'raw'"):
        p.resolve_continuation(req)
    with pytest.raises(ProviderError) as info:
        await p.complete(req, timeout=5)
    assert info.value.kind is ErrorKind.BAD_REQUEST
    assert stub_server.total == 0


async def test_refusal_keeps_text(make: Factory, stub_server: StubServer) -> None:
    stub_server.responder = lambda path, body: StubReply(
        "I can't help with that.", finish="refusal"
    )
    resp = await make().complete(ModelRequest(model="gpt-4o", messages=ASK), timeout=5)
    assert resp.finish_reason == "refusal"
    assert resp.text == "I can't help with that."


FAULTS = [
    ("rate_limit", {"retry_after": 2}, ErrorKind.RATE_LIMIT, 429, 2.0),
    ("rate_limit", {"retry_after_ms": 1500}, ErrorKind.RATE_LIMIT, 429, 1.5),
    ("status", {"status": 500}, ErrorKind.SERVER, 500, None),
    ("status", {"status": 503}, ErrorKind.SERVER, 503, None),
    ("hang", {}, ErrorKind.TIMEOUT, None, None),
    ("malformed", {}, ErrorKind.MALFORMED, 200, None),
    ("drop", {}, ErrorKind.CONNECTION, None, None),
    ("status", {"status": 400}, ErrorKind.BAD_REQUEST, 400, None),
    ("status", {"status": 422}, ErrorKind.BAD_REQUEST, 422, None),
    ("status", {"status": 401}, ErrorKind.AUTH, 401, None),
    ("status", {"status": 403}, ErrorKind.AUTH, 403, None),
    ("status", {"status": 404}, ErrorKind.NOT_FOUND, 404, None),
]


@pytest.mark.parametrize("aiohttp_transport", [True, False], ids=["aiohttp", "httpx"])
async def test_each_fault_maps_to_one_error_kind(
    make: Factory,
    stub_server: StubServer,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_transport: bool,
) -> None:
    monkeypatch.setattr(_common, "USE_AIOHTTP", aiohttp_transport)
    p = make()
    req = ModelRequest(model="gpt-4o", messages=ASK)
    for fault, kw, kind, status, retry_after in FAULTS:
        stub_server.fail_next(1, fault, **kw)  # type: ignore[arg-type]
        before = stub_server.total
        with pytest.raises(ProviderError) as info:
            await p.complete(req, timeout=0.5)
        err = info.value
        assert (err.kind, err.status, err.retry_after) == (kind, status, retry_after), fault
        assert err.retryable is kind.retryable
        assert stub_server.total == before + 1, "the SDK must not retry on its own"
        assert "\n" not in str(err)
    assert (await p.complete(req, timeout=5)).text  # the client still works afterwards


async def test_base_url_and_key_from_env(
    stub_server: StubServer, clean_provider_env: pytest.MonkeyPatch
) -> None:
    clean_provider_env.setenv("OPENAI_BASE_URL", stub_server.openai_base_url)
    clean_provider_env.setenv("MY_OPENAI_KEY", KEY)
    p = build("openai", ProviderSettings(kind="openai", api_key_env="MY_OPENAI_KEY"))
    assert p.base_url == stub_server.openai_base_url
    p.check_ready()
    resp = await p.complete(ModelRequest(model="gpt-4o", messages=ASK), timeout=5)
    assert resp.text
    assert stub_server.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    await p.aclose()


async def test_missing_key_is_a_config_error_and_sends_nothing(
    stub_server: StubServer, clean_provider_env: pytest.MonkeyPatch
) -> None:
    p = build("openai", ProviderSettings(kind="openai", base_url=stub_server.openai_base_url))
    with pytest.raises(ConfigError, match="set OPENAI_API_KEY"):
        p.check_ready()
    with pytest.raises(ProviderError) as info:
        await p.complete(ModelRequest(model="gpt-4o", messages=ASK), timeout=5)
    assert info.value.kind is ErrorKind.AUTH
    assert stub_server.total == 0


async def test_key_never_in_anything_returned(make: Factory, stub_server: StubServer) -> None:
    p = make()
    resp = await p.complete(ModelRequest(model="gpt-4o", messages=ASK), timeout=5)
    assert KEY not in repr(resp)
    stub_server.fail_next(1, "status", status=401, message=f"Incorrect API key provided: {KEY}")
    with pytest.raises(ProviderError) as info:
        await p.complete(ModelRequest(model="gpt-4o", messages=ASK), timeout=5)
    assert KEY not in str(info.value) and KEY not in repr(info.value.args)
    assert info.value.__cause__ is None  # the SDK error (which holds the request) is not chained
