"""Anthropic adapter end to end against the loopback stub (real HTTP through the official SDK)."""

from __future__ import annotations

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
from workbench.core.providers.anthropic import PREFILL_MODELS, AnthropicProvider, build
from workbench.core.settings import ProviderSettings

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")

KEY = "sk-ant-test-secret-0123456789"
ASK = (Message("user", "What is six times seven?"),)
OLD = "claude-3-5-haiku-20241022"  # still accepts an assistant prefill
NEW = "claude-opus-4-6"  # rejects prefill; stub answers it with a 400

Factory = Callable[..., AnthropicProvider]


@pytest.fixture
async def make(
    stub_server: StubServer, clean_provider_env: pytest.MonkeyPatch
) -> AsyncIterator[Factory]:
    clean_provider_env.setenv("ANTHROPIC_API_KEY", KEY)
    built: list[AnthropicProvider] = []

    def factory(**kw: object) -> AnthropicProvider:
        kw.setdefault("base_url", stub_server.anthropic_base_url)
        provider = build("anthropic", ProviderSettings(kind="anthropic", **kw))  # type: ignore[arg-type]
        built.append(provider)
        return provider

    yield factory
    for p in built:
        await p.aclose()


def _sent_key(headers: dict[str, str]) -> bool:
    return headers.get("x-api-key") == KEY or headers.get("Authorization") == f"Bearer {KEY}"


async def test_text_usage_system_and_auth(make: Factory, stub_server: StubServer) -> None:
    stub_server.responder = lambda path, body: StubReply("The answer is 42.", cached_tokens=3)
    req = ModelRequest(model="claude-sonnet-4-5", messages=ASK, system="Be brief.", stop=("\n\n",))
    resp = await make().complete(req, timeout=5)
    assert resp.text == "The answer is 42." and resp.finish_reason == "stop"
    # input counts every prompt token; the cache-read part is reported as cached
    assert resp.usage.input_tokens == 7 and resp.usage.cached_tokens == 3
    assert resp.usage.output_tokens == 4
    [logged] = stub_server.requests
    assert logged.path == "/v1/messages" and _sent_key(logged.headers)
    assert logged.body["system"] == "Be brief."
    assert logged.body["stop_sequences"] == ["\n\n"]
    assert logged.body["messages"] == [{"role": "user", "content": "What is six times seven?"}]


async def test_prefill_continuation(make: Factory, stub_server: StubServer) -> None:
    p = make()
    assert OLD.startswith(PREFILL_MODELS)
    req = ModelRequest(model=OLD, messages=ASK, prefix="Six times seven is ")
    assert p.continuation_methods(OLD) == (Continuation.PREFILL, Continuation.EMULATE)
    resp = await p.complete(req, timeout=5)
    assert resp.continuation is Continuation.PREFILL
    assert resp.text == " The answer is 42."
    # the API rejects trailing whitespace in a final assistant turn
    assert stub_server.requests[0].body["messages"][-1] == {
        "role": "assistant",
        "content": "Six times seven is",
    }


async def test_newer_models_emulate_and_refuse_prefill_before_spend(
    make: Factory, stub_server: StubServer
) -> None:
    p = make()
    resp = await p.complete(ModelRequest(model=NEW, messages=ASK, prefix="Six times"), timeout=5)
    assert resp.continuation is Continuation.EMULATE
    assert resp.text == " The answer is 42."
    last = stub_server.requests[0].body["messages"][-1]
    assert last["role"] == "user" and "<partial_answer>\nSix times\n" in last["content"]
    forced = ModelRequest(model=NEW, messages=ASK, prefix="x", continuation=Continuation.PREFILL)
    with pytest.raises(ConfigError, match="prefill"):
        p.resolve_continuation(forced)
    with pytest.raises(ProviderError) as info:
        await p.complete(forced, timeout=5)
    assert info.value.kind is ErrorKind.BAD_REQUEST
    assert stub_server.total == 1


async def test_a_prefill_the_server_rejects_is_a_clear_bad_request(
    make: Factory, stub_server: StubServer
) -> None:
    stub_server.prefill_rejecting = ("claude-3-7",)  # as if this model had dropped prefill
    req = ModelRequest(model="claude-3-7-sonnet-20250219", messages=ASK, prefix="So")
    with pytest.raises(ProviderError) as info:
        await make().complete(req, timeout=5)
    assert (info.value.kind, info.value.status) == (ErrorKind.BAD_REQUEST, 400)
    assert "prefill" in str(info.value)


@pytest.mark.parametrize(
    ("model", "sent", "dropped"),
    [
        (OLD, {"temperature": 0.5, "top_p": 0.9}, None),
        ("claude-sonnet-4-5-20250929", {"temperature": 0.5}, {"top_p": 0.9}),
        ("claude-opus-4-7", {}, {"temperature": 0.5, "top_p": 0.9}),
    ],
)
async def test_sampling_params_go_in_extra_body_where_accepted(
    make: Factory,
    stub_server: StubServer,
    model: str,
    sent: dict[str, float],
    dropped: dict[str, float] | None,
) -> None:
    req = ModelRequest(model=model, messages=ASK, temperature=0.5, top_p=0.9)
    resp = await make().complete(req, timeout=5)
    body = stub_server.requests[0].body
    assert {k: body[k] for k in ("temperature", "top_p") if k in body} == sent
    assert resp.sent_params.get("extra_body", {}) == sent
    assert resp.sent_params.get("dropped") == dropped


