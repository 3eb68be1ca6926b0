"""The OpenAI-compatible adapter's direct transport against the openai SDK path it replaces:
the same JSON on the wire, the same parsed responses, the same error kinds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from tests.stub_server import StubReply, StubServer, StubToolCall
from tests.test_providers_openai import FAULTS
from workbench.core.errors import ErrorKind, ProviderError
from workbench.core.providers import (
    Continuation,
    Message,
    ModelRequest,
    ModelResponse,
    ToolSpec,
    openai_compatible,
)
from workbench.core.providers.openai_compatible import OpenAICompatibleProvider, build
from workbench.core.settings import ProviderSettings

KEY = "sk-compat-secret-0123456789"
ASK = (Message("user", "What is six times seven?"),)
TOOL = ToolSpec("add", "adds", {"type": "object", "properties": {"a": {"type": "number"}}})

REQUESTS = {
    "plain chat": ModelRequest(model="m", messages=ASK),
    "sampling": ModelRequest(
        model="m",
        system="Be brief.",
        messages=ASK,
        temperature=0.3,
        top_p=0.9,
        seed=7,
        stop=("\n\n", "END"),
        n=2,
        max_tokens=77,
    ),
    "tools": ModelRequest(model="m", messages=ASK, tools=(TOOL,)),
    "raw continuation": ModelRequest(
        model="m", messages=ASK, prefix="Six times seven", continuation=Continuation.RAW
    ),
    "emulated continuation": ModelRequest(
        model="m", messages=ASK, prefix="Six times seven", continuation=Continuation.EMULATE
    ),
    "raw prompt": ModelRequest(model="m", prompt="Q: 6*7?\nA:"),
    "extra body": ModelRequest(
        model="m", messages=ASK, extra={"top_k": 20, "repetition_penalty": 1.1}
    ),
    "forced completions": ModelRequest(model="m", messages=ASK, extra={"endpoint": "completions"}),
}

Factory = Callable[..., OpenAICompatibleProvider]


@pytest.fixture
async def make(
    stub_server: StubServer, clean_provider_env: pytest.MonkeyPatch
) -> AsyncIterator[Factory]:
    clean_provider_env.setenv("COMPAT_KEY", KEY)
    built: list[OpenAICompatibleProvider] = []

    def factory(**kw: object) -> OpenAICompatibleProvider:
        kw.setdefault("base_url", stub_server.openai_base_url)
        kw.setdefault("api_key_env", "COMPAT_KEY")
        provider = build("vllm", ProviderSettings(kind="openai-compatible", **kw))  # type: ignore[arg-type]
        built.append(provider)
        return provider

    yield factory
    for p in built:
        await p.aclose()


async def _send(
    p: OpenAICompatibleProvider, stub: StubServer, request: ModelRequest, *, sdk: bool
) -> tuple[str, dict[str, object], ModelResponse]:
    openai_compatible.USE_SDK = sdk
    try:
        before = len(stub.requests)
        response = await p.complete(request, timeout=5)
    finally:
        openai_compatible.USE_SDK = False
    (logged,) = stub.requests[before:]
    return logged.path, logged.body, response


@pytest.mark.parametrize("name", list(REQUESTS))
async def test_the_same_body_reaches_the_wire_and_parses_the_same(
    make: Factory, stub_server: StubServer, name: str
) -> None:
    stub_server.responder = lambda path, body: StubReply(
        "Forty-two.",
        tool_calls=(StubToolCall("add", {"a": 1}),) if body.get("tools") else (),
    )
    p = make()
    request = REQUESTS[name]
    sdk_path, sdk_body, sdk_response = await _send(p, stub_server, request, sdk=True)
    path, body, response = await _send(p, stub_server, request, sdk=False)
    assert (path, body) == (sdk_path, sdk_body)
    # ids differ per answer (the stub numbers them); everything else is equal
    assert response.completions == sdk_response.completions or name == "tools"
    assert [c.text for c in response.completions] == [c.text for c in sdk_response.completions]
    assert response.usage == sdk_response.usage and response.sent_params == sdk_response.sent_params
    assert response.model == sdk_response.model and response.continuation == (
        sdk_response.continuation
    )
    assert stub_server.requests[-1].headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("sdk", [False, True], ids=["direct", "sdk"])
async def test_each_fault_maps_to_the_same_error_kind(
    make: Factory, stub_server: StubServer, sdk: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(openai_compatible, "USE_SDK", sdk)
    p = make()
    req = ModelRequest(model="m", messages=ASK)
    for fault, kw, kind, status, retry_after in FAULTS:
        stub_server.fail_next(1, fault, **kw)  # type: ignore[arg-type]
        before = stub_server.total
        with pytest.raises(ProviderError) as info:
            await p.complete(req, timeout=0.5)
        err = info.value
        assert (err.kind, err.status, err.retry_after) == (kind, status, retry_after), fault
        assert stub_server.total == before + 1, "one attempt per call"
        assert "\n" not in str(err)
    assert (await p.complete(req, timeout=5)).text  # the session still works afterwards


async def test_refused_connection_and_secret_in_an_error_body(
    make: Factory, stub_server: StubServer
) -> None:
    dead = make(base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ProviderError) as info:
        await dead.complete(ModelRequest(model="m", messages=ASK), timeout=5)
    assert info.value.kind is ErrorKind.CONNECTION
    p = make()
    stub_server.fail_next(1, "status", status=401, message=f"Incorrect API key provided: {KEY}")
    with pytest.raises(ProviderError) as info:
        await p.complete(ModelRequest(model="m", messages=ASK), timeout=5)
    assert info.value.kind is ErrorKind.AUTH
    assert KEY not in str(info.value) and info.value.__cause__ is None


async def test_no_key_configured_sends_no_authorization(
    stub_server: StubServer, clean_provider_env: pytest.MonkeyPatch
) -> None:
    clean_provider_env.setenv("OPENAI_API_KEY", "sk-openai-must-not-leak-000000")
    p = build(
        "vllm", ProviderSettings(kind="openai-compatible", base_url=stub_server.openai_base_url)
    )
    assert (await p.complete(ModelRequest(model="m", messages=ASK), timeout=5)).text
    assert "Authorization" not in stub_server.requests[-1].headers
    await p.aclose()
