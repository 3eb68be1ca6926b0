"""Command palette: the "area: verb" commands a section declares on its screen class.

A section screen lists its commands in a ``SectionCommands`` provider and names that
provider in its ``COMMANDS``; the app adds every section's providers to its own
``COMMANDS``, so a section's commands are in the palette wherever it is opened.  A
command switches to its section and runs one of the screen's actions, so a palette
command and the section's key binding share one code path.  App-wide commands
(sections, sample import, keys, themes) come from ``WorkbenchApp.get_system_commands``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True)
class PaletteCommand:
    title: str  # "area: verb", e.g. "problems: sample"
    help: str
    action: str  # an action of the section's screen, e.g. "sample"


class SectionCommands(Provider):
    """The palette commands of one section (``mode``)."""

    mode: ClassVar[str]
    commands: ClassVar[tuple[PaletteCommand, ...]] = ()

    async def discover(self) -> Hits:
        for command in self.commands:
            yield DiscoveryHit(
                command.title, partial(self._run, command), command.title, command.help
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self.commands:
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
        app = self.app
        if app.current_mode != self.mode:
            await app.switch_mode(self.mode)
        await app.screen.run_action(command.action)
