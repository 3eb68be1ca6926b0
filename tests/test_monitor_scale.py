"""The monitor shows a run's scale-out: its provider batches (per batch and in total, with
cancel for one batch, checked at the batch API stub) and its endpoint pool's replicas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.signal import Signal
from textual.widgets import DataTable

from tests.stub_batch import BatchAPIStub
from tests.test_batch_remote import KEY, MODELS, setup, work
from workbench.core.batch import remote
from workbench.core.engine import ReplicaStats, RunStats
from workbench.core.engine.events import StageProgress
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import Store
from workbench.core.views.scale import batches_view, replica_lines
from workbench.tui.app import make_app
from workbench.tui.dialogs import ConfirmDialog
from workbench.tui.live_runs import LiveRun
from workbench.tui.screens.monitor import MonitorScreen


@pytest.fixture
def stub() -> Iterator[BatchAPIStub]:
    s = BatchAPIStub().start()
    yield s
    s.stop()


@pytest.mark.parametrize("provider", ["oa", "an"])
async def test_the_monitor_lists_batches_and_cancels_the_highlighted_one(
    tmp_path: Path, stub: BatchAPIStub, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    monkeypatch.setenv(KEY, "sk-batch-test")
    engine, store = setup(tmp_path, stub)
    run_id = store.create_run("t", "test", {})
    await remote.submit_items(
        engine, store, run_id, "solve", work(6, MODELS[provider]), target_size=3
    )
    await remote.poll_once(engine, store, run_id)  # the provider's status and expiry
    await engine.providers.aclose()
    view = batches_view(store, run_id)
    assert [line.out for line in view.lines] == [3, 3]
    assert (view.totals.in_flight, view.totals.queued, view.totals.done) == (6, 0, 0)
    assert view.totals.oldest_open_age_s is not None
    first, second = (line.remote_id for line in view.lines)
    app = make_app(store, ProviderRegistry(engine.settings), engine.settings)
    async with app.run_test(size=(160, 48)) as pilot:
        monitor = MonitorScreen(run_id)
        app.push_screen(monitor)
        await pilot.pause()
        table = monitor.query_one("#monitor-batches", DataTable)
        assert table.display and table.row_count == 2
        row = [str(c) for c in table.get_row_at(1)]
        assert row[1] == provider and row[2] == second and row[3] == "0/3" and row[5] == "3"
        totals = str(monitor.query_one("#monitor-batch-totals").render())
        assert "in flight 6" in totals and "queued 0" in totals and "oldest open" in totals
        table.move_cursor(row=1)
        await pilot.press("ctrl+x")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert any("cancel asked" in n.message for n in app._notifications)
        assert str(table.get_row_at(1)[-1]) == "in_progress, cancelling"
    cancelled = {rid for rid, b in stub.batches.items() if b.get("_cancel")}
    assert cancelled == {second}  # that batch only, at the provider
    assert first not in cancelled
    meta = {line.remote_id: line.cancel_requested for line in batches_view(store, run_id).lines}
    assert meta == {first: False, second: True}
    store.close()


async def test_a_run_without_batches_or_pools_shows_neither(tmp_path: Path) -> None:
    settings = Settings()
    store = Store(tmp_path / "wb.db")
    run_id = store.create_run("plain", "calibration", {})
    app = make_app(store, ProviderRegistry(settings), settings)
    async with app.run_test(size=(100, 30)) as pilot:
        monitor = MonitorScreen(run_id)
        app.push_screen(monitor)
        await pilot.pause()
        assert not monitor.query_one("#monitor-batches").display
        assert not monitor.query_one("#monitor-replicas").display
        assert not monitor.check_action("cancel_batch", ())


def pool_stats(elapsed: float, served: tuple[int, int], *, up: bool = True) -> RunStats:
    replicas = (
        ReplicaStats("vllm", "http://gpu1:8000/v1", True, 3, 64, served[0], 0, 48.0),
        ReplicaStats("vllm", "http://gpu2:8000/v1", up, 0, 64, served[1], 5, None),
    )
    return RunStats(
        run_id=1,
        elapsed_s=elapsed,
        stages={"solve": StageProgress(total=100, done=sum(served))},
        replicas=replicas,
    )


def test_replica_rates_come_from_two_snapshots() -> None:
    first, later = pool_stats(10.0, (0, 0)), pool_stats(12.0, (40, 10), up=False)
    assert [r.requests_per_s for r in replica_lines(first)] == [None, None]
    lines = replica_lines(later, first)
    assert [r.requests_per_s for r in lines] == [20.0, 5.0]
    assert [(r.up, r.in_flight, r.limit, r.errors) for r in lines] == [
        (True, 3, 64, 0),
        (False, 0, 64, 5),
    ]


async def test_the_monitor_shows_each_replica(tmp_path: Path) -> None:
    settings = Settings()
    store = Store(tmp_path / "wb.db")
    run_id = store.create_run("pool", "calibration", {})
    app = make_app(store, ProviderRegistry(settings), settings)
    async with app.run_test(size=(160, 48)) as pilot:
        live = LiveRun(run_id, ("vllm:m",), Signal(app, "changed"), stats=pool_stats(10.0, (0, 0)))
        monitor = MonitorScreen(run_id, live)
        app.push_screen(monitor)
        await pilot.pause()
        live.stats = pool_stats(12.0, (40, 10), up=False)
        monitor._live_changed(live)
        await pilot.pause()
        shown = str(monitor.query_one("#monitor-replicas").render())
        one, two = shown.splitlines()[1:]
        assert "up" in one and "gpu1" in one and "in flight 3/64" in one
        assert "20.0 req/s" in one and "p50 48" in one and "0 errors" in one
        assert "DOWN" in two and "gpu2" in two and "5.0 req/s" in two and "5 errors" in two