async def test_tool_use_round_trip(make: Factory, stub_server: StubServer) -> None:
    stub_server.responder = lambda path, body: StubReply(
        "Let me compute.", tool_calls=(StubToolCall("python", {"code": "6*7"}),)
    )
    tool = ToolSpec("python", "Run Python", {"type": "object"})
    p = make()
    resp = await p.complete(ModelRequest(model=NEW, messages=ASK, tools=(tool,)), timeout=5)
    assert resp.finish_reason == "tool_calls" and resp.text == "Let me compute."
    [call] = resp.completions[0].tool_calls
    assert (call.name, call.arguments) == ("python", {"code": "6*7"})
    assert stub_server.requests[0].body["tools"] == [
        {"name": "python", "description": "Run Python", "input_schema": {"type": "object"}}
    ]
    stub_server.responder = lambda path, body: "42."
    follow = ModelRequest(
        model=NEW,
        messages=(
            *ASK,
            Message("assistant", "Let me compute.", tool_calls=(ToolCall(call.id, "python", {}),)),
            Message("tool", "42", tool_call_id=call.id),
        ),
        tools=(tool,),
    )
    assert (await p.complete(follow, timeout=5)).text == "42."
    wire = stub_server.requests[1].body["messages"]
    assert wire[1]["content"][1] == {
        "type": "tool_use",
        "id": call.id,
        "name": "python",
        "input": {},
    }
    assert wire[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "42"}],
    }


async def test_refusal_and_length_stop_reasons(make: Factory, stub_server: StubServer) -> None:
    p = make()
    stub_server.responder = lambda path, body: StubReply("I won't.", finish="refusal")
    resp = await p.complete(ModelRequest(model=NEW, messages=ASK), timeout=5)
    assert (resp.finish_reason, resp.text) == ("refusal", "I won't.")
    stub_server.responder = lambda path, body: "one two three four five"
    resp = await p.complete(ModelRequest(model=NEW, messages=ASK, max_tokens=2), timeout=5)
    assert (resp.finish_reason, resp.text) == ("length", "one two")


async def test_n_above_one_is_refused_before_any_request(
    make: Factory, stub_server: StubServer
) -> None:
    with pytest.raises(ProviderError) as info:
        await make().complete(ModelRequest(model=NEW, messages=ASK, n=2), timeout=5)
    assert info.value.kind is ErrorKind.BAD_REQUEST
    assert stub_server.total == 0


FAULTS = [
    ("rate_limit", {"retry_after": 3}, ErrorKind.RATE_LIMIT, 429, 3.0),
    ("status", {"status": 529}, ErrorKind.SERVER, 529, None),
    ("status", {"status": 500}, ErrorKind.SERVER, 500, None),
    ("hang", {}, ErrorKind.TIMEOUT, None, None),
    ("malformed", {}, ErrorKind.MALFORMED, 200, None),
    ("drop", {}, ErrorKind.CONNECTION, None, None),
    ("status", {"status": 400}, ErrorKind.BAD_REQUEST, 400, None),
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
    req = ModelRequest(model=NEW, messages=ASK)
    for fault, kw, kind, status, retry_after in FAULTS:
        stub_server.fail_next(1, fault, **kw)  # type: ignore[arg-type]
        before = stub_server.total
        with pytest.raises(ProviderError) as info:
            await p.complete(req, timeout=0.5)
        err = info.value
        assert (err.kind, err.status, err.retry_after) == (kind, status, retry_after), fault
        assert stub_server.total == before + 1, "the SDK must not retry on its own"
    assert (await p.complete(req, timeout=5)).text


async def test_base_url_and_key_from_env(
    stub_server: StubServer, clean_provider_env: pytest.MonkeyPatch
) -> None:
    clean_provider_env.setenv("ANTHROPIC_BASE_URL", stub_server.anthropic_base_url)
    clean_provider_env.setenv("ANTHROPIC_API_KEY", KEY)
    p = build("anthropic", ProviderSettings(kind="anthropic"))
    assert p.base_url == stub_server.anthropic_base_url
    assert (await p.complete(ModelRequest(model=NEW, messages=ASK), timeout=5)).text
    assert _sent_key(stub_server.requests[0].headers)
    await p.aclose()


async def test_missing_key_and_leaks(
    stub_server: StubServer, clean_provider_env: pytest.MonkeyPatch, make: Factory
) -> None:
    clean_provider_env.delenv("ANTHROPIC_API_KEY")
    bare = build("anthropic", ProviderSettings(kind="anthropic"))
    with pytest.raises(ConfigError, match="set ANTHROPIC_API_KEY"):
        bare.check_ready()
    clean_provider_env.setenv("ANTHROPIC_API_KEY", KEY)
    p = make()
    resp = await p.complete(ModelRequest(model=NEW, messages=ASK), timeout=5)
    assert KEY not in repr(resp)
    stub_server.fail_next(1, "status", status=401, message=f"invalid x-api-key {KEY}")
    with pytest.raises(ProviderError) as info:
        await p.complete(ModelRequest(model=NEW, messages=ASK), timeout=5)
    assert KEY not in str(info.value)
