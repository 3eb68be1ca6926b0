"""Engine behaviour with a scripted in-process provider: journal, cache, retries, budget."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import threading
from pathlib import Path

import pytest

from tests.engine_fakes import (
    FakeProvider,
    Recorder,
    items,
    make_engine,
    new_run,
    provider_settings,
)
from workbench.core.engine import (
    ItemFinished,
    LimitChanged,
    RetryScheduled,
    RunStats,
    StageStarted,
)
from workbench.core.engine.cache import hash_request_text, request_json_text
from workbench.core.errors import ConfigError, ErrorKind, ProviderError
from workbench.core.providers import (
    Continuation,
    Message,
    ModelRequest,
    ToolCall,
    ToolSpec,
)
from workbench.core.settings import Price
from workbench.core.store import Store, dumps

PRICE = {"fake:m1": Price(input=1.0, output=2.0)}


def _reference_key(provider: str, base_url: str, request: ModelRequest, sample_index: int) -> str:
    """The cache key's definition: sha256 of dumps() of its four parts."""
    blob = dumps(
        {
            "provider": provider,
            "base_url": base_url.rstrip("/"),
            "request": request.to_json(),
            "sample_index": sample_index,
        }
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def test_hash_matches_contract() -> None:
    req = ModelRequest(
        model="m",
        messages=(
            Message("user", "héllo {x}"),
            Message("assistant", "", tool_calls=(ToolCall("c1", "calc", {"x": [1, 2]}),)),
            Message("tool", "3", tool_call_id="c1"),
        ),
        system="be brief",
        prefix="Step 1:",
        continuation=Continuation.PREFILL,
        temperature=0.5,
        stop=("\n\n",),
        seed=7,
        tools=(ToolSpec("calc", "adds", {"type": "object"}),),
        extra={"endpoint": "chat", "nested": {"a": 1}},
    )
    text = request_json_text(req)
    assert text == dumps(req.to_json())
    assert text == dumps(dataclasses.asdict(req))  # to_json is asdict without the deep copies
    assert hash_request_text("p", "http://x/v1/", text, 3) == _reference_key(
        "p", "http://x/v1", req, 3
    )


async def test_run_writes_calls_and_samples_and_counts_after_commit(tmp_path: Path) -> None:
    rec = Recorder()
    provider = FakeProvider()
    engine, store = make_engine(tmp_path, provider, prices=PRICE, recorder=rec)
    run_id = new_run(store)
    check = Store(tmp_path / "wb.db")

    def committed(event: object) -> None:
        if isinstance(event, ItemFinished):  # counted only once its rows are on disk
            row = check.query_one("SELECT status FROM samples WHERE item_key=?", (event.key,))
            assert row is not None and row["status"] == "done"

    rec.hooks.append(committed)
    end = await engine.run_items(run_id, items(20), budget_usd=None)
    assert end.status == "done" and end.error is None
    assert provider.calls == 20
    samples = store.samples(run_id)
    assert len(samples) == 20 and {s["status"] for s in samples} == {"done"}
    assert samples[0]["payload"]["i"] == 0 and samples[0]["payload"]["finish_reason"] == "stop"
    assert all(s["call_id"] for s in samples)
    calls = store.query("SELECT * FROM calls WHERE run_id=?", (run_id,))
    assert len(calls) == 20 and all(c["cost_usd"] > 0 for c in calls)
    assert len(rec.of(ItemFinished)) == 20
    assert rec.of(StageStarted)[0].total == 20
    final = rec.of(RunStats)[-1]
    assert final.stages["solve"].done == 20 and final.spent_usd == pytest.approx(
        store.run_totals(run_id).cost_usd
    )
    check.close()


async def test_cache_hit_sends_nothing_and_costs_nothing(tmp_path: Path) -> None:
    provider = FakeProvider()
    engine, store = make_engine(tmp_path, provider, prices=PRICE)
    first = new_run(store)
    await engine.run_items(first, items(5))
    second = new_run(store, "again")
    assert (await engine.run_items(second, items(5))).status == "done"
    assert provider.calls == 5  # counted at the provider: no request for the second run
    hits = store.query("SELECT * FROM calls WHERE run_id=?", (second,))
    assert all(h["cache_hit"] == 1 and h["cost_usd"] == 0 and h["cached_from"] for h in hits)
    assert store.run_totals(second).cost_usd == 0
    assert [s["output"] for s in store.samples(second)] == [
        s["output"] for s in store.samples(first)
    ]


async def test_resume_skips_finished_items(tmp_path: Path) -> None:
    provider = FakeProvider()
    engine, store = make_engine(tmp_path, provider)
    run_id = new_run(store)
    await engine.run_items(run_id, items(4))
    await engine.run_items(run_id, items(6))
    assert provider.calls == 6
    assert store.run_totals(run_id).n_calls == 6


async def test_retries_honour_retry_after_then_succeed(tmp_path: Path) -> None:
    def script(req: ModelRequest, n: int) -> str:
        if n <= 2:
            raise ProviderError(ErrorKind.RATE_LIMIT, "slow down", status=429, retry_after=0.5)
        return "ok"

    sleeps: list[float] = []
    rec = Recorder()
    engine, store = make_engine(tmp_path, FakeProvider(script=script), sleeps=sleeps, recorder=rec)
    run_id = new_run(store)
    assert (await engine.run_items(run_id, items(1))).status == "done"
    assert sleeps and all(d >= 0.5 for d in sleeps) and len(sleeps) == 2
    call = store.query_one("SELECT * FROM calls WHERE run_id=?", (run_id,))
    assert call is not None and call["attempts"] == 3 and call["status"] == "ok"
    assert [e.attempt for e in rec.of(RetryScheduled)] == [1, 2]


async def test_backoff_grows_with_full_jitter_and_attempts_are_bounded(tmp_path: Path) -> None:
    def script(req: ModelRequest, n: int) -> str:
        raise ProviderError(ErrorKind.SERVER, "boom", status=503)

    sleeps: list[float] = []
    provider = FakeProvider(script=script)
    engine, store = make_engine(
        tmp_path, provider, sleeps=sleeps, ps=provider_settings(max_attempts=5)
    )
    run_id = new_run(store)
    end = await engine.run_items(run_id, items(1))
    assert end.status == "failed"
    assert provider.calls == 5 and len(sleeps) == 4
    caps = [min(0.05, 0.01 * 2**i) for i in range(4)]
    assert all(0 <= d <= c for d, c in zip(sleeps, caps, strict=True))
    sample = store.samples(run_id)[0]
    assert sample["status"] == "error" and sample["payload"]["error_kind"] == "server"
    assert "boom" in (end.error or "")


async def test_non_retryable_fails_fast_with_provider_message(tmp_path: Path) -> None:
    def script(req: ModelRequest, n: int) -> str:
        raise ProviderError(ErrorKind.BAD_REQUEST, "max_tokens is too large", status=400)

    provider = FakeProvider(script=script)
    engine, store = make_engine(tmp_path, provider)
    run_id = new_run(store)
    assert (await engine.run_items(run_id, items(3))).status == "failed"
    assert provider.calls == 3  # one attempt each
    call = store.query_one("SELECT * FROM calls WHERE run_id=?", (run_id,))
    assert call is not None and call["error"] == "bad_request 400: max_tokens is too large"


async def test_auth_error_stops_the_run(tmp_path: Path) -> None:
    def script(req: ModelRequest, n: int) -> str:
        raise ProviderError(ErrorKind.AUTH, "invalid api key", status=401)

    provider = FakeProvider(script=script)
    engine, store = make_engine(tmp_path, provider, ps=provider_settings(max_concurrency=1))
    run_id = new_run(store)
    end = await engine.run_items(run_id, items(10))
    assert end.status == "failed"
    assert provider.calls == 1
    assert "invalid api key" in (end.error or "")


async def test_per_attempt_timeout(tmp_path: Path) -> None:
    provider = FakeProvider(gate=asyncio.Event())  # never released: every attempt hangs
    engine, store = make_engine(
        tmp_path, provider, ps=provider_settings(timeout_s=0.05, max_attempts=2)
    )
    run_id = new_run(store)
    assert (await engine.run_items(run_id, items(1))).status == "failed"
    call = store.query_one("SELECT * FROM calls WHERE run_id=?", (run_id,))
    assert call is not None and call["error_kind"] == "timeout" and call["attempts"] == 2


async def test_errors_are_never_cached(tmp_path: Path) -> None:
    fail = {"on": True}

    def script(req: ModelRequest, n: int) -> str:
        if fail["on"]:
            raise ProviderError(ErrorKind.BAD_REQUEST, "nope", status=400)
        return "fine"

    provider = FakeProvider(script=script)
    engine, store = make_engine(tmp_path, provider)
    await engine.run_items(new_run(store), items(2))
    fail["on"] = False
    run_id = new_run(store, "b")
    assert (await engine.run_items(run_id, items(2))).status == "done"
    assert provider.calls == 4
    assert store.run_totals(run_id).n_cache_hits == 0


async def test_errored_items_rerun_and_replace_their_sample(tmp_path: Path) -> None:
    fail = {"on": True}

    def script(req: ModelRequest, n: int) -> str:
        if fail["on"] and "question 1" in req.messages[-1].content:
            raise ProviderError(ErrorKind.BAD_REQUEST, "nope", status=400)
        return "fine"

    provider = FakeProvider(script=script)
    engine, store = make_engine(tmp_path, provider)
    run_id = new_run(store)
    assert (await engine.run_items(run_id, items(3))).status == "failed"
    old = store.samples(run_id, status="error")[0]
    fail["on"] = False
    assert (await engine.run_items(run_id, items(3))).status == "done"
    assert provider.calls == 4  # only the errored item went out again
    new = next(s for s in store.samples(run_id) if s["item_key"] == old["item_key"])
    assert new["id"] == old["id"] and new["status"] == "done"
    assert store.run_totals(run_id).n_errors == 1  # the old error call stays on record


async def test_budget_cap_stops_before_passing_the_cap(tmp_path: Path) -> None:
    prices = {"fake:m1": Price(input=1000.0, output=1000.0)}  # $ per million tokens
    provider = FakeProvider()
    engine, store = make_engine(
        tmp_path, provider, prices=prices, ps=provider_settings(max_concurrency=2)
    )
    run_id = new_run(store)
    # worst case per item: (question chars/4 + 1 + 100 output) * 1000 / 1e6 ~= $0.104
    end = await engine.run_items(run_id, items(20), budget_usd=0.2)
    assert end.status == "stopped: budget"
    assert 0 < provider.calls < 20
    assert store.run_totals(run_id).cost_usd <= 0.2
    assert "budget" in (end.error or "")


async def test_capped_run_with_unpriced_model_refuses_to_start(tmp_path: Path) -> None:
    provider = FakeProvider()
    engine, store = make_engine(tmp_path, provider, prices={})
    with pytest.raises(ConfigError, match="no known price"):
        await engine.run_items(new_run(store), items(3), budget_usd=1.0)
    assert provider.calls == 0


async def test_unsupported_continuation_fails_before_any_request(tmp_path: Path) -> None:
    provider = FakeProvider(continuations=())
    engine, store = make_engine(tmp_path, provider)
    work = items(3) + items(1, stage="cont", prefix="Step 1: ")
    with pytest.raises(ConfigError, match="cannot continue from a prefix"):
        await engine.run_items(new_run(store), work)
    assert provider.calls == 0


async def test_continuation_method_is_stored(tmp_path: Path) -> None:
    engine, store = make_engine(tmp_path, FakeProvider())
    run_id = new_run(store)
    await engine.run_items(run_id, items(1, prefix="Step 1: "))
    call = store.query_one("SELECT continuation FROM calls WHERE run_id=?", (run_id,))
    assert call == {"continuation": "raw"}
    assert store.samples(run_id)[0]["payload"]["continuation"] == "raw"


async def test_concurrency_ceiling_and_user_limit(tmp_path: Path) -> None:
    provider = FakeProvider(gate=asyncio.Event())
    rec = Recorder()
    engine, store = make_engine(tmp_path, provider, recorder=rec, concurrency=3)
    run_id = new_run(store)
    task = asyncio.create_task(engine.run_items(run_id, items(12)))
    while provider.in_flight < 3:
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert provider.in_flight == 3  # min(provider max 8, experiment 3)
    engine.set_limit("fake", 1)
    assert provider.gate is not None
    provider.gate.set()
    assert (await task).status == "done"
    assert any(isinstance(e, LimitChanged) and e.reason == "user" for e in rec.events)
    assert engine.limits() == {"fake@http://fake.invalid/v1": 1}


def test_cancel_from_another_thread_keeps_finished_work(tmp_path: Path) -> None:
    release = asyncio.Event()
    done_first = threading.Event()

    def script(req: ModelRequest, n: int) -> str:
        return "ok"

    provider = FakeProvider(script=script)
    engine, store = make_engine(tmp_path, provider, ps=provider_settings(max_concurrency=2))
    run_id = new_run(store)
    results: list[str] = []

    async def main() -> None:
        original = provider.complete

        async def complete(request: ModelRequest, *, timeout: float):  # type: ignore[no-untyped-def]
            if "question 0" not in request.messages[-1].content:
                done_first.set()
                await release.wait()  # everything after the first item hangs
            return await original(request, timeout=timeout)

        provider.complete = complete  # type: ignore[method-assign]
        results.append((await engine.run_items(run_id, items(10))).status)

    thread = threading.Thread(target=lambda: asyncio.run(main()))
    thread.start()
    assert done_first.wait(10)
    engine.cancel()
    thread.join(10)
    assert results == ["cancelled"]
    done = store.samples(run_id)
    assert [s["item_key"] for s in done] == ["solve/p0/0"]  # the finished item was committed


def test_pause_holds_requests_until_resume(tmp_path: Path) -> None:
    rec = Recorder()
    provider = FakeProvider()
    engine, store = make_engine(tmp_path, provider, recorder=rec, snapshot_interval=0.01)
    run_id = new_run(store)
    engine.pause()
    results: list[str] = []
    thread = threading.Thread(
        target=lambda: results.append(asyncio.run(engine.run_items(run_id, items(5))).status)
    )
    thread.start()
    rec.wait_for(lambda e: isinstance(e, RunStats) and e.paused)
    assert provider.calls == 0
    engine.resume()
    thread.join(10)
    assert results == ["done"] and provider.calls == 5


async def test_engine_call_one_off_with_cache(tmp_path: Path) -> None:
    provider = FakeProvider()
    engine, _store = make_engine(tmp_path, provider, prices=PRICE)
    req = ModelRequest(model="m1", messages=(Message("user", "hi"),))
    first = await engine.call("fake:m1", req)
    second = await engine.call("fake:m1", req)
    assert first.status == "ok" and not first.cache_hit and first.cost_usd
    assert second.cache_hit and second.text == first.text and second.call_id != first.call_id
    assert provider.calls == 1
    engine.close()


async def test_key_is_redacted_from_stored_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-test-RECOGNISABLE-0123456789"
    monkeypatch.setenv("FAKE_API_KEY", secret)

    def script(req: ModelRequest, n: int) -> str:
        raise ProviderError(ErrorKind.AUTH, f"Incorrect API key provided: {secret}", status=401)

    engine, store = make_engine(tmp_path, FakeProvider(script=script))
    await engine.run_items(new_run(store), items(1))
    store.close()
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("wb.db*"))
    assert secret.encode() not in blob
