"""Quitting with a run in progress asks (cancel / wait / detach); a run executing in another
process is followed live from the store; run controls are offered only while they apply."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Static

from tests.stub_server import StubServer
from tests.test_runs_screen import KEY_ENV, app_for, open_builder, settings_for
from workbench.core.engine.lease import RunLease
from workbench.core.status import RunStatus
from workbench.core.store import Store, now_iso
from workbench.tui.dialogs import ChoiceDialog
from workbench.tui.screens.monitor import MonitorScreen
from workbench.tui.screens.runs import RunsScreen


async def launch_slow_run(app: object, pilot: object) -> MonitorScreen:
    await open_builder(
        app, pilot, solver="stub:stub-model", samples="4", limit="6", concurrency="1"
    )  # type: ignore[arg-type]
    await pilot.press("ctrl+l")  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
    monitor = app.screen  # type: ignore[attr-defined]
    assert isinstance(monitor, MonitorScreen)
    return monitor


async def test_quit_during_a_run_asks_and_cancel_stops_it_resumably(
    tmp_path: Path, stub_server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test-quit")
    stub_server.latency = 0.3  # 24 calls: the run is still going when q is pressed
    app = app_for(tmp_path, settings_for(stub_server))
    async with app.run_test(size=(100, 30)) as pilot:
        monitor = await launch_slow_run(app, pilot)
        run_id = monitor.run_id
        assert stub_server.wait_for_requests(1)
        await pilot.press("q")
        dialog = app.screen
        assert isinstance(dialog, ChoiceDialog)
        assert [k for k, _ in dialog.choices] == ["cancel", "wait", "detach"]
        await pilot.press("enter")  # "wait" is highlighted: nothing happens to the run
        await pilot.pause()
        assert app.screen is monitor and app.is_running
        await pilot.press("q", "up", "enter")  # cancel
        for _ in range(100):
            if not app.is_running:
                break
            await asyncio.sleep(0.05)
        assert not app.is_running  # quit once the run had stopped
    with Store(tmp_path / "wb.db") as store:
        assert store.get_run(run_id)["status"] == RunStatus.CANCELLED
        assert store.get_run(run_id)["owner_token"] is None  # its lease released: resumable


async def test_a_run_in_another_process_is_followed_live(tmp_path: Path) -> None:
    from workbench.core.providers import ProviderRegistry
    from workbench.core.settings import Settings
    from workbench.tui.app import make_app

    db = tmp_path / "wb.db"
    elsewhere = Store(db)  # stands for the other executor's connection
    run_id = elsewhere.create_run("cli run", "calibration", {})
    elsewhere.set_run_status(run_id, RunStatus.RUNNING)
    settings = Settings()
    app = make_app(Store(db), ProviderRegistry(settings), settings)
    with RunLease(elsewhere, run_id, interval=0.1):
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("3")
            await pilot.pause()
            assert isinstance(app.screen, RunsScreen)
            await pilot.press("enter")
            await pilot.pause()
            monitor = app.screen
            assert isinstance(monitor, MonitorScreen) and monitor.status is RunStatus.RUNNING
            controls = str(monitor.query_one("#monitor-controls", Static).render())
            assert "running in another process" in controls
            # no pause / cancel / limit for a run this app does not execute
            assert not monitor.check_action("cancel_run", ())
            assert not monitor.check_action("toggle_pause", ())
            ts = now_iso()
            for i in range(3):  # the other process stores samples...
                elsewhere.insert(
                    "samples",
                    {"run_id": run_id, "stage": "solve", "item_key": f"solve/p/{i}",
                     "sample_index": i, "status": "done", "payload": "{}",
                     "created_at": ts, "updated_at": ts},
                )  # fmt: skip
            await asyncio.sleep(1.3)
            await pilot.pause()
            assert monitor.stats is not None and monitor.stats.stages["solve"].done == 3
            elsewhere.set_run_status(run_id, RunStatus.DONE)  # ...and finishes
            await asyncio.sleep(1.3)
            await pilot.pause()
            assert monitor.status is RunStatus.DONE
            assert "done · t traces" in str(monitor.query_one("#monitor-controls").render())
    elsewhere.close()
