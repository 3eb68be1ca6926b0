"""The monitor tells the truth: stalls, post-processing, a clock that never jumps, the
provider's concurrency cap, a failed run's reason, and user text shown as typed."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.signal import Signal

from tests.stub_server import StubServer
from tests.test_runs_screen import KEY_ENV, app_for, open_builder, settings_for
from workbench.core.engine import RunStats
from workbench.core.engine.events import StageProgress
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.status import RunStatus
from workbench.core.store import Store
from workbench.tui.app import make_app
from workbench.tui.live_runs import LiveRun
from workbench.tui.screens.monitor import MonitorScreen
from workbench.tui.widgets.meters import STALL_AFTER_S, headline


def stats(done: int, total: int = 10, *, in_flight: int = 1, eta: float = 0.0) -> RunStats:
    return RunStats(
        run_id=1,
        elapsed_s=30.0,
        stages={"solve": StageProgress(total=total, done=done)},
        in_flight=in_flight,
        eta_s=eta,
    )


def test_the_headline_says_stalled_post_processing_or_paused() -> None:
    running = RunStatus.RUNNING
    assert "ETA 0:04" in str(headline(stats(5, eta=4.0), running, quiet_s=1.0))
    stalled = str(headline(stats(5, eta=0.0), running, quiet_s=20.0))
    assert "stalled: no result for 0:20" in stalled and "ETA 0:00" not in stalled
    assert "stalled" not in str(headline(stats(5), running, quiet_s=STALL_AFTER_S - 1))
    post = str(headline(stats(10, in_flight=0), running, quiet_s=8.0))
    assert "post-processing solve" in post and "0:08" in post
    paused = RunStats(run_id=1, stages={"solve": StageProgress(10, 5)}, paused=True, eta_s=3)
    assert "paused" in str(headline(paused, running))
    assert "elapsed 0:42" in str(headline(stats(5), running, elapsed_s=42.0))
    assert "ETA –" in str(headline(stats(10, in_flight=0), RunStatus.DONE))


async def test_the_clock_ticks_and_a_stall_is_named(tmp_path: Path) -> None:
    """Between snapshots (a pause, a stall) elapsed keeps moving instead of jumping when the
    next snapshot lands, and with no new result the ETA says "stalled" and for how long."""
    settings = Settings()
    store = Store(tmp_path / "wb.db")
    run_id = store.create_run("watch me", "calibration", {})
    app = make_app(store, ProviderRegistry(settings), settings)
    async with app.run_test(size=(100, 30)) as pilot:
        live = LiveRun(run_id, ("stub:m",), Signal(app, "changed"), stats=stats(5))
        monitor = MonitorScreen(run_id, live)
        app.push_screen(monitor)
        await pilot.pause()
        head = monitor.query_one("#meters-headline")
        assert "elapsed 0:30" in str(head.render())
        monitor._snapshot_at -= 3  # the last snapshot came 3 s ago
        monitor._done_at -= 20  # and the last result 20 s ago
        await pilot.pause(1.1)  # one tick of the monitor's clock
        shown = str(head.render())
        assert "elapsed 0:33" in shown or "elapsed 0:34" in shown, shown
        assert "stalled: no result for 0:2" in shown
        live.stats = stats(6)  # a result lands: the stall is over
        monitor._live_changed(live)
        await pilot.pause()
        assert "stalled" not in str(head.render())


async def test_plus_stops_at_the_providers_max_concurrency(
    tmp_path: Path, stub_server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test-runs")
    stub_server.latency = 0.2
    settings = settings_for(stub_server)
    settings.providers["stub"] = settings.providers["stub"].model_copy(
        update={"max_concurrency": 4}
    )
    app = app_for(tmp_path, settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_builder(
            app, pilot, solver="stub:stub-model", samples="30", limit="6", concurrency="1"
        )
        await pilot.press("ctrl+l")
        await pilot.pause()
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen) and monitor.live is not None
        while monitor.live.stats is None or monitor.live.engine is None:
            await pilot.pause()
        await pilot.press("plus", "plus", "plus")
        assert monitor.live.limits == {"stub": 4}
        assert any("max_concurrency 4" in n.message for n in app._notifications)
        await pilot.press("C", "y")
        await app.workers.wait_for_complete()


async def test_a_failed_run_says_why_in_the_monitor_and_toasts_stay_plain(
    tmp_path: Path,
) -> None:
    settings = Settings()
    store = Store(tmp_path / "wb.db")
    run_id = store.create_run("[pricing] probe", "calibration", {})
    store.set_run_status(run_id, RunStatus.FAILED, error="no price for x:y in [pricing]")
    app = make_app(store, ProviderRegistry(settings), settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3", "enter")
        await pilot.pause()
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen)
        assert "[pricing] probe" in str(monitor.query_one("#monitor-title").render())
        controls = str(monitor.query_one("#monitor-controls").render())
        assert "run failed: no price for x:y in [pricing]" in controls
        monitor.notify("no price in [pricing]")
        assert not [n for n in app._notifications if n.markup]


def test_max_latency_counts_a_hung_attempt_in_flight() -> None:
    from workbench.tui.widgets.meters import latency_line

    done = RunStats(run_id=1, latency_max_ms=300.0, oldest_in_flight_ms=120.0)
    assert "max 300 ms" in str(latency_line(done)) and "in flight" not in str(latency_line(done))
    hung = RunStats(run_id=1, latency_max_ms=300.0, oldest_in_flight_ms=20_000.0)
    assert "max 20.0 s (in flight)" in str(latency_line(hung))
    first = RunStats(run_id=1, oldest_in_flight_ms=2_500.0)  # nothing finished yet
    assert "max 2,500 ms (in flight)" in str(latency_line(first))


async def test_the_engine_reports_the_oldest_attempt_in_flight(
    tmp_path: Path, stub_server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real run over the stub whose first attempt hangs: while it hangs, the snapshots
    say how long it has been in flight (and once it is over, nothing is)."""
    from tests.test_engine_stub import KEY_ENV as ENGINE_KEY
    from tests.test_engine_stub import make, work

    monkeypatch.setenv(ENGINE_KEY, "sk-wbtest-RECOGNISABLE-7f3a9c1e5b")
    seen: list[RunStats] = []
    engine, store, registry = make(tmp_path, stub_server, timeout_s=1.0)
    engine.on_event = lambda e: seen.append(e) if isinstance(e, RunStats) else None
    stub_server.fail_next(1, "hang")
    run_id = store.create_run("t", "test", {})
    assert (await engine.run_items(run_id, work(1))).status == "done"
    await registry.aclose()
    hung = [s.oldest_in_flight_ms for s in seen if s.oldest_in_flight_ms is not None]
    assert hung and max(hung) >= 500  # the hang, seen while it lasted
    assert seen[-1].oldest_in_flight_ms is None  # nothing left in flight at the end
