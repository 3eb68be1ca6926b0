"""A scripted in-process Provider and price table for engine unit tests.

Integration tests use the loopback stub server and the real adapters; these
fakes let the unit tests script exact failure sequences and observe
concurrency without HTTP.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.core.engine import Engine, Event, RetryPolicy, WorkItem, item_key
from workbench.core.providers import (
    Completion,
    Continuation,
    Message,
    ModelRequest,
    ModelResponse,
    Provider,
    ProviderRegistry,
    Usage,
)
from workbench.core.settings import Price, ProviderSettings, Settings
from workbench.core.store import Store

# (request, attempt number for this prompt) -> response text, or raise ProviderError
Script = Callable[[ModelRequest, int], str]


class FakeProvider(Provider):
    kind = "fake"

    def __init__(
        self,
        name: str = "fake",
        *,
        script: Script | None = None,
        continuations: tuple[Continuation, ...] = (Continuation.RAW,),
        gate: asyncio.Event | None = None,
    ) -> None:
        super().__init__(name, "http://fake.invalid/v1")
        self.script = script or (lambda req, n: f"answer to {req.messages[-1].content}")
        self.continuations = continuations
        self.gate = gate  # when set, requests wait for it (to observe in-flight work)
        self.calls = 0
        self.attempts: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.started = threading.Event()
        self.requests: list[ModelRequest] = []

    def continuation_methods(self, model: str) -> tuple[Continuation, ...]:
        return self.continuations

    async def complete(self, request: ModelRequest, *, timeout: float) -> ModelResponse:
        self.calls += 1
        prompt = request.messages[-1].content if request.messages else (request.prompt or "")
        self.attempts[prompt] += 1
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.started.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            else:
                await asyncio.sleep(0)
            text = self.script(request, self.attempts[prompt])
        finally:
            self.in_flight -= 1
        return ModelResponse(
            completions=(Completion(text=text, finish_reason="stop"),),
            usage=Usage(input_tokens=10, output_tokens=len(text.split())),
            continuation=self.resolve_continuation(request),
            sent_params={"temperature": request.temperature},
        )


class FakePrices:
    """Dollars per million tokens for known refs; None for the rest."""

    def __init__(self, prices: dict[str, Price] | None = None) -> None:
        self.prices = prices or {}

    def price(self, model_ref: str) -> Price | None:
        return self.prices.get(model_ref)

    def cost(self, model_ref: str, usage: Usage, *, batch: bool = False) -> float | None:
        p = self.prices.get(model_ref)
        if p is None:
            return None
        return (usage.input_tokens * p.input + usage.output_tokens * p.output) / 1e6


class Recorder:
    """Collects events (thread-safe) and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()
        self.hooks: list[Callable[[Event], None]] = []

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()
        for hook in self.hooks:
            hook(event)

    def of(self, kind: type) -> list[Any]:
        with self._cond:
            return [e for e in self.events if isinstance(e, kind)]

    def wait_for(self, pred: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(pred(e) for e in self.events), timeout)
            assert ok, "event did not arrive"
            return next(e for e in self.events if pred(e))


def provider_settings(**kw: Any) -> ProviderSettings:
    base: dict[str, Any] = {"kind": "openai-compatible", "max_concurrency": 8, "max_attempts": 4}
    base.update(kw)
    return ProviderSettings(**base)


def make_engine(
    tmp_path: Path,
    provider: FakeProvider,
    *,
    ps: ProviderSettings | None = None,
    prices: dict[str, Price] | None = None,
    recorder: Recorder | None = None,
    sleeps: list[float] | None = None,
    **kw: Any,
) -> tuple[Engine, Store]:
    settings = Settings(providers={provider.name: ps or provider_settings()})
    registry = ProviderRegistry(settings, overrides={provider.name: provider})
    store = Store(tmp_path / "wb.db")

    async def fake_sleep(delay: float) -> None:
        if sleeps is not None:
            sleeps.append(delay)
        await asyncio.sleep(0)

    engine = Engine(
        store,
        registry,
        settings,
        on_event=recorder,
        prices=FakePrices(prices),
        retry=RetryPolicy(base_s=0.01, cap_s=0.05),
        sleep=fake_sleep,
        **kw,
    )
    return engine, store


def items(
    n: int, *, model_ref: str = "fake:m1", stage: str = "solve", **req: Any
) -> list[WorkItem]:
    out = []
    max_tokens = req.pop("max_tokens", 100)
    for i in range(n):
        request = ModelRequest(
            model=model_ref.split(":", 1)[1],
            messages=(Message("user", f"question {i}"),),
            max_tokens=max_tokens,
            **req,
        )
        out.append(
            WorkItem(
                key=item_key(stage, f"p{i}", 0),
                stage=stage,
                role="solver",
                model_ref=model_ref,
                request=request,
                problem_id=None,
                payload={"i": i},
            )
        )
    return out


def new_run(store: Store, name: str = "t") -> int:
    return store.create_run(name, "test", {})


def add_toy_problems(store: Store, n: int, *, dataset: str = "toy") -> list[str]:
    """``n`` GSM8K-style problems "What is 2 + i?" (answer 2 + i), ids ``toy/i``."""
    from workbench.core.store import now_iso

    now = now_iso()
    with store.transaction():
        store.insert(
            "datasets",
            {"id": dataset, "name": dataset, "origin": "test", "format": "gsm8k",
             "n_problems": n, "imported_at": now},
        )  # fmt: skip
        for i in range(n):
            store.insert(
                "problems",
                {"id": f"{dataset}/{i}", "dataset_id": dataset, "source": "gsm8k",
                 "question": f"What is 2 + {i}?", "solution": f"2 + {i} = {2 + i}\n#### {2 + i}",
                 "answer": str(2 + i), "created_at": now},
            )  # fmt: skip
    return [f"{dataset}/{i}" for i in range(n)]
