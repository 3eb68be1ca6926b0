"""Cohere adapter end to end against the loopback stub (real HTTP through the official SDK)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import pytest

from tests.stub_server import StubReply, StubServer, StubToolCall
from workbench.core.errors import ConfigError, ErrorKind, ProviderError
from workbench.core.providers import Continuation, Message, ModelRequest, ToolCall, ToolSpec
from workbench.core.providers.cohere import CohereProvider, build
from workbench.core.settings import ProviderSettings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:cohere")

KEY = "co-test-secret-0123456789"
MODEL = "command-a-03-2025"
ASK = (Message("user", "What is six times seven?"),)

Factory = Callable[..., CohereProvider]


@pytest.fixture
async def make(
    stub_server: StubServer, clean_provider_env: pytest.MonkeyPatch
) -> AsyncIterator[Factory]:
    clean_provider_env.setenv("CO_API_KEY", KEY)
    built: list[CohereProvider] = []

    def factory(**kw: object) -> CohereProvider:
        kw.setdefault("base_url", stub_server.cohere_base_url)
        provider = build("cohere", ProviderSettings(kind="cohere", **kw))  # type: ignore[arg-type]
        built.append(provider)
        return provider

    yield factory
    for p in built:
        await p.aclose()


async def test_text_usage_params_and_auth(make: Factory, stub_server: StubServer) -> None:
    req = ModelRequest(
        model=MODEL, messages=ASK, system="Be brief.", temperature=0.3, top_p=0.5, seed=1
    )
    resp = await make().complete(req, timeout=5)
    assert resp.text.endswith("The answer is 42.") and resp.finish_reason == "stop"
    # billed units, not the raw token counts (the stub makes them differ)
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (7, 11)
    assert resp.sent_params == {"max_tokens": 1024, "temperature": 0.3, "p": 0.5, "seed": 1}
    [logged] = stub_server.requests
    assert logged.path == "/v2/chat"
    assert logged.headers["Authorization"] == f"Bearer {KEY}"
    assert logged.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert logged.body["p"] == 0.5


async def test_emulated_continuation(make: Factory, stub_server: StubServer) -> None:
    p = make()
    assert p.continuation_methods(MODEL) == (Continuation.EMULATE,)
    resp = await p.complete(ModelRequest(model=MODEL, messages=ASK, prefix="Six times"), timeout=5)
    assert resp.continuation is Continuation.EMULATE and resp.text == " The answer is 42."
    assert "<partial_answer>" in stub_server.requests[0].body["messages"][-1]["content"]
    with pytest.raises(ConfigError):
        p.resolve_continuation(
            ModelRequest(model=MODEL, prefix="x", continuation=Continuation.PREFILL)
        )


async def test_tool_calls_round_trip(make: Factory, stub_server: StubServer) -> None:
    stub_server.responder = lambda path, body: StubReply(
        tool_calls=(StubToolCall("lookup", {"q": "x"}),)
    )
    tool = ToolSpec("lookup", "Look up", {"type": "object"})
    p = make()
    resp = await p.complete(ModelRequest(model=MODEL, messages=ASK, tools=(tool,)), timeout=5)
    assert resp.finish_reason == "tool_calls"
    [call] = resp.completions[0].tool_calls
    assert (call.name, call.arguments) == ("lookup", {"q": "x"})
    assert stub_server.requests[0].body["tools"][0]["function"]["name"] == "lookup"
    stub_server.responder = lambda path, body: "Found it."
    follow = ModelRequest(
        model=MODEL,
        messages=(
            *ASK,
            Message(
                "assistant", "I will look.", tool_calls=(ToolCall(call.id, "lookup", {"q": "x"}),)
            ),
            Message("tool", "result", tool_call_id=call.id),
        ),
        tools=(tool,),
    )
    assert (await p.complete(follow, timeout=5)).text == "Found it."
    wire = stub_server.requests[1].body["messages"]
    assert wire[1]["tool_plan"] == "I will look."
    assert json.loads(wire[1]["tool_calls"][0]["function"]["arguments"]) == {"q": "x"}
    assert wire[2] == {"role": "tool", "tool_call_id": call.id, "content": "result"}


FAULTS = [
    ("rate_limit", {"retry_after": 4}, ErrorKind.RATE_LIMIT, 429, 4.0),
    ("status", {"status": 500}, ErrorKind.SERVER, 500, None),
    ("status", {"status": 503}, ErrorKind.SERVER, 503, None),
    ("hang", {}, ErrorKind.TIMEOUT, None, None),
    ("malformed", {}, ErrorKind.MALFORMED, 200, None),
    ("drop", {}, ErrorKind.CONNECTION, None, None),
    ("status", {"status": 400}, ErrorKind.BAD_REQUEST, 400, None),
    ("status", {"status": 422}, ErrorKind.BAD_REQUEST, 422, None),
    ("status", {"status": 401}, ErrorKind.AUTH, 401, None),
    ("status", {"status": 404}, ErrorKind.NOT_FOUND, 404, None),
]


async def test_each_fault_maps_to_one_error_kind(make: Factory, stub_server: StubServer) -> None:
    p = make()
    req = ModelRequest(model=MODEL, messages=ASK)
    for fault, kw, kind, status, retry_after in FAULTS:
        stub_server.fail_next(1, fault, **kw)  # type: ignore[arg-type]
        before = stub_server.total
        with pytest.raises(ProviderError) as info:
            await p.complete(req, timeout=0.5)
        err = info.value
        assert (err.kind, err.status, err.retry_after) == (kind, status, retry_after), fault
        assert stub_server.total == before + 1, "the SDK must not retry on its own"
    assert (await p.complete(req, timeout=5)).text


async def test_base_url_and_alternate_key_from_env(
    stub_server: StubServer, clean_provider_env: pytest.MonkeyPatch
) -> None:
    clean_provider_env.setenv("CO_API_URL", stub_server.cohere_base_url)
    clean_provider_env.setenv("COHERE_API_KEY", KEY)
    p = build("cohere", ProviderSettings(kind="cohere"))
    assert p.base_url == stub_server.cohere_base_url
    p.check_ready()
    assert (await p.complete(ModelRequest(model=MODEL, messages=ASK), timeout=5)).text
    assert stub_server.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    await p.aclose()


async def test_missing_key_and_leaks(
    stub_server: StubServer, clean_provider_env: pytest.MonkeyPatch, make: Factory
) -> None:
    clean_provider_env.delenv("CO_API_KEY")
    with pytest.raises(ConfigError, match="set CO_API_KEY or COHERE_API_KEY"):
        build("cohere", ProviderSettings(kind="cohere")).check_ready()
    clean_provider_env.setenv("CO_API_KEY", KEY)
    p = make()
    stub_server.fail_next(1, "status", status=401, message=f"invalid api token {KEY}")
    with pytest.raises(ProviderError) as info:
        await p.complete(ModelRequest(model=MODEL, messages=ASK), timeout=5)
    assert KEY not in str(info.value)
    assert KEY not in repr(await p.complete(ModelRequest(model=MODEL, messages=ASK), timeout=5))
