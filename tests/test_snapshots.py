"""Screenshots of key screens (pytest-textual-snapshot); ``--snapshot-update`` to accept changes.

Deterministic: a relative database path (so no tmp folder name shows), a
fixed dataset, workers awaited before the screenshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.problem_fixtures import fill_library
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import Store, open_store
from workbench.tui.app import WorkbenchApp, make_app

SIZE = (120, 40)
SnapCompare = Callable[..., bool]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.chdir(tmp_path)
    with open_store("workbench.db") as store:
        yield store


def build(store: Store) -> WorkbenchApp:
    settings = Settings()
    return make_app(store, ProviderRegistry(settings), settings)


def after(*keys: str) -> Callable[[Pilot[Any]], Any]:
    """Press ``keys``, letting workers finish after each one."""

    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run


async def settle(pilot: Pilot[Any]) -> None:
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def test_home_empty_state(snap_compare: SnapCompare, workspace: Store) -> None:
    assert snap_compare(build(workspace), terminal_size=SIZE, run_before=after())


def test_problems_table_with_details(snap_compare: SnapCompare, workspace: Store) -> None:
    fill_library(workspace, 24)
    app = build(workspace)
    assert snap_compare(
        app, terminal_size=SIZE, run_before=after("1", "slash", *"Find", "enter", "down", "enter")
    )


def test_problems_help(snap_compare: SnapCompare, workspace: Store) -> None:
    fill_library(workspace, 5)
    app = build(workspace)
    assert snap_compare(app, terminal_size=SIZE, run_before=after("1", "question_mark"))


def test_run_builder_shows_the_focused_field(snap_compare: SnapCompare, workspace: Store) -> None:
    fill_library(workspace, 6)
    app = build(workspace)

    async def run_before(pilot: Pilot[Any]) -> None:
        from workbench.tui.screens.run_builder import RunBuilderScreen

        await settle(pilot)
        for key in ("3", "n", "tab", "tab", "tab", "2"):  # onto "limit", typing 2
            await pilot.press(key)
        builder = pilot.app.screen
        assert isinstance(builder, RunBuilderScreen)
        if builder._debounce is not None:  # plan now, not after the typing pause
            builder._debounce.stop()
        builder._replan()
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
