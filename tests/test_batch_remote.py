"""Provider batch APIs against loopback stubs of OpenAI Batch and Anthropic Message Batches:
happy path, partial failure, expiry, rejection, token limit, 404, crash recovery, cancel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stub_batch import BatchAPIStub
from workbench.core.batch import remote
from workbench.core.engine import Engine, WorkItem, item_key
from workbench.core.errors import ConfigError
from workbench.core.providers import Message, ModelRequest, ProviderRegistry
from workbench.core.settings import Price, ProviderSettings, Settings
from workbench.core.status import BatchState
from workbench.core.store import Store

KEY = "WB_BATCH_TEST_KEY"
MODELS = {"oa": "oa:gpt-4o-mini", "an": "an:claude-sonnet-4-5"}


@pytest.fixture
def stub() -> Iterator[BatchAPIStub]:
    s = BatchAPIStub().start()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY, "sk-batch-test")


def setup(tmp_path: Path, stub: BatchAPIStub) -> tuple[Engine, Store]:
    settings = Settings(
        providers={
            "oa": ProviderSettings(kind="openai", base_url=f"{stub.url}/v1", api_key_env=KEY),
            "an": ProviderSettings(kind="anthropic", base_url=stub.url, api_key_env=KEY),
        },
        pricing={
            "oa:gpt-4o-mini": Price(input=1.0, output=2.0),
            "an:claude-sonnet-4-5": Price(input=3.0, output=15.0),
        },
    )
    store = Store(tmp_path / "wb.db")
    return Engine(store, ProviderRegistry(settings), settings), store


def work(n: int, model: str, start: int = 0) -> list[WorkItem]:
    name = model.split(":", 1)[1]
    return [
        WorkItem(
            key=item_key("solve", f"p{i}"),
            stage="solve",
            role="solver",
            model_ref=model,
            request=ModelRequest(
                model=name, messages=(Message("user", f"question {i}"),), max_tokens=50
            ),
        )
        for i in range(start, start + n)
    ]


async def nosleep(_: float) -> None:
    return None


async def finish(engine: Engine, store: Store, run_id: int) -> remote.BatchReport:
    return await remote.wait(engine, store, run_id, first_poll_s=0, sleep=nosleep)


def done(store: Store, run_id: int) -> int:
    return int(
        store.scalar("SELECT COUNT(*) FROM samples WHERE run_id=? AND status='done'", (run_id,))
    )


@pytest.mark.parametrize("provider", ["oa", "an"])
async def test_happy_path_batch_price_and_cache(
    tmp_path: Path, stub: BatchAPIStub, provider: str
) -> None:
    engine, store = setup(tmp_path, stub)
    run_id = store.create_run("t", "test", {})
    items = work(5, MODELS[provider])
    report = await remote.submit_items(engine, store, run_id, "solve", items)
    assert len(report.submitted) == 1
    assert store.scalar("SELECT status FROM batches") == "submitted"
    result = await finish(engine, store, run_id)
    assert result.ingested.recorded == 5 and result.open == 0
    assert done(store, run_id) == 5 and set(stub.billed.values()) == {1}
    price = {"oa": (1.0, 2.0), "an": (3.0, 15.0)}[provider]
    for c in store.query("SELECT * FROM calls WHERE run_id=?", (run_id,)):
        full = (c["input_tokens"] * price[0] + c["output_tokens"] * price[1]) / 1e6
        assert c["cost_usd"] == pytest.approx(full / 2)
    # the cache is filled: a sync re-run sends nothing and costs $0
    again = store.create_run("again", "test", {})
    assert (await engine.run_items(again, items)).status == "done"
    assert (
        store.scalar("SELECT SUM(cache_hit), SUM(cost_usd) FROM calls WHERE run_id=?", (again,))
        == 5
    )
    await engine.providers.aclose()


@pytest.mark.parametrize("provider", ["oa", "an"])
async def test_failed_lines_are_retried_in_the_next_batch(
    tmp_path: Path, stub: BatchAPIStub, provider: str
) -> None:
    engine, store = setup(tmp_path, stub)
    run_id = store.create_run("t", "test", {})
    items = work(4, MODELS[provider])
    await remote.submit_items(engine, store, run_id, "solve", items)
    first = store.query("SELECT custom_id FROM batch_items")
    stub.fail_ids = {first[0]["custom_id"]}
    result = await finish(engine, store, run_id)
    assert (result.ingested.recorded, result.ingested.requeued) == (3, 1)
    stub.fail_ids = set()
    second = await remote.submit_items(engine, store, run_id, "solve", items)
    assert store.scalar("SELECT n_items FROM batches WHERE id=?", (second.submitted[0],)) == 1
    await finish(engine, store, run_id)
    assert done(store, run_id) == 4 and set(stub.billed.values()) == {1}
    await engine.providers.aclose()


@pytest.mark.parametrize("provider", ["oa", "an"])
async def test_expiry_records_partial_output_and_requeues_the_rest(
    tmp_path: Path, stub: BatchAPIStub, provider: str
) -> None:
    engine, store = setup(tmp_path, stub)
    run_id = store.create_run("t", "test", {})
    items = work(5, MODELS[provider])
    await remote.submit_items(engine, store, run_id, "solve", items)
    stub.expire_after = 2
    result = await finish(engine, store, run_id)
    assert (result.ingested.recorded, result.ingested.requeued) == (2, 3)
    stub.expire_after = None
    await remote.submit_items(engine, store, run_id, "solve", items)
    await finish(engine, store, run_id)
    assert done(store, run_id) == 5 and set(stub.billed.values()) == {1}
    await engine.providers.aclose()


async def test_rejected_file_gives_item_errors_and_bills_nothing(
    tmp_path: Path, stub: BatchAPIStub
) -> None:
    engine, store = setup(tmp_path, stub)
    run_id = store.create_run("t", "test", {})
    await remote.submit_items(engine, store, run_id, "solve", work(2, MODELS["oa"]))
    stub.reject_lines = {1: "max_tokens is too large", 2: "model not found"}
    await finish(engine, store, run_id)
    errors = store.query(
        "SELECT error_kind, error FROM calls WHERE run_id=? ORDER BY item_key", (run_id,)
    )
    assert [e["error_kind"] for e in errors] == ["bad_request", "bad_request"]
    assert (
        "max_tokens is too large" in errors[0]["error"] and "model not found" in errors[1]["error"]
    )
    assert not stub.billed
    await engine.providers.aclose()


async def test_token_limit_on_create_leaves_items_waiting(
    tmp_path: Path, stub: BatchAPIStub
) -> None:
    engine, store = setup(tmp_path, stub)
    run_id = store.create_run("t", "test", {})
    items = work(3, MODELS["oa"])
    stub.token_limit = 1
    report = await remote.submit_items(engine, store, run_id, "solve", items)
    assert report.submitted == [] and report.waiting == 3 and "token" in report.refused[0].lower()
    assert store.scalar("SELECT status FROM batches") == "refused"
    again = await remote.submit_items(engine, store, run_id, "solve", items)
    assert len(again.submitted) == 1
    await finish(engine, store, run_id)
    assert done(store, run_id) == 3 and set(stub.billed.values()) == {1}
    await engine.providers.aclose()


async def test_a_404_right_after_create_is_transient(tmp_path: Path, stub: BatchAPIStub) -> None:
    engine, store = setup(tmp_path, stub)
    run_id = store.create_run("t", "test", {})
    stub.not_found_first = True
    await remote.submit_items(engine, store, run_id, "solve", work(2, MODELS["oa"]))
    await finish(engine, store, run_id)
    assert done(store, run_id) == 2
    await engine.providers.aclose()


class Crash(BaseException):
    """Stands in for the process dying at one point of the order of operations."""


@pytest.mark.parametrize("provider", ["oa", "an"])
@pytest.mark.parametrize("point", ["preparing", "uploaded", "created"])
async def test_a_crash_at_each_point_resumes_without_paying_twice(
    tmp_path: Path, stub: BatchAPIStub, monkeypatch: pytest.MonkeyPatch, provider: str, point: str
) -> None:
    if provider == "an" and point == "uploaded":
        pytest.skip("Anthropic batches have no upload step")
    engine, store = setup(tmp_path, stub)
    run_id = store.create_run("t", "test", {})
    items = work(4, MODELS[provider])
    real_update = remote.update_batch
    real_submit = remote.BatchAPI.submit

    def crashing_update(db: Store, batch_id: int, **kw: Any) -> None:
        real_update(db, batch_id, **kw)
        status = kw.get("status")
        if (point, status) in (("uploaded", BatchState.UPLOADED),):
            raise Crash
        if point == "created" and status is BatchState.SUBMITTED:
            # the remote batch exists, its id never reached the store
            real_update(db, batch_id, status=BatchState.PREPARING)
            store.conn.execute("UPDATE batches SET remote_id=NULL WHERE id=?", (batch_id,))
            raise Crash

    async def crashing_submit(self: Any, db: Store, batch: Any, lines: Any) -> None:
        if point == "preparing":
            raise Crash
        await real_submit(self, db, batch, lines)

    monkeypatch.setattr(remote, "update_batch", crashing_update)
    monkeypatch.setattr(remote.BatchAPI, "submit", crashing_submit)
    with pytest.raises(Crash):
        await remote.submit_items(engine, store, run_id, "solve", items)
    monkeypatch.setattr(remote, "update_batch", real_update)
    monkeypatch.setattr(remote.BatchAPI, "submit", real_submit)
    # restart: the same items are out, so a resubmit sends nothing; polling recovers
    again = await remote.submit_items(engine, store, run_id, "solve", items)
    assert again.submitted == []
    await finish(engine, store, run_id)
    assert done(store, run_id) == 4
    assert stub.creates == 1 and set(stub.billed.values()) == {1} and len(stub.billed) == 4
    await engine.providers.aclose()


async def test_ambiguous_anthropic_recovery_asks_and_does_not_submit(
    tmp_path: Path, stub: BatchAPIStub
) -> None:
    engine, store = setup(tmp_path, stub)
    run_id = store.create_run("t", "test", {})
    await remote.submit_items(engine, store, run_id, "solve", work(2, MODELS["an"]))
    await remote.submit_items(engine, store, run_id, "solve", work(2, MODELS["an"], start=2))
    # a third batch of the same size whose create may or may not have happened
    from workbench.core.batch.rows import create_batch

    create_batch(
        store,
        run_id,
        provider="an",
        stage="solve",
        model=MODELS["an"],
        items=work(2, MODELS["an"], start=4),
    )
    with pytest.raises(remote.AmbiguousBatch, match="may be the one submitted before a crash"):
        await remote.poll_once(engine, store, run_id)
    assert stub.creates == 2
    assert store.scalar("SELECT COUNT(*) FROM batches WHERE status='ambiguous'") == 1
    await engine.providers.aclose()


async def test_budget_splits_a_batch_and_refuses_what_cannot_fit(
    tmp_path: Path, stub: BatchAPIStub
) -> None:
    engine, store = setup(tmp_path, stub)
    run_id = store.create_run("t", "test", {})
    items = work(8, MODELS["oa"])
    p = engine.prepare(items[0].model_ref, items[0].request, 0, items[0])
    one = remote._worst(engine, p)
    report = await remote.submit_items(engine, store, run_id, "solve", items, budget_usd=one * 5.5)
    sent = store.scalar("SELECT SUM(n_items) FROM batches WHERE status='submitted'")
    assert sent == 5 and report.waiting == 3 and "budget" in report.refused[0]  # split 4, 1
    reserved = store.scalar("SELECT SUM(reserved_usd) FROM batches")
    assert reserved <= one * 5.5
    await engine.providers.aclose()


@pytest.mark.parametrize("provider", ["oa", "an"])
async def test_cancel_ingests_partial_results(
    tmp_path: Path, stub: BatchAPIStub, provider: str
) -> None:
    engine, store = setup(tmp_path, stub)
    run_id = store.create_run("t", "test", {})
    await remote.submit_items(engine, store, run_id, "solve", work(4, MODELS[provider]))
    assert len(await remote.cancel(engine, store, run_id)) == 1
    result = await finish(engine, store, run_id)
    assert (result.ingested.recorded, result.ingested.requeued) == (2, 2)
    assert store.scalar("SELECT status FROM batches") == "ingested"
    await engine.providers.aclose()


@pytest.mark.parametrize("model", ["local:gemma-3-270m", "cohere:command-r-plus"])
async def test_unbatchable_providers_fail_before_any_spend(
    tmp_path: Path, stub: BatchAPIStub, model: str
) -> None:
    engine, store = setup(tmp_path, stub)
    run_id = store.create_run("t", "test", {})
    with pytest.raises(ConfigError, match=r"stage solve: .* has no batch API"):
        await remote.submit_items(engine, store, run_id, "solve", work(1, model))
    assert store.scalar("SELECT COUNT(*) FROM batches") == 0
