"""Problems screen under Pilot against a real store: search, filter, sort, select, sample, details."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from tests.problem_fixtures import fill_library
from workbench.core.library.problems import MatchCount, problem_set_ids
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import Store, open_store
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.dialogs import TextInputDialog
from workbench.tui.screens.problems import PAGE_SIZE, ProblemsScreen
from workbench.tui.screens.problems_state import ViewState, parse_sample_request, validate_set_name
from workbench.tui.widgets.problem_detail import ProblemDetail
from workbench.tui.widgets.problem_table import ProblemTable

SIZE = (120, 40)
N_PROBLEMS = 450  # more than two pages, so paging is exercised


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "workbench.db") as s:
        fill_library(s, N_PROBLEMS)
        yield s


def build(store: Store) -> WorkbenchApp:
    settings = Settings()
    return make_app(store, ProviderRegistry(settings), settings)


async def settle(app: WorkbenchApp, pilot: Pilot[None]) -> None:
    """Wait until every worker finished and every posted message was handled."""
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def open_problems(app: WorkbenchApp, pilot: Pilot[None]) -> ProblemsScreen:
    await pilot.press("1")
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, ProblemsScreen)
    return screen


def table_ids(screen: ProblemsScreen) -> list[str]:
    table = screen.query_one(ProblemTable)
    return [str(key.value) for key in table.rows]


def status(screen: ProblemsScreen) -> str:
    return str(screen.query_one("#problems-status", Static).render())


async def test_opens_with_first_page_and_counts(store: Store) -> None:
    app = build(store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_problems(app, pilot)
        table = screen.query_one(ProblemTable)
        assert table.has_focus
        assert table.row_count == PAGE_SIZE
        assert screen.total == MatchCount(N_PROBLEMS)
        assert f"200 of {N_PROBLEMS} shown" in status(screen)
        assert table_ids(screen)[0] == "gsm8k/000000"


async def test_end_key_loads_more_pages(store: Store) -> None:
    app = build(store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_problems(app, pilot)
        table = screen.query_one(ProblemTable)
        for _ in range(3):
            await pilot.press("end")
            await settle(app, pilot)
        assert table.row_count == N_PROBLEMS
        assert table.exhausted
        assert len(set(table_ids(screen))) == N_PROBLEMS


async def test_search_narrows_rows(store: Store) -> None:
    app = build(store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_problems(app, pilot)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"problem 12)", "enter")
        await settle(app, pilot)
        assert table_ids(screen) == ["gsm8k/000012"]
        assert screen.total == MatchCount(1)
        assert screen.query_one(ProblemTable).has_focus
        await pilot.press("escape")  # clears the search
        await settle(app, pilot)
        assert screen.total == MatchCount(N_PROBLEMS)


async def test_filters_and_sort(store: Store) -> None:
    app = build(store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_problems(app, pilot)
        screen.query_one("#filter-source", Select).value = "math"
        await settle(app, pilot)
        assert screen.total == MatchCount(N_PROBLEMS // 3)
        assert all(pid.startswith("math/") for pid in table_ids(screen))
        screen.query_one("#filter-level", Select).value = "3"
        await settle(app, pilot)
        assert screen.state.level == "3"
        assert screen.total == MatchCount(sum(1 for i in range(2, N_PROBLEMS, 3) if 1 + i % 5 == 3))
        await pilot.press("c")  # clear filters
        await settle(app, pilot)
        assert screen.total == MatchCount(N_PROBLEMS)
        screen.query_one("#filter-bin", Select).value = "easy"
        await settle(app, pilot)
        easy = [i for i in range(0, N_PROBLEMS, 7) if i % 10 >= 8]
        assert screen.total == MatchCount(len(easy))
        await pilot.press("c")
        # o cycles the sort: id -> source -> level -> steps -> solve rate (descending)
        for _ in range(4):
            await pilot.press("o")
            await settle(app, pilot)
        assert screen.state.sort == "solve_rate" and screen.state.descending
        first = table_ids(screen)[0]
        assert int(first.split("/")[1]) % 10 == 9  # the highest solve rate in the fixture


async def test_select_and_save_set(store: Store) -> None:
    app = build(store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_problems(app, pilot)
        ids = table_ids(screen)
        await pilot.press("space", "space", "down", "space")  # space moves down a row
        assert list(screen.selected) == [ids[0], ids[1], ids[3]]
        assert "3 selected" in status(screen)
        await pilot.press("a")  # only the selection
        await settle(app, pilot)
        assert table_ids(screen) == list(screen.selected)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, TextInputDialog)
        await pilot.press(*"pilot-set", "enter")
        await settle(app, pilot)
        assert problem_set_ids(store, "pilot-set") == list(screen.selected)


async def test_sample_is_seeded_and_becomes_the_selection(store: Store) -> None:
    app = build(store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_problems(app, pilot)
        screen.query_one("#filter-source", Select).value = "gsm8k"
        await settle(app, pilot)
        await pilot.press("s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, TextInputDialog)
        dialog.query_one(Input).value = "25 7"
        await pilot.press("enter")
        await settle(app, pilot)
        first = list(screen.selected)
        assert len(first) == 25 and all(p.startswith("gsm8k/") for p in first)
        assert screen.state.only_selected and screen.state.seed == 7
        assert table_ids(screen) == first
        # same seed, same sample
        await pilot.press("s")
        await pilot.pause()
        app.screen.query_one(Input).value = "25 7"
        await pilot.press("enter")
        await settle(app, pilot)
        assert list(screen.selected) == first


async def test_details_show_question_steps_and_answer(store: Store) -> None:
    app = build(store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_problems(app, pilot)
        await pilot.press("slash", *"Find", "enter")  # the MATH-like problems
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        detail = screen.query_one(ProblemDetail)
        assert detail.display
        text = str(detail.query_one("#problem-detail-body", Static).render())
        assert "math/000002" in text
        assert "Find x if x² = 2 and x/2 > 0" in text  # LaTeX made readable
        assert "1. We have x² = 2." in text
        assert "√2" in text
        await pilot.press("down")  # the pane follows the cursor
        await settle(app, pilot)
        text = str(detail.query_one("#problem-detail-body", Static).render())
        assert "math/000005" in text
        await pilot.press("escape")
        assert not detail.display


async def test_empty_library_says_how_to_import(tmp_path: Path) -> None:
    with open_store(tmp_path / "empty.db") as empty:
        app = build(empty)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_problems(app, pilot)
            message = screen.query_one("#problems-empty", Static)
            assert message.display
            assert "press i to import" in str(message.render()).lower()


def test_sample_request_and_set_name_parsing() -> None:
    assert parse_sample_request("50") == ((50, 0), None)
    assert parse_sample_request(" 10, 3 ") == ((10, 3), None)
    assert parse_sample_request("ten")[1] is not None
    assert parse_sample_request("0")[1] is not None
    assert validate_set_name("gsm8k-pilot_1.v2") is None
    assert validate_set_name("bad name") is not None
    assert ViewState(sort="level").is_everything
    assert not ViewState(search="x").is_everything


async def test_t_lists_every_sample_of_a_problem_across_runs(tmp_path: Path) -> None:
    """Keys only: Problems, t on a problem -> its samples in every run; enter opens one in
    Traces at that very sample."""
    from tests.trace_data import build_calibration_run, build_recovery_run
    from workbench.core.views.problems import problem_samples
    from workbench.tui.dialogs import ChoiceDialog
    from workbench.tui.screens.traces import TracesScreen

    with open_store(tmp_path / "workbench.db") as s:
        build_recovery_run(s, n_problems=4, k=2)
        build_calibration_run(s, n_problems=4, samples=3)
        fill_library(s, 3)  # problems nobody sampled
    with open_store(tmp_path / "workbench.db") as store:
        app = build(store)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await open_problems(app, pilot)
            ids = table_ids(screen)
            sampled = next(i for i in ids if problem_samples(store, i))
            unsampled = next(i for i in ids if not problem_samples(store, i))
            for pid in (unsampled, sampled):  # the cursor onto each in turn
                while table_ids(screen)[screen.query_one(ProblemTable).cursor_row] != pid:
                    await pilot.press("down" if ids.index(pid) > screen.table.cursor_row else "up")
                await pilot.press("t")
                await settle(app, pilot)
                if pid == unsampled:  # says so, opens nothing
                    assert app.screen is screen
                    assert any("no run has sampled" in n.message for n in app._notifications)
            dialog = app.screen
            assert isinstance(dialog, ChoiceDialog)
            expected = problem_samples(store, sampled)
            assert len({e.run_id for e in expected}) == 2  # both runs sampled it
            assert [key for key, _ in dialog.choices] == [
                f"{e.run_id}:{e.sample_id}" for e in expected
            ]
            await pilot.press("down", "enter")
            await settle(app, pilot)
            traces = app.screen
            assert isinstance(traces, TracesScreen)
            assert traces.view is not None and traces.view.sample_id == expected[1].sample_id
            assert traces.run_id == expected[1].run_id


@pytest.mark.parametrize("size", [(100, 30), (160, 48)])
async def test_the_question_and_every_filter_fit(store: Store, size: tuple[int, int]) -> None:
    """At 100x30 the question keeps ~40 columns (the id no longer takes 26 while the question
    gets 13) and every filter control is on screen; at 160x48 the level column is back."""
    from textual.widgets.data_table import ColumnKey

    app = build(store)
    async with app.run_test(size=size) as pilot:
        screen = await open_problems(app, pilot)
        table = screen.query_one(ProblemTable)
        question = table.columns[ColumnKey("question")].get_render_width(table)
        ident = table.columns[ColumnKey("id")].get_render_width(table)
        assert question >= 40 and question > 2 * ident, (question, ident)
        for control in screen.query("#problems-filters > *"):
            region = control.region
            assert region.width > 0 and region.right <= size[0], control.id
        level = table.columns[ColumnKey("level")].width
        assert (level == 0) == (size[0] < 130)


async def test_scope_by_dataset_or_set_sort_on_what_is_shown_and_edit_a_set(
    store: Store,
) -> None:
    """Keys only: the scope filter narrows to one dataset, then to one problem set; E loads
    the set into the selection (marked in the whole library), space adds a problem, ctrl+s
    saves it back under its name.  The default sort is dataset, then id: what the table
    shows."""
    from workbench.core.library.problems import create_problem_set, list_problem_sets
    from workbench.tui.dialogs import ConfirmDialog
    from workbench.tui.widgets.problem_filters import FACETS

    all_ids = [r[0] for r in store.conn.execute("SELECT id FROM problems ORDER BY id")]
    create_problem_set(store, "pilot", all_ids[:3])
    datasets = sorted({r[0] for r in store.conn.execute("SELECT dataset_id FROM problems")})
    app = build(store)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_problems(app, pilot)
        shown = [
            (str(screen.table.get_cell(i, "dataset")), str(screen.table.get_cell(i, "id")))
            for i in table_ids(screen)
        ]
        assert shown == sorted(shown)  # dataset, then id: sorted on what is shown
        scope_tabs = len(FACETS) + 1  # source ... model, grades, then scope
        # the second dataset: the scope list holds the datasets, then the sets
        await pilot.press("f", *["tab"] * scope_tabs, "enter", "down", "down", "enter")
        await settle(app, pilot)
        assert screen.state.dataset == datasets[1] and screen.state.problem_set is None
        in_dataset = store.scalar(
            "SELECT COUNT(*) FROM problems WHERE dataset_id=?", (datasets[1],)
        )
        assert screen.total == MatchCount(in_dataset)
        assert f"dataset={datasets[1]}" in status(screen)
        # the set: after every dataset in the list
        downs = len(datasets) - 1
        await pilot.press("enter", *["down"] * downs, "enter")
        await settle(app, pilot)
        assert screen.state.problem_set == "pilot" and screen.state.dataset is None
        assert table_ids(screen) == all_ids[:3] and "set=pilot" in status(screen)
        await pilot.press("escape", "E")  # back to the table; edit the set in scope
        await settle(app, pilot)
        assert list(screen.selected) == all_ids[:3] and screen.state.problem_set is None
        assert screen.total == MatchCount(N_PROBLEMS)  # the whole library, members marked
        while table_ids(screen)[screen.table.cursor_row] in screen.selected:
            await pilot.press("down")
        added = table_ids(screen)[screen.table.cursor_row]
        await pilot.press("space", "ctrl+s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, TextInputDialog)
        await pilot.press("enter")  # the name is filled in: the set being edited
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await settle(app, pilot)
        assert problem_set_ids(store, "pilot") == [*all_ids[:3], added]
        assert [s.n_problems for s in list_problem_sets(store)] == [4]
