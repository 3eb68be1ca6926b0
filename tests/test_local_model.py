"""The embedded Gemma 3 270M model produces real completions through llama.cpp."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator

import pytest

from workbench.core.errors import ErrorKind, ProviderError
from workbench.core.providers import Continuation, Message, ModelRequest, ToolSpec
from workbench.core.providers.local import LocalProvider, build
from workbench.core.settings import ProviderSettings

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed (make test installs it via the 'local' extra)",
    ),
]


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalProvider]:
    # one instance for the module: the model loads once (a second or two)
    local = build("local", ProviderSettings(kind="local", n_ctx=1024))
    yield local
    asyncio.run(local.aclose())


async def test_real_completion_raw_prompt(provider: LocalProvider) -> None:
    provider.check_ready()
    req = ModelRequest(
        model="gemma-3-270m",
        prompt="The capital of France is",
        max_tokens=8,
        temperature=0.0,
        seed=1,
    )
    resp = await provider.complete(req, timeout=120)
    assert resp.text.strip(), "the model produced no text"
    assert resp.finish_reason in ("stop", "length")
    assert resp.usage.input_tokens > 0 and 0 < resp.usage.output_tokens <= 8
    assert resp.model == "gemma-3-270m"
    assert resp.sent_params == {"max_tokens": 8, "temperature": 0.0, "seed": 1}
    # greedy decoding with a seed is reproducible
    again = await provider.complete(req, timeout=120)
    assert again.text == resp.text


async def test_raw_continuation_of_chat_turns_and_stop(provider: LocalProvider) -> None:
    req = ModelRequest(
        model="gemma-3-270m",
        messages=(Message("user", "Count from one to ten."),),
        prefix="One, two, three,",
        max_tokens=8,
        temperature=0.0,
        stop=("\n",),
    )
    assert provider.resolve_continuation(req) is Continuation.RAW
    resp = await provider.complete(req, timeout=120)
    assert resp.continuation is Continuation.RAW
    assert "\n" not in resp.text
    with pytest.raises(ProviderError) as info:
        await provider.complete(
            ModelRequest(model="gemma-3-270m", prompt="x", tools=(ToolSpec("t", "", {}),)),
            timeout=5,
        )
    assert info.value.kind is ErrorKind.BAD_REQUEST


@pytest.mark.parametrize(
    ("cores", "threads"), [(None, 1), (1, 1), (2, 1), (4, 2), (16, 8), (64, 8)]
)
def test_default_threads_leave_cores_for_the_app(cores: int | None, threads: int) -> None:
    from workbench.core.providers.local import default_threads

    assert default_threads(cores) == threads
