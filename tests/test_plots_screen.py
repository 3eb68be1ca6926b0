"""Plots: every plot with real data and with none (clear empty state), CSV export."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from textual.widgets import OptionList

from tests.trace_data import build_calibration_run, build_recovery_run
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import Store
from workbench.core.views.plots import PLOTS, recovery_by_bin
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.dialogs import ChoiceDialog
from workbench.tui.screens.plots import PlotsScreen
from workbench.tui.widgets.plot_panels import PlotPanel


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "wb.db"
    store = Store(path)
    build_recovery_run(store, n_problems=9, k=4)  # run 1
    build_calibration_run(store, n_problems=9, samples=4)  # run 2: the completer alone
    store.create_run("nothing yet", "recovery", {})  # run 3: no samples
    store.close()
    return path


def app_for(db: Path) -> WorkbenchApp:
    settings = Settings()
    return make_app(Store(db), ProviderRegistry(settings), settings)


def test_recovery_beside_straight_shot_numbers(db: Path) -> None:
    data = recovery_by_bin(Store(db), 1)
    assert data.empty is None
    assert [s.name for s in data.series] == ["recovery", "straight-shot (stub:completer)"]
    assert set(data.labels) <= {"hard", "medium", "easy"}
    for s in data.series:  # intervals bracket each rate
        assert all(lo <= v <= hi for v, lo, hi in zip(s.values, s.low, s.high, strict=True))


async def test_every_plot_with_data_then_empty(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = app_for(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("plots")
        await app.workers.wait_for_complete()
        screen = app.screen
        assert isinstance(screen, PlotsScreen)
        for run_id, expect_data in ((1, True), (3, False)):
            for spec in PLOTS:
                screen.open_run(run_id, spec.key)
                await app.workers.wait_for_complete()
                await pilot.pause()
                assert screen.data is not None and screen.data.key == spec.key
                panel = screen.query_one(PlotPanel)
                empty = screen.query_one("#plots-empty")
                if screen.data.empty:
                    assert empty.display and not panel.display
                    assert screen.data.empty in str(empty.render())
                    assert "another run: R" in str(empty.render())  # and what to do next
                else:
                    assert panel.display and not empty.display
                    assert panel.data is screen.data
                    assert screen.data.rows
                # a recovery run has no methods and no labelled-trace tasks: no meaningless
                # bars (issue 11)
                wanted = expect_data and spec.key not in ("methods", "task")
                assert (screen.data.empty is None) == wanted, spec.key
        # keys switch plots; x exports the shown plot's data
        screen.open_run(1)
        await app.workers.wait_for_complete()
        await pilot.press("dollar_sign")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.spec.key == "cost" and screen.data is not None
        await pilot.press("x")
        out = tmp_path / "exports" / "plot-cost-run1.csv"
        rows = list(csv.reader(out.open()))
        assert rows[0] == ["t_s", "cost_usd", "cumulative_usd"]
        assert len(rows) - 1 == len(screen.data.rows)
        await pilot.press("right")
        await app.workers.wait_for_complete()
        assert screen.spec.key == "latency"
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert screen.query_one(PlotPanel).size.width <= 80


async def test_no_runs_at_all(tmp_path: Path) -> None:
    app = app_for(tmp_path / "empty.db")
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("plots")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PlotsScreen)
        await pilot.press("b", "x", "right")
        assert "No runs yet" in str(screen.query_one("#plots-empty").render())


@pytest.mark.parametrize("mode", ["plots", "traces"])
async def test_shift_r_picks_another_run(db: Path, mode: str) -> None:
    app = app_for(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode(mode)
        await app.workers.wait_for_complete()
        screen = app.screen
        await pilot.press("R")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ChoiceDialog)
        assert [key for key, _ in dialog.choices] == ["3", "2", "1"]  # newest first
        options = dialog.query_one(OptionList)
        options.highlighted = 1  # run 2
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen is screen
        assert getattr(screen, "run_id", None) == 2


async def settle(pilot: object) -> None:
    from textual.pilot import Pilot

    assert isinstance(pilot, Pilot)
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


@pytest.mark.parametrize(
    ("plot_key", "key", "n_column"),
    [("recovery-bin", "b", 2), ("recovery-error", "exclamation_mark", 2), ("latency", "L", 2)],
)
async def test_a_bar_drills_down_to_exactly_its_traces(
    db: Path, plot_key: str, key: str, n_column: int
) -> None:
    """Keys only: Plots, pick run 1, a plot, the second bar, t -> Traces shows that bar's
    samples and no others (as many as the bar's n)."""
    from workbench.tui.screens.traces import TracesScreen

    app = app_for(db)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("R", "down", "down", "enter")  # newest first: 3, 2, 1
        await settle(pilot)
        plots = app.screen
        assert isinstance(plots, PlotsScreen) and plots.run_id == 1
        await pilot.press(key)
        await settle(pilot)
        data = plots.data
        assert data is not None and data.key == plot_key and len(data.labels) > 1
        # the second bar; of the latency histogram the last (wrapping), never an empty one
        bar = len(data.labels) - 1 if plot_key == "latency" else 1
        await pilot.press(
            "left_square_bracket" if plot_key == "latency" else "right_square_bracket"
        )
        await pilot.pause()
        chosen = str(plots.query_one("#plots-chosen").render())
        assert data.labels[bar] in chosen and "t: its" in chosen  # its value and n are shown
        ids = data.samples_of(bar)
        assert len(ids) == data.rows[bar][n_column]  # its n is its number of traces
        await pilot.press("t")
        await settle(pilot)
        traces = app.screen
        assert isinstance(traces, TracesScreen) and traces.run_id == 1
        assert sorted(traces.index.ids) == sorted(ids)
        status = str(traces.query_one("#trace-status").render())
        assert data.labels[bar] in status
