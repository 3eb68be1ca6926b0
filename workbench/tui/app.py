"""The Textual app.  ``make_app`` is the single way to build it (CLI and tests).

Nothing connects or loads at import time: the store, providers and settings are
handed in as a ``Workspace``, which screens read through ``workspace_of``.  Each
section's screen class comes from its own module and never imports another
section: navigation across sections is a message (``workbench.tui.messages``)
that the app handles.  The app and each section declare their palette commands
in a ``PALETTE`` class variable (see ``workbench.tui.commands``).
"""

from __future__ import annotations

import errno
import os
import sys
import termios
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from workbench.tui.commands import PaletteCommand, WorkbenchCommands
from workbench.tui.messages import (
    FilteredOpener,
    OpenCompare,
    OpenRun,
    OpenRunBuilder,
    RunOpener,
    SampleOpener,
    SamplesImported,
    WorkspaceChanged,
)
from workbench.tui.screens.home import HomeScreen
from workbench.tui.workspace import Workspace

if TYPE_CHECKING:
    from workbench.core.providers import ProviderRegistry
    from workbench.core.settings import Settings
    from workbench.core.store import Store
    from workbench.tui.live_runs import LaunchRequest

#: mode name -> (key, title); order is the order of the number keys
SECTIONS: dict[str, tuple[str, str]] = {
    "home": ("0", "Home"),
    "problems": ("1", "Problems"),
    "prompts": ("2", "Prompts"),
    "runs": ("3", "Runs"),
    "traces": ("4", "Traces"),
    "plots": ("5", "Plots"),
    "tables": ("6", "Tables"),
}

_SECTIONS_GROUP = Binding.Group("sections", compact=True)

# Only Home is imported with the app: each other section (and the engine, experiments and
# analysis behind it) loads when first opened, or in the background after the first paint,
# so the first screen is drawn without paying for the rest.


def _problems_screen() -> type[Screen[Any]]:
    from workbench.tui.screens.problems import ProblemsScreen

    return ProblemsScreen


def _prompts_screen() -> type[Screen[Any]]:
    from workbench.tui.screens.prompts import PromptsScreen

    return PromptsScreen


def _runs_screen() -> type[Screen[Any]]:
    from workbench.tui.screens.runs import RunsScreen

    return RunsScreen


def _traces_screen() -> type[Screen[Any]]:
    from workbench.tui.screens.traces import TracesScreen

    return TracesScreen


def _plots_screen() -> type[Screen[Any]]:
    from workbench.tui.screens.plots import PlotsScreen

    return PlotsScreen


def _tables_screen() -> type[Screen[Any]]:
    from workbench.tui.screens.tables import TablesScreen

    return TablesScreen


#: mode name -> its screen class, loaded on first use
SECTION_SCREENS: dict[str, Callable[[], type[Screen[Any]]]] = {
    "home": lambda: HomeScreen,
    "problems": _problems_screen,
    "prompts": _prompts_screen,
    "runs": _runs_screen,
    "traces": _traces_screen,
    "plots": _plots_screen,
    "tables": _tables_screen,
}


def _mode_factory(load: Callable[[], type[Screen[Any]]]) -> Callable[[], Screen[Any]]:
    return lambda: load()()


