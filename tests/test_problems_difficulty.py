"""Per-model difficulty on the Problems screen (issue 11 item 7): solve rate and bin for a
chosen model (default: the latest calibrated one, named in the status line), refreshed
when a calibration writes new rates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Select

from tests.problem_fixtures import fill_library
from tests.test_problems_screen import build, open_problems, settle, status
from workbench.core.analysis.queries import write_difficulty
from workbench.core.analysis.rates import DifficultyRow
from workbench.core.store import Store, open_store
from workbench.core.views.problems import latest_calibrated_model
from workbench.tui.messages import WorkspaceChanged
from workbench.tui.widgets.problem_table import ProblemTable

FIRST = "gsm8k/000000"  # in fill_library's difficulty rows (local:gemma, rate 0.0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "workbench.db") as s:
        fill_library(s, 30)
        yield s


def _solve_cell(table: ProblemTable, pid: str) -> str:
    return str(table.get_cell(pid, "solve"))


def _calibrate(store: Store, model: str, rate: float) -> None:
    k = int(rate * 10)
    write_difficulty(
        store, [DifficultyRow(FIRST, model, 10, k, rate, "easy" if rate >= 0.8 else "hard")],
        run_id=None,
    )  # fmt: skip


async def test_solve_column_follows_the_chosen_model(store: Store) -> None:
    _calibrate(store, "m:newer", 0.9)  # written after the fixture's local:gemma rows
    assert latest_calibrated_model(store) == "m:newer"
    app = build(store)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await open_problems(app, pilot)
        table = screen.query_one(ProblemTable)
        assert "solve/bin: m:newer (latest calibrated)" in status(screen)
        assert "90" in _solve_cell(table, FIRST)
        # choose the other model in the filter bar: its rate, named in the status line
        select = screen.query_one("#filter-model", Select)
        select.value = "local:gemma"
        await settle(app, pilot)
        assert screen.state.model == "local:gemma"
        assert "solve/bin: local:gemma" in status(screen)
        assert "latest" not in status(screen)
        assert "0" in _solve_cell(table, FIRST) and "90" not in _solve_cell(table, FIRST)


async def test_a_finished_calibration_refreshes_the_screen(store: Store) -> None:
    app = build(store)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await open_problems(app, pilot)
        assert "solve/bin: local:gemma" in status(screen)
        _calibrate(store, "m:fresh", 0.8)
        # what the Runs screen posts to the screen on show when a run ends
        screen.post_message(WorkspaceChanged())
        await settle(app, pilot)
        assert "solve/bin: m:fresh (latest calibrated)" in status(screen)
        assert "80" in _solve_cell(screen.query_one(ProblemTable), FIRST)
        # and coming back to the screen after a calibration elsewhere
        await pilot.press("2")
        await settle(app, pilot)
        _calibrate(store, "m:later", 0.9)
        await pilot.press("1")
        await settle(app, pilot)
        assert "solve/bin: m:later (latest calibrated)" in status(screen)
