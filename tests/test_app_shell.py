"""The app shell: modes, help, command palette, home empty state (Pilot, real store)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.app import SystemCommand
from textual.command import CommandPalette
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static, TextArea

from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import Store, now_iso, open_store
from workbench.tui.app import SECTIONS, WorkbenchApp, make_app
from workbench.tui.commands import palette_commands
from workbench.tui.dialogs import ChoiceDialog, ConfirmDialog, TextInputDialog
from workbench.tui.messages import OpenRun
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.home import HomeScreen

SIZE = (120, 40)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "workbench.db") as s:
        yield s


def build(store: Store) -> WorkbenchApp:
    settings = Settings()
    return make_app(store, ProviderRegistry(settings), settings)


def add_problem(store: Store, pid: str, source: str = "gsm8k") -> None:
    with store.transaction():
        if not store.scalar("SELECT COUNT(*) FROM datasets WHERE id='d'"):
            store.insert(
                "datasets",
                {
                    "id": "d",
                    "name": "d",
                    "origin": "test",
                    "format": source,
                    "imported_at": now_iso(),
                },
            )
        store.insert(
            "problems",
            {
                "id": pid,
                "dataset_id": "d",
                "source": source,
                "question": "q",
                "created_at": now_iso(),
            },
        )


def summary_text(app: WorkbenchApp) -> str:
    return str(app.screen.query_one("#home-summary", Static).render())


async def test_home_empty_state_says_what_to_do(store: Store) -> None:
    app = build(store)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        assert app.screen.summary is not None and app.screen.summary.empty
        text = summary_text(app)
        assert "no problems yet" in text
        assert "import the bundled samples" in text
        assert "workbench import" in text


async def test_home_summary_counts_problems(store: Store) -> None:
    for i in range(3):
        add_problem(store, f"p{i}")
    app = build(store)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        assert app.screen.summary is not None
        assert app.screen.summary.n_problems == 3
        assert "3 gsm8k" in summary_text(app)
        assert "0 problem sets" in summary_text(app)


def test_home_summary_counts_read_as_english() -> None:
    from workbench.core.views.workspace import WorkspaceSummary
    from workbench.tui.screens.home import render_summary

    one = render_summary(WorkspaceSummary("wb.db", 5, n_sets=1, n_prompts=1))
    assert "1[/b] problem set ·" in one and "1[/b] prompt\n" in one
    many = render_summary(WorkspaceSummary("wb.db", 5, n_sets=2, n_prompts=15))
    assert "2[/b] problem sets ·" in many and "15[/b] prompts\n" in many


async def test_number_keys_switch_modes(store: Store) -> None:
    app = build(store)
    async with app.run_test(size=SIZE) as pilot:
        for mode, (key, title) in SECTIONS.items():
            if isinstance(app.focused, Input):  # a section may focus an input on open
                await pilot.press("escape")
            await pilot.press(key)
            await pilot.pause()
            assert app.current_mode == mode
            assert app.sub_title.startswith(title)
        await pilot.press("0")
        await pilot.pause()
        assert app.current_mode == "home"


async def test_help_lists_current_screen_bindings(store: Store) -> None:
    app = build(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        descriptions = {row.description for row in app.screen.rows}
        assert {"Import samples", "Problems", "Quit", "Help"} <= descriptions
        table = app.screen.query_one(DataTable)
        assert table.row_count == len(app.screen.rows)
        # the palette key is listed once, with the workbench's description
        palette = [row for row in app.screen.rows if "palette" in row.description.lower()]
        assert [row.description for row in palette] == ["Command palette (area: verb commands)"]
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)


async def test_every_binding_has_an_id_and_description() -> None:
    from workbench.tui.screens.problems import ProblemsScreen

    for owner in (WorkbenchApp, HomeScreen, ProblemsScreen, HelpScreen, ConfirmDialog):
        for binding in owner.__dict__.get("BINDINGS", []):
            assert not isinstance(binding, tuple), owner
            assert binding.id, (owner, binding.key)
            assert binding.description, (owner, binding.key)


def palette_titles(app: WorkbenchApp) -> set[str]:
    """Every command title the palette offers on the current screen."""
    titles = {command.title for command in app.get_system_commands(app.screen)}
    return titles | {command.title for command in palette_commands(app)}


async def test_palette_runs_area_verb_command(store: Store) -> None:
    calls: list[str] = []
    app = build(store)
    app_commands = app.get_system_commands

    def with_ping(screen: Screen[Any]) -> Iterator[SystemCommand]:
        yield from app_commands(screen)
        yield SystemCommand("test: ping", "a test command", lambda: calls.append(app.current_mode))

    app.get_system_commands = with_ping  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        titles = palette_titles(app)
        assert {"problems: open", "problems: import sample", "test: ping"} <= titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"problems: open")
        await app.screen.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert app.current_mode == "problems"

        await pilot.press("ctrl+p")
        await pilot.press(*"test: ping")
        await app.screen.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert calls == ["problems"]


async def test_every_area_verb_command_is_in_the_palette_and_has_its_action(
    store: Store,
) -> None:
    app = build(store)
    async with app.run_test(size=SIZE):
        titles = palette_titles(app)
    expected = {f"{mode}: open" for mode in SECTIONS} | {
        "problems: import sample",
        "problems: import file",
        "app: keys",
        "problems: search",
        "problems: sample",
        "problems: save selection as set",
        "problems: clear filters",
        "prompts: new",
        "prompts: save",
        "prompts: try",
        "prompts: next problem",
        "runs: new",
        "runs: watch",
        "runs: resume",
        "traces: open latest",
    }
    assert expected <= titles
    for command in palette_commands(app):
        owner = (
            WorkbenchApp if command.action in ("import_samples", "import_file", "help") else None
        )
        if command.action is not None:
            screen = owner or app.section_screen_classes()[command.mode or ""]
            assert hasattr(screen, f"action_{command.action}"), command.title


async def test_palette_prompts_new_starts_a_draft(store: Store) -> None:
    app = build(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"prompts: new")
        await app.screen.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert app.current_mode == "prompts"
        editor = app.screen.query_one("#editor", TextArea)
        assert 'name = "new-prompt"' in editor.text
        assert app.focused is editor


async def test_open_run_message_navigates_to_traces_and_plots(store: Store) -> None:
    from workbench.tui.screens.plots import PlotsScreen
    from workbench.tui.screens.traces import TracesScreen

    run_id = store.create_run("r", "calibration", {"kind": "calibration"})
    app = build(store)
    async with app.run_test(size=SIZE) as pilot:
        app.screen.post_message(OpenRun(run_id, "traces"))
        await pilot.pause()
        await pilot.pause()
        assert app.current_mode == "traces"
        assert isinstance(app.screen, TracesScreen) and app.screen.run_id == run_id
        app.screen.post_message(OpenRun(run_id, "plots"))
        await pilot.pause()
        await pilot.pause()
        assert app.current_mode == "plots"
        assert isinstance(app.screen, PlotsScreen) and app.screen.run_id == run_id
        await app.workers.wait_for_complete()


async def test_palette_theme_command(store: Store) -> None:
    app = build(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"theme: nord")
        await app.screen.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert app.theme == "nord"


async def test_dialogs_return_values(store: Store) -> None:
    app = build(store)
    results: list[object] = []
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(ConfirmDialog("Delete?", "Really?"), results.append)
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()

        def no_spaces(value: str) -> str | None:
            return "no spaces, please" if " " in value else None

        app.push_screen(TextInputDialog("Name", "Set name:", validate=no_spaces), results.append)
        await pilot.pause()
        await pilot.press(*"a b", "enter")
        await pilot.pause()
        error = app.screen.query_one("#dialog-error", Static)
        assert "no spaces" in str(error.render())
        await pilot.press("backspace", "backspace", "enter")
        await pilot.pause()

        app.push_screen(ChoiceDialog("Pick", [("x", "Ex"), ("y", "Why")]), results.append)
        await pilot.pause()
        await pilot.press("down", "enter")
        await pilot.pause()

        app.push_screen(ConfirmDialog("Sure?", "Really?"), results.append)
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
    assert results == [True, "a", "y", False]


def test_demo_prepares_workspace_once(tmp_path: Path) -> None:
    """`workbench demo --no-tui` twice: samples and prompts land once, the second run is a no-op."""
    folder = tmp_path / "demo"
    command = [sys.executable, "-m", "workbench", "demo", "--dir", str(folder), "--no-tui"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert first.returncode == 0, first.stderr
    assert "samples:" in first.stderr
    with open_store(folder / "workbench.db") as s:
        counts = (
            s.scalar("SELECT COUNT(*) FROM problems"),
            s.scalar("SELECT COUNT(*) FROM prompts"),
        )
    assert counts[0] >= 300
    second = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == 0, second.stderr
    assert "samples:" not in second.stderr and "prompts:" not in second.stderr
    with open_store(folder / "workbench.db") as s:
        again = (
            s.scalar("SELECT COUNT(*) FROM problems"),
            s.scalar("SELECT COUNT(*) FROM prompts"),
        )
    assert again == counts


async def test_import_samples_from_home_key(store: Store) -> None:
    app = build(store)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("i")
        for _ in range(3):
            await app.workers.wait_for_complete()
            await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        assert app.screen.summary is not None and app.screen.summary.n_problems >= 300
        assert f"{app.screen.summary.n_problems} problems" in summary_text(app)
