"""Command palette: "area: verb" commands, declared on the classes that run them.

The app and each section screen list their commands in a ``PALETTE`` class variable,
as they list their keys in ``BINDINGS``.  One provider on the app's ``COMMANDS``
offers them all wherever the palette is opened, sorted by title, plus
"theme: NAME" when searching.  A section's command switches to that section and
runs one of its screen's actions, so a palette command and the section's key
binding share one code path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from textual.app import App
from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True)
class PaletteCommand:
    title: str  # "area: verb", e.g. "problems: sample"
    help: str
    #: an action of the screen that declares the command (of the app, on the app);
    #: None: only go to ``mode``
    action: str | None = None
    #: the section to go to first; a section screen's commands get its own mode
    mode: str | None = None


def palette_commands(app: App[Any]) -> list[PaletteCommand]:
    """The app's commands and every section screen's, sorted by title."""
    found: list[PaletteCommand] = list(_declared(app))
    sections = getattr(app, "section_screen_classes", None)
    screens: dict[str, object] = sections() if callable(sections) else dict(app.MODES)
    for mode, screen in screens.items():
        found += [
            command if command.mode else replace(command, mode=mode)
            for command in _declared(screen)
        ]
    return sorted(found, key=lambda command: command.title)


def _declared(owner: object) -> Sequence[PaletteCommand]:
    palette = getattr(owner, "PALETTE", ())
    return tuple(command for command in palette if isinstance(command, PaletteCommand))


async def run_command(app: App[Any], command: PaletteCommand) -> None:
    """Go to the command's section, then run its action there (or on the app)."""
    if command.mode is not None and app.current_mode != command.mode:
        await app.switch_mode(command.mode)
    if command.action is None:
        return
    if command.mode is None:
        await app.run_action(command.action)
    else:
        await app.screen.run_action(command.action)


class WorkbenchCommands(Provider):
    """Every declared command, plus "theme: NAME" for each theme when searching."""

    def _searchable(self) -> list[tuple[str, str, Callable[[], object]]]:
        found: list[tuple[str, str, Callable[[], object]]] = [
            (c.title, c.help, partial(run_command, self.app, c)) for c in palette_commands(self.app)
        ]
        for name in sorted(self.app.available_themes):
            if name != "textual-ansi":
                found.append((f"theme: {name}", "Switch colour theme", partial(self._theme, name)))
        return found

    def _theme(self, name: str) -> None:
        self.app.theme = name

    async def discover(self) -> Hits:
        for command in palette_commands(self.app):
            yield DiscoveryHit(
                command.title,
                partial(run_command, self.app, command),
                command.title,
                command.help,
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._searchable():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, title, help_text)