class WorkbenchApp(App[None]):
    """Problems, Prompts, Runs, Traces, Plots and Tables as top-level modes."""

    TITLE = "workbench"
    CSS_PATH = "app.tcss"
    MODES = {mode: _mode_factory(load) for mode, load in SECTION_SCREENS.items()}
    DEFAULT_MODE = "home"
    COMMANDS = App.COMMANDS | {WorkbenchCommands}
    #: app-wide palette commands; each section screen declares its own PALETTE
    PALETTE = (
        *(
            PaletteCommand(f"{mode}: open", f"Go to {title}", mode=mode)
            for mode, (_, title) in SECTIONS.items()
        ),
        PaletteCommand(
            "problems: import sample",
            "Import the bundled GSM8K + MATH-500 samples (safe to repeat)",
            "import_samples",
        ),
        PaletteCommand(
            "problems: import file",
            "Import your own problems: a JSONL / CSV / Parquet file, a folder, or a hub name",
            "import_file",
        ),
        PaletteCommand("app: keys", "Keys for the current screen", "help"),
    )
    BINDINGS = [
        *(
            Binding(
                key,
                f"switch_mode('{mode}')",
                title,
                id=f"mode.{mode}",
                group=_SECTIONS_GROUP,
            )
            for mode, (key, title) in SECTIONS.items()
        ),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self.quitting = False  # cancel was chosen on quit: exit once every run has ended

    # the workspace's parts, for callers that hold the app (the CLI, tests)
    @property
    def store(self) -> Store:
        return self.workspace.store

    @property
    def providers(self) -> ProviderRegistry:
        return self.workspace.providers

    @property
    def settings(self) -> Settings:
        return self.workspace.settings

    def on_mount(self) -> None:
        self._apply_keymap()
        self.mode_change_signal.subscribe(self, self._mode_changed)
        self._mode_changed(self.current_mode)
        self.set_interval(2.0, self._exit_if_terminal_hung_up)
        # after the first screen settles, so the import does not compete with its paint
        self.set_timer(0.5, self._load_sections)

    def _apply_keymap(self) -> None:
        """``[keys]`` of workbench.toml: binding id -> keys; an unknown id is said, not fatal."""
        keys = self.settings.keys
        if not keys:
            return
        from workbench.tui.keymap import binding_ids

        unknown = sorted(set(keys) - binding_ids(binding_owners()))
        if unknown:
            self.notify(
                f"workbench.toml [keys]: unknown binding id {', '.join(unknown)} "
                "(ids are listed in docs/keys.md)",
                severity="warning",
                timeout=8,
            )
        self.set_keymap({k: v for k, v in keys.items() if k not in unknown})

    @work(thread=True, exit_on_error=False, group="load-sections")
    def _load_sections(self) -> None:
        """Import the other sections after the first paint, so the first switch is quick."""
        for load in SECTION_SCREENS.values():
            load()
        from workbench.tui.screens import compare, help, monitor, run_builder  # noqa: F401

    def section_screen_classes(self) -> dict[str, type[Screen[Any]]]:
        """Each section's screen class (imports the ones not loaded yet)."""
        return {mode: load() for mode, load in SECTION_SCREENS.items()}

    def _exit_if_terminal_hung_up(self) -> None:
        """Exit when the terminal is gone, as a hung-up process would.

        Under a parent that takes the hangup signal itself (``make demo``: make is the
        session leader and waits for us), nothing tells the app the terminal closed, and
        Textual's input thread spins on end-of-file at full CPU.
        """
        if terminal_hung_up():
            self.exit(return_code=128 + 1)  # as if killed by SIGHUP

    def _mode_changed(self, mode: str) -> None:
        title = SECTIONS.get(mode, ("", mode.title()))[1]
        self.sub_title = f"{title} · {self.store.path.name}"

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:
        """Every toast is plain text: messages carry user and config text ("[pricing]",
        a run's name, an exception) that markup would swallow."""
        kwargs["markup"] = False
        super().notify(message, *args, **kwargs)

    # -- navigation across sections ---------------------------------------------

    @on(OpenRun)
    async def _open_run(self, message: OpenRun) -> None:
        if message.section == "monitor":
            from workbench.tui.screens.monitor import MonitorScreen

            run_id = message.run_id
            self.push_screen(MonitorScreen(run_id, self.workspace.live_runs.get(run_id)))
            return
        if self.current_mode != message.section:
            await self.switch_mode(message.section)
        screen = self.screen
        if message.sample_id is not None and isinstance(screen, SampleOpener):
            screen.open_sample(message.run_id, message.sample_id)
        elif message.trace_filter is not None and isinstance(screen, FilteredOpener):
            screen.open_filtered(message.run_id, message.trace_filter)
        elif isinstance(screen, RunOpener):
            screen.open_run(message.run_id)

    @on(OpenCompare)
    def _open_compare(self, message: OpenCompare) -> None:
        from workbench.tui.screens.compare import CompareScreen

        self.push_screen(CompareScreen(message.run_a, message.run_b))

    @on(OpenRunBuilder)
    def _open_run_builder(self, message: OpenRunBuilder) -> None:
        from workbench.tui.live_runs import LaunchRun
        from workbench.tui.screens.run_builder import RunBuilderScreen

        requester = self.screen  # the Runs screen: it launches what the builder returns

        def done(request: LaunchRequest | None) -> None:
            if request is not None:
                requester.post_message(LaunchRun(request))

        initial = message.config if message.config is not None else self.workspace.last_launch
        self.push_screen(RunBuilderScreen(initial, title=message.title), done)

    # -- actions -----------------------------------------------------------

    def action_help(self) -> None:
        from workbench.tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        title = SECTIONS.get(self.current_mode, ("", self.current_mode))[1]
        self.push_screen(HelpScreen(self.screen, title))

    # -- quitting with runs in progress ------------------------------------------

    def active_runs(self) -> list[int]:
        """Runs executing in this app's workers right now."""
        return [r.run_id for r in self.workspace.live_runs.values() if r.status.active]

    async def action_quit(self) -> None:
        """Quit; with runs in progress, ask: cancel them (resumable), wait, or detach."""
        running = self.active_runs()
        if not running:
            self.exit()
            return
        from workbench.tui.dialogs import ChoiceDialog

        names = ", ".join(str(r) for r in running)
        choices = [
            ("cancel", "Cancel the run (resumable with u or run --resume), then quit"),
            ("wait", "Wait: keep the app open while it runs"),
            ("detach", "Detach: close the screen; the run finishes in this process"),
        ]

        def chosen(key: str | None) -> None:
            if key == "cancel":
                self._cancel_and_quit()
            elif key == "detach":
                self.exit(
                    message=f"run {names} keeps running in this process (pid {os.getpid()}) "
                    "until it ends; `workbench` in another terminal follows it live "
                    "(Runs, enter)."
                )

        title = f"Quit: run {names} is running" if len(running) == 1 else "Quit: runs running"
        self.push_screen(ChoiceDialog(title, choices, current="wait"), chosen)

    def _cancel_and_quit(self) -> None:
        """Cancel every live run (finished calls stay stored) and exit when they have ended,
        so each worker closes its HTTP clients before the process goes."""
        for live in self.workspace.live_runs.values():
            if live.status.active and live.engine is not None:
                live.engine.cancel()
        self.quitting = True
        self.notify("cancelling: quitting when the runs have stopped…", timeout=5)
        self.set_interval(0.2, self._quit_when_idle)

    def _quit_when_idle(self) -> None:
        if self.quitting and not self.active_runs():
            self.exit()

    def action_import_samples(self) -> None:
        self.notify("Importing the bundled samples…", timeout=3)
        self._import_samples()

    def action_import_file(self) -> None:
        """The import dialog; when it closes having imported something, screens reload."""
        from workbench.tui.import_dialog import ImportDialog

        def done(imported: int | None) -> None:
            if imported:
                self.screen.post_message(WorkspaceChanged())

        self.push_screen(ImportDialog(), done)

    @work(thread=True, exclusive=True, exit_on_error=False, group="import-samples")
    def _import_samples(self) -> None:
        from workbench.core.library import describe_import, import_samples

        try:
            with self.workspace.thread_store() as store:
                result = import_samples(store)
        except Exception as exc:  # one line for the user; the store keeps what landed
            self.post_message(SamplesImported(f"import failed: {exc}", ok=False))
            return
        self.post_message(SamplesImported(describe_import(result), ok=True))

    @on(SamplesImported)
    def _samples_imported(self, message: SamplesImported) -> None:
        self.notify(message.text, severity="information" if message.ok else "error")
        if message.ok:
            self.screen.post_message(WorkspaceChanged())


def terminal_hung_up(stream: object = None) -> bool:
    """True when ``stream`` (default: the real stdin) is a terminal that has hung up."""
    stream = sys.__stdin__ if stream is None else stream
    try:
        fd = stream.fileno()  # type: ignore[attr-defined]
        termios.tcgetattr(fd)
    except termios.error as exc:
        return bool(exc.args and exc.args[0] == errno.EIO)  # ENOTTY: not a terminal at all
    except (AttributeError, OSError, ValueError):
        return False  # no stdin, or closed: headless tests, pipes
    return False


def binding_owners() -> list[tuple[str, Any]]:
    """Every class that declares bindings, in the order the doc lists them."""
    from workbench.tui.dialogs import ChoiceDialog, ConfirmDialog, TextInputDialog
    from workbench.tui.export_dialog import ExportDialog
    from workbench.tui.import_dialog import ImportDialog
    from workbench.tui.screens.compare import CompareScreen
    from workbench.tui.screens.help import HelpScreen
    from workbench.tui.screens.monitor import MonitorScreen
    from workbench.tui.screens.run_builder import RunBuilderScreen
    from workbench.tui.screens.trace_dialogs import LabelDialog, RequestDialog, TraceFilterDialog
    from workbench.tui.widgets.problem_table import ProblemTable

    owners: list[tuple[str, Any]] = [("everywhere", WorkbenchApp)]
    owners += [(SECTIONS[mode][1], load()) for mode, load in SECTION_SCREENS.items()]
    owners += [("Problems table", ProblemTable), ("New run / re-run", RunBuilderScreen)]
    owners += [("Monitor", MonitorScreen), ("Compare runs", CompareScreen)]
    owners += [("Trace filter", TraceFilterDialog), ("Trace label", LabelDialog)]
    owners += [("Trace request", RequestDialog)]
    owners += [("Import dialog", ImportDialog), ("Export dialog", ExportDialog)]
    owners += [("Confirm dialog", ConfirmDialog), ("Text dialog", TextInputDialog)]
    owners += [("Choice dialog", ChoiceDialog), ("Help", HelpScreen)]
    return owners


def make_app(store: Store, providers: ProviderRegistry, settings: Settings) -> WorkbenchApp:
    return WorkbenchApp(Workspace(store, providers, settings))
