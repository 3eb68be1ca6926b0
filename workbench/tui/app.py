"""The Textual app.  ``make_app`` is the single way to build it (CLI and tests).

Nothing connects or loads at import time: the store, providers and settings
are handed in, and screens read them from ``self.app``.  Each section's screen
class comes from its own module, so sections are built independently; they
add palette commands through ``workbench.tui.palette``.
"""

from __future__ import annotations

import errno
import sys
import termios
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from textual import on, work
from textual.app import App
from textual.binding import Binding

from workbench.core.providers.registry import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import Store
from workbench.tui.messages import SamplesImported, WorkspaceChanged
from workbench.tui.palette import (
    WorkbenchCommands,
    mode_action,
    register_command,
    registered_commands,
)
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.home import HomeScreen, describe_import
from workbench.tui.screens.plots import PlotsScreen
from workbench.tui.screens.problems import ProblemsScreen
from workbench.tui.screens.prompts import PromptsScreen
from workbench.tui.screens.runs import RunsScreen
from workbench.tui.screens.traces import TracesScreen

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
    CSS_PATH = Path(__file__).parent / "app.tcss"
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

    def __init__(self, store: Store, providers: ProviderRegistry, settings: Settings) -> None:
        super().__init__()
        self.store = store
        self.providers = providers
        self.settings = settings

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

    @contextmanager
    def thread_store(self) -> Iterator[Store]:
        """A connection of its own for a thread worker (sqlite3 objects are per thread)."""
        store = self.store.reopen()
        try:
            yield store
        finally:
            store.close()

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
            from workbench.core.library.datasets import import_samples
        except ImportError:
            self.post_message(SamplesImported("sample import is not available yet", ok=False))
            return
        try:
            with self.thread_store() as store:
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


def _register_app_commands() -> None:
    for mode, (_key, title) in SECTIONS.items():
        register_command(f"{mode}: open", f"Go to {title}", mode_action(mode))
    register_command(
        "problems: import sample",
        "Import the bundled GSM8K + MATH-500 samples (safe to repeat)",
        lambda app: app.run_action("import_samples"),
    )
    register_command("app: keys", "Keys for the current screen", lambda a: a.run_action("help"))
    # section commands, unless the section registered its own, once its screen has the action
    taken = {command.title for command in registered_commands()}
    suggested = [
        ("runs: new", "Start a new run", "runs", RunsScreen, "new_run"),
        (
            "traces: open latest",
            "Step through the latest run",
            "traces",
            TracesScreen,
            "open_latest",
        ),
        ("prompts: new", "Create a prompt", "prompts", PromptsScreen, "new_prompt"),
    ]
    for title, help_text, mode, screen, action in suggested:
        if title not in taken and hasattr(screen, f"action_{action}"):
            register_command(title, help_text, mode_action(mode, action))


_register_app_commands()


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
    return WorkbenchApp(store, providers, settings)
