"""Runs: build a run, launch it against the stub server, watch it, compare with the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Button, DataTable, Input, Label, Select

from tests.problem_fixtures import fill_library
from tests.stub_server import StubServer
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Price, ProviderSettings, Settings
from workbench.core.store import Store
from workbench.core.views.runs import list_runs
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.dialogs import ConfirmDialog
from workbench.tui.screens.monitor import MonitorScreen
from workbench.tui.screens.run_builder import RunBuilderScreen
from workbench.tui.screens.runs import RunsScreen
from workbench.tui.widgets.meters import RunMeters, fmt_usd

KEY_ENV = "WB_RUNS_TEST_KEY"


def settings_for(stub: StubServer, *, confirm_above: float = 5.0) -> Settings:
    return Settings(
        providers={
            "stub": ProviderSettings(
                kind="openai-compatible",
                base_url=stub.openai_base_url,
                api_key_env=KEY_ENV,
                max_attempts=3,
                timeout_s=5.0,
            )
        },
        pricing={"stub:stub-model": Price(input=1.0, output=2.0)},
        confirm_above_usd=confirm_above,
    )


def app_for(tmp_path: Path, settings: Settings) -> WorkbenchApp:
    store = Store(tmp_path / "wb.db")
    if not store.scalar("SELECT COUNT(*) FROM problems"):
        fill_library(store, 12, with_difficulty=False)
    return make_app(store, ProviderRegistry(settings), settings)


async def open_builder(app: WorkbenchApp, pilot: object, **form: str) -> RunBuilderScreen:
    await app.switch_mode("runs")
    runs = app.screen
    assert isinstance(runs, RunsScreen)
    await pilot.press("n")  # type: ignore[attr-defined]
    builder = app.screen
    assert isinstance(builder, RunBuilderScreen)
    builder.query_one("#b-kind", Select).value = "calibration"
    await pilot.pause()  # type: ignore[attr-defined]
    for name, value in form.items():
        builder.query_one(f"#b-{name}", Input).value = value
    await pilot.pause()  # type: ignore[attr-defined]
    # plan now instead of after the typing pause, then wait for the planning worker
    if builder._debounce is not None:
        builder._debounce.stop()
    builder._replan()
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]
    return builder


async def test_launch_watch_and_match_the_store(
    tmp_path: Path, stub_server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test-runs")
    app = app_for(tmp_path, settings_for(stub_server, confirm_above=0.0))
    async with app.run_test(size=(120, 40)) as pilot:
        builder = await open_builder(
            app, pilot, solver="stub:stub-model", samples="2", limit="3", budget="5"
        )
        plan = builder.plan
        assert plan is not None and not plan.problems
        assert plan.estimate.n_requests == 6  # 3 problems x 2 samples
        assert plan.estimate.cost_high is not None and plan.estimate.cost_high > 0
        assert "unpriced" not in plan.estimate.cost_text()
        assert not builder.query_one("#b-launch", Button).disabled
        await pilot.press("ctrl+l")  # above the (zero) threshold: asks first
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await pilot.pause()
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        run_id = monitor.run_id
        assert monitor.status == "done", monitor.live and monitor.live.error
        # the run is named after its kind: the title says it once
        title = str(monitor.query_one("#monitor-title").render())
        assert title == f"run {run_id} · calibration"
        store = app.store
        totals = store.run_totals(run_id)
        assert totals.n_calls == 6 and totals.n_errors == 0
        assert stub_server.paid == 6
        live = monitor.live
        assert live is not None and live.stats is not None
        last = live.stats  # the engine's final live snapshot, as the monitor drew it
        assert last.input_tokens == totals.input_tokens
        assert last.output_tokens == totals.output_tokens
        assert last.spent_usd == pytest.approx(totals.cost_usd)
        assert sum(p.done for p in last.stages.values()) == store.scalar(
            "SELECT COUNT(*) FROM samples WHERE run_id=? AND status!='error'", (run_id,)
        )
        meters = monitor.query_one(RunMeters)
        money = str(meters.query_one("#meters-money").render())
        assert fmt_usd(totals.cost_usd) in money
        headline = str(meters.query_one("#meters-headline").render())
        assert "DONE" in headline and "6/6" in headline
        assert "recent calls' latency" in str(meters.query_one("#meters-latency").render())
        await pilot.press("escape")
        row = list_runs(store)[0]
        assert row.id == run_id and row.status == "done" and row.n_calls == 6
        assert isinstance(app.screen, RunsScreen)
        table = app.screen.query_one("#runs-table")
        assert table.row_count == 1  # type: ignore[attr-defined]


async def test_missing_key_and_unpriced_are_reported_before_launch(
    tmp_path: Path, stub_server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    app = app_for(tmp_path, settings_for(stub_server))
    async with app.run_test(size=(120, 40)) as pilot:
        builder = await open_builder(app, pilot, solver="stub:other-model", samples="1", limit="2")
        plan = builder.plan
        assert plan is not None
        assert plan.problems and KEY_ENV in plan.problems[0]
        assert "unpriced" in plan.estimate.cost_text()
        assert builder.query_one("#b-launch", Button).disabled
        problems = str(builder.query_one("#builder-problems").render())
        assert "missing" in problems
        await pilot.press("ctrl+l")  # refused: nothing launched
        assert app.screen is builder
        builder.query_one("#b-samples", Input).value = "lots"
        builder._replan()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert builder.plan is None
        assert "samples" in str(builder.query_one("#builder-problems").render())
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        assert not app.store.scalar("SELECT COUNT(*) FROM runs")


async def test_cancel_from_the_monitor(
    tmp_path: Path, stub_server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test-runs")
    stub_server.latency = 0.2  # long enough that the cancel lands mid-run
    app = app_for(tmp_path, settings_for(stub_server))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_builder(
            app, pilot, solver="stub:stub-model", samples="30", limit="6", concurrency="1"
        )
        await pilot.press("ctrl+l")
        await pilot.pause()
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen) and monitor.live is not None
        while monitor.live.stats is None or monitor.live.engine is None:
            await pilot.pause()  # wait for the engine to start and report once
        await pilot.press("plus")
        assert set(monitor.live.limits.values()) == {3}
        await pilot.press("C")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert monitor.status == "cancelled"
        assert app.store.get_run(monitor.run_id)["status"] == "cancelled"
        assert app.store.run_totals(monitor.run_id).n_calls < 180


async def test_builder_starts_on_a_field_shows_focus_and_takes_typing(
    tmp_path: Path, stub_server: StubServer
) -> None:
    app = app_for(tmp_path, settings_for(stub_server))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("runs")
        await pilot.press("n")
        builder = app.screen
        assert isinstance(builder, RunBuilderScreen)
        await pilot.pause()
        kind = builder.query_one("#b-kind", Select)
        assert app.focused is kind  # not the (invisible) scroll container around the form

        def focused_rows() -> list[str]:
            return [
                str(row.query_one(".builder-label", Label).render())
                for row in builder.query(".builder-row.-focused")
            ]

        assert focused_rows() == ["experiment"]
        # calibration has no judge: its field is empty and says so, instead of naming a model
        judge = builder.query_one("#b-judge", Input)
        assert judge.disabled and judge.value == ""
        assert judge.placeholder == "not used by calibration"
        kind.value = "recovery"
        await pilot.pause()
        assert not judge.disabled and judge.value == app.settings.default_model
        assert builder.query_one("#b-solver", Input).value == ""
        builder.query_one("#b-completer", Input).value = "stub:stub-model"
        kind.value = "calibration"
        await pilot.pause()
        kind.value = "recovery"  # a model typed before the switch comes back
        await pilot.pause()
        assert builder.query_one("#b-completer", Input).value == "stub:stub-model"
        kind.value = "calibration"
        await pilot.pause()
        assert builder.query_one("#b-solver", Input).value == app.settings.default_model
        await pilot.press("tab", *"probe")
        name = builder.query_one("#b-name", Input)
        assert app.focused is name and name.value == "probe"
        assert focused_rows() == ["name"]
        await pilot.press("tab", "tab", "2")
        assert builder.query_one("#b-limit", Input).value == "2"
        assert focused_rows() == ["limit"]
        # one line per field: the whole form is on screen without scrolling
        form = builder.query_one("#builder-form")
        assert form.max_scroll_y == 0
        assert (
            builder.query_one("#b-budget").region.bottom <= builder.query_one("#b-launch").region.y
        )
        await app.workers.wait_for_complete()


async def test_resume_a_run_left_running_by_a_closed_app(
    tmp_path: Path, stub_server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test-runs")
    app = app_for(tmp_path, settings_for(stub_server))
    config = {"kind": "calibration", "models": ["stub:stub-model"], "samples": 1}
    config["problems"] = {"limit": 2}
    run_id = app.store.create_run("left over", "calibration", config)
    app.store.set_run_status(run_id, "running")  # the app that ran it was killed
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("runs")
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        table = runs.query_one("#runs-table", DataTable)
        # no executor holds its lease: it shows as interrupted, not as running
        assert table.get_row_at(0)[3] == "interrupted"
        table.focus()
        await pilot.press("enter")  # watch: numbers from the store, not "waiting for…"
        stale = app.screen
        assert isinstance(stale, MonitorScreen) and stale.run_id == run_id
        headline = str(stale.query_one(RunMeters).query_one("#meters-headline").render())
        assert "INTERRUPTED" in headline and "waiting" not in headline
        await pilot.press("escape")
        await pilot.press("u")  # nobody runs it (the lease says so): resumes without asking
        await pilot.pause()
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen) and monitor.run_id == run_id
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert monitor.status == "done"
        assert app.store.get_run(run_id)["status"] == "done"
        assert stub_server.paid == 2
        await pilot.press("escape")

        def current() -> object:  # read afresh (mypy keeps the narrowed type otherwise)
            return app.screen

        assert current() is runs and table.get_row_at(0)[3] == "done"
        await pilot.press("u")  # a finished run has nothing left to send
        assert current() is runs and stub_server.paid == 2
        await pilot.press("enter")
        done = app.screen
        assert isinstance(done, MonitorScreen) and done.status == "done"
        headline = str(done.query_one(RunMeters).query_one("#meters-headline").render())
        assert "DONE" in headline and "2/2" in headline


async def test_launch_form_warns_when_its_estimate_exceeds_the_cap(
    tmp_path: Path, stub_server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test-runs")
    app = app_for(tmp_path, settings_for(stub_server))
    async with app.run_test(size=(120, 40)) as pilot:
        builder = await open_builder(
            app, pilot, solver="stub:stub-model", samples="4", limit="6", budget="0.001"
        )
        estimate = str(builder.query_one("#builder-estimate").render())
        assert "warning: the estimate exceeds the $0.00 budget cap" in estimate
        builder.query_one("#b-budget", Input).value = "100"
        builder._replan()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "budget cap" not in str(builder.query_one("#builder-estimate").render())
        await pilot.press("escape")


async def test_resume_a_budget_stopped_run_asks_for_a_higher_cap(
    tmp_path: Path, stub_server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.tui.dialogs import TextInputDialog

    monkeypatch.setenv(KEY_ENV, "sk-test-runs")
    app = app_for(tmp_path, settings_for(stub_server))
    config = {"kind": "calibration", "models": ["stub:stub-model"], "samples": 1}
    config |= {"problems": {"limit": 3}, "budget_usd": 0.0001}
    run_id = app.store.create_run("capped", "calibration", config, budget_usd=0.0001)
    app.store.set_run_status(run_id, "stopped: budget", error="budget reached")
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("runs")
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        runs.query_one("#runs-table", DataTable).focus()
        await pilot.press("u")
        dialog = app.screen
        assert isinstance(dialog, TextInputDialog) and "$0.00 cap" in dialog.prompt
        for wrong in ("lots", "0"):  # not dollars, not above what was spent: asked again
            dialog.query_one(Input).value = wrong
            await pilot.press("enter")
            assert app.screen is dialog
        dialog.query_one(Input).value = "1"
        await pilot.press("enter")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        run = app.store.get_run(run_id)
        assert run["status"] == "done" and run["budget_usd"] == 1.0
        assert [h["budget_usd"] for h in app.store.run_settings_history(run_id)] == [1.0]
        assert stub_server.paid == 3


def _failed_runs(path: Path) -> None:
    """A done run and a failed one whose name and reason hold bracketed text."""
    from tests.trace_data import build_recovery_run
    from workbench.core.status import RunStatus

    with Store(path) as store:
        build_recovery_run(store, n_problems=3, k=1)
        run = store.create_run("[pricing] check of a very long run name indeed", "recovery", {})
        store.set_run_status(
            run, RunStatus.FAILED, error="no price for stub:new in [pricing]\nadd it and resume"
        )


@pytest.mark.parametrize("size", [(100, 30), (160, 48)])
async def test_a_failed_runs_reason_stays_on_the_list(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """Keys only: the failed run's reason is in its row and, selected, in full in the hint;
    bracketed names and reasons show as typed (no markup); the headline column is on screen
    at 100 columns."""
    _failed_runs(tmp_path / "wb.db")
    settings = Settings()
    app = make_app(Store(tmp_path / "wb.db"), ProviderRegistry(settings), settings)
    async with app.run_test(size=size) as pilot:
        await pilot.press("3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        table = screen.query_one("#runs-table", DataTable)
        failed = str(next(iter(table.rows)).value)
        name = str(table.get_cell(failed, "name"))
        assert name.startswith("[pricing] check")
        assert "no price for stub:new in [pricing] add it and resume" in str(
            table.get_cell(failed, "headline")
        )
        assert table.cursor_row == 0  # the newest, the failed one
        hint = str(screen.query_one("#runs-hint").render())
        assert "failed: no price for stub:new in [pricing]" in hint
        x = sum(c.get_render_width(table) for k, c in table.columns.items() if k != "headline")
        assert x < size[0] - 20  # the headline column starts well on screen
        await pilot.press("down")
        await pilot.pause()
        assert "failed" not in str(screen.query_one("#runs-hint").render())
