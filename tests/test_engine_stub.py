"""The engine through the real adapters over real HTTP (loopback stub): faults, cache, keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.stub_server import StubServer
from workbench.core.engine import Engine, LimitChanged, RetryPolicy, WorkItem, item_key
from workbench.core.providers import Message, ModelRequest, ProviderRegistry
from workbench.core.settings import ProviderSettings, Settings
from workbench.core.store import Store

KEY_ENV = "WB_ENGINE_TEST_KEY"
SECRET = "sk-wbtest-RECOGNISABLE-7f3a9c1e5b"


def make(
    tmp_path: Path, stub: StubServer, kind: str = "openai-compatible", **ps: Any
) -> tuple[Engine, Store, ProviderRegistry]:
    base = {
        "openai-compatible": stub.openai_base_url,
        "openai": stub.openai_base_url,
        "anthropic": stub.anthropic_base_url,
        "cohere": stub.cohere_base_url,
    }[kind]
    options: dict[str, Any] = {
        "kind": kind,
        "base_url": base,
        "api_key_env": KEY_ENV,
        "max_attempts": 4,
        "timeout_s": 5.0,
    }
    options.update(ps)
    settings = Settings(providers={"stub": ProviderSettings(**options)})
    registry = ProviderRegistry(settings)
    store = Store(tmp_path / "wb.db")
    engine = Engine(store, registry, settings, retry=RetryPolicy(base_s=0.001, cap_s=0.01))
    return engine, store, registry


def work(n: int, model: str = "stub-model", **req: Any) -> list[WorkItem]:
    return [
        WorkItem(
            key=item_key("solve", f"p{i}"),
            stage="solve",
            role="solver",
            model_ref=f"stub:{model}",
            request=ModelRequest(model=model, messages=(Message("user", f"question {i}"),), **req),
        )
        for i in range(n)
    ]


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)


@pytest.mark.parametrize("fault", ["rate_limit", "status", "malformed", "drop"])
async def test_retryable_faults_are_retried(
    tmp_path: Path, stub_server: StubServer, fault: str
) -> None:
    engine, store, registry = make(tmp_path, stub_server)
    stub_server.fail_next(2, fault, retry_after=0 if fault == "rate_limit" else None)
    run_id = store.create_run("t", "test", {})
    assert (await engine.run_items(run_id, work(1))).status == "done"
    call = store.query_one("SELECT * FROM calls WHERE run_id=?", (run_id,))
    assert call is not None and call["attempts"] == 3 and call["status"] == "ok"
    assert stub_server.total == 3 and stub_server.paid == 1
    await registry.aclose()


async def test_hang_past_timeout_is_retried(tmp_path: Path, stub_server: StubServer) -> None:
    # The hang lasts 30 s; the timeout must still leave the healthy retry ample time on a
    # loaded 2-core machine, or the retry itself times out and a third attempt is counted.
    engine, store, registry = make(tmp_path, stub_server, timeout_s=2.0)
    stub_server.fail_next(1, "hang")
    run_id = store.create_run("t", "test", {})
    assert (await engine.run_items(run_id, work(1))).status == "done"
    call = store.query_one("SELECT attempts FROM calls WHERE run_id=?", (run_id,))
    assert call == {"attempts": 2}
    await registry.aclose()


async def test_bad_request_fails_fast_with_the_provider_message(
    tmp_path: Path, stub_server: StubServer
) -> None:
    engine, store, registry = make(tmp_path, stub_server)
    stub_server.fail_next(1, "status", status=400, message="max_tokens must be positive")
    run_id = store.create_run("t", "test", {})
    assert (await engine.run_items(run_id, work(1))).status == "failed"
    call = store.query_one("SELECT * FROM calls WHERE run_id=?", (run_id,))
    assert call is not None and call["attempts"] == 1 and call["error_kind"] == "bad_request"
    assert "max_tokens must be positive" in call["error"]
    assert stub_server.total == 1
    await registry.aclose()


@pytest.mark.parametrize("kind", ["openai-compatible", "anthropic", "cohere"])
async def test_cache_hit_sends_no_request(
    tmp_path: Path, stub_server: StubServer, kind: str
) -> None:
    engine, store, registry = make(tmp_path, stub_server, kind)
    first = store.create_run("a", "test", {})
    assert (await engine.run_items(first, work(3))).status == "done"
    assert stub_server.total == 3
    second = store.create_run("b", "test", {})
    assert (await engine.run_items(second, work(3))).status == "done"
    assert stub_server.total == 3  # counted at the stub: nothing went out
    totals = store.run_totals(second)
    assert totals.n_cache_hits == 3 and totals.cost_usd == 0
    await registry.aclose()


async def test_429_episode_halves_the_limit_once(tmp_path: Path, stub_server: StubServer) -> None:
    engine, store, registry = make(tmp_path, stub_server, max_concurrency=8)
    changes: list[LimitChanged] = []
    engine.on_event = lambda e: changes.append(e) if isinstance(e, LimitChanged) else None
    stub_server.latency = 0.05
    stub_server.fail_next(8, "rate_limit", retry_after=0)
    run_id = store.create_run("t", "test", {})
    assert (await engine.run_items(run_id, work(8))).status == "done"
    # eight concurrent 429s are one episode: one halving, 8 -> 4
    backoffs = [c for c in changes if c.reason == "429 backoff"]
    assert [c.limit for c in backoffs] == [4]
    await registry.aclose()


async def test_key_never_written_to_the_db(tmp_path: Path, stub_server: StubServer) -> None:
    engine, store, registry = make(tmp_path, stub_server)
    run_id = store.create_run("t", "test", {})
    await engine.run_items(run_id, work(3))
    stub_server.fail_next(1, "status", status=401, message=f"Incorrect API key provided: {SECRET}")
    await engine.run_items(store.create_run("u", "test", {}), work(1, model="other"))
    # the key did reach the wire (so the test is meaningful) ...
    assert any(SECRET in str(r.headers) for r in stub_server.requests)
    store.close()
    # ... and is nowhere in the database files
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("wb.db*"))
    assert SECRET.encode() not in blob
    assert b"Incorrect API key" in blob
    await registry.aclose()
