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
import sys
import termios

from textual import on, work
from textual.app import App
from textual.binding import Binding

from workbench.core.library import describe_import, import_samples
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import Store
from workbench.tui.commands import PaletteCommand, WorkbenchCommands
from workbench.tui.live_runs import LaunchRequest, LaunchRun
from workbench.tui.messages import OpenRun, OpenRunBuilder, SamplesImported, WorkspaceChanged
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.home import HomeScreen
from workbench.tui.screens.monitor import MonitorScreen
from workbench.tui.screens.plots import PlotsScreen
from workbench.tui.screens.problems import ProblemsScreen
from workbench.tui.screens.prompts import PromptsScreen
from workbench.tui.screens.run_builder import RunBuilderScreen
from workbench.tui.screens.runs import RunsScreen
from workbench.tui.screens.traces import TracesScreen
from workbench.tui.workspace import Workspace

#: mode name -> (key, title); order is the order of the number keys
SECTIONS: dict[str, tuple[str, str]] = {
    "home": ("0", "Home"),
    "problems": ("1", "Problems"),
    "prompts": ("2", "Prompts"),
    "runs": ("3", "Runs"),
    "traces": ("4", "Traces"),
    "plots": ("5", "Plots"),
}

_SECTIONS_GROUP = Binding.Group("sections", compact=True)


class WorkbenchApp(App[None]):
    """Problems, Prompts, Runs, Traces and Plots as top-level modes."""

    TITLE = "workbench"
    CSS_PATH = "app.tcss"
    MODES = {
        "home": HomeScreen,
        "problems": ProblemsScreen,
        "prompts": PromptsScreen,
        "runs": RunsScreen,
        "traces": TracesScreen,
        "plots": PlotsScreen,
    }
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
        self.mode_change_signal.subscribe(self, self._mode_changed)
        self._mode_changed(self.current_mode)
        self.set_interval(2.0, self._exit_if_terminal_hung_up)

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

    # -- navigation across sections ---------------------------------------------

    @on(OpenRun)
    async def _open_run(self, message: OpenRun) -> None:
        if message.section == "monitor":
            run_id = message.run_id
            self.push_screen(MonitorScreen(run_id, self.workspace.live_runs.get(run_id)))
            return
        if self.current_mode != message.section:
            await self.switch_mode(message.section)
        screen = self.screen
        if isinstance(screen, TracesScreen | PlotsScreen):
            screen.open_run(message.run_id)

    @on(OpenRunBuilder)
    def _open_run_builder(self) -> None:
        requester = self.screen  # the Runs screen: it launches what the builder returns

        def done(request: LaunchRequest | None) -> None:
            if request is not None:
                requester.post_message(LaunchRun(request))

        self.push_screen(RunBuilderScreen(), done)

    # -- actions -----------------------------------------------------------

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        title = SECTIONS.get(self.current_mode, ("", self.current_mode))[1]
        self.push_screen(HelpScreen(self.screen, title))

    def action_import_samples(self) -> None:
        self.notify("Importing the bundled samples…", timeout=3)
        self._import_samples()

    @work(thread=True, exclusive=True, exit_on_error=False, group="import-samples")
    def _import_samples(self) -> None:
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


def make_app(store: Store, providers: ProviderRegistry, settings: Settings) -> WorkbenchApp:
    return WorkbenchApp(Workspace(store, providers, settings))
