"""Command palette: "area: verb" commands that any section can contribute.

A section registers its commands at import time (its module is imported by
``workbench.tui.app``), so no shared file needs editing::

    from workbench.tui.palette import register_command, mode_action

    register_command("runs: new", "Start a new run", mode_action("runs", "new_run"))

``run`` receives the app and may be sync or async.  ``mode_action(mode, action)``
switches to a section and runs one of its screen actions, so a palette
command and the section's key binding share one code path.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from textual.app import App
from textual.command import DiscoveryHit, Hit, Hits, Provider

#: called with the app; may return an awaitable, which is awaited
PaletteCallback = Callable[[App[Any]], object]


@dataclass(frozen=True)
class PaletteCommand:
    title: str  # "area: verb", e.g. "problems: sample"
    help: str
    run: PaletteCallback


_COMMANDS: dict[str, PaletteCommand] = {}


def register_command(title: str, help: str, run: PaletteCallback) -> PaletteCommand:
    """Add (or replace, by title) a palette command."""
    command = PaletteCommand(title, help, run)
    _COMMANDS[title] = command
    return command


def registered_commands() -> list[PaletteCommand]:
    return sorted(_COMMANDS.values(), key=lambda c: c.title)


def mode_action(mode: str, action: str | None = None) -> PaletteCallback:
    """A callback that opens section ``mode`` and then runs ``action`` on its screen."""

    async def run(app: App[Any]) -> None:
        if app.current_mode != mode:
            await app.switch_mode(mode)
        if action is not None:
            await app.screen.run_action(action)

    return run


async def _invoke(app: App[Any], command: PaletteCommand) -> None:
    result = command.run(app)
    if inspect.isawaitable(result):
        await result


class WorkbenchCommands(Provider):
    """Registered commands plus "theme: NAME" for each theme."""

    def _all(self) -> list[PaletteCommand]:
        commands = registered_commands()
        for name in sorted(self.app.available_themes):
            if name == "textual-ansi":
                continue
            commands.append(
                PaletteCommand(f"theme: {name}", "Switch colour theme", _set_theme(name))
            )
        return commands

    async def discover(self) -> Hits:
        for command in registered_commands():
            yield DiscoveryHit(
                command.title, partial(self._run, command), command.title, command.help
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._all():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(command.title),
                    partial(self._run, command),
                    command.title,
                    command.help,
                )

    async def _run(self, command: PaletteCommand) -> None:
        # run as a worker-free task: palette callbacks must not block the palette closing
        self.app.call_later(_invoke, self.app, command)


def _set_theme(name: str) -> PaletteCallback:
    def run(app: App[Any]) -> None:
        app.theme = name

    return run
