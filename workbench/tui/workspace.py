"""What every screen works on: the store, the providers, the settings and the live runs.

The app holds one ``Workspace`` (``app.workspace``); screens and widgets reach it
through ``workspace_of(self)``, so nothing below the app imports the app.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.dom import DOMNode

from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import Store

if TYPE_CHECKING:  # the engine and experiments load with the first run, not at start-up
    from workbench.tui.live_runs import LiveRun


@dataclass(frozen=True)
class Workspace:
    store: Store
    providers: ProviderRegistry
    settings: Settings
    #: runs started in this app, by id (their workers belong to the Runs screen)
    live_runs: dict[int, LiveRun] = field(default_factory=dict)
    #: the config of the last run launched from the builder (the builder opens with it)
    last_launch: dict[str, Any] = field(default_factory=dict)
    #: what the user is working on, across sections: "problem_set" is the set last chosen
    #: or saved on Problems (Prompts' Try starts from it)
    focus: dict[str, str] = field(default_factory=dict)

    @contextmanager
    def thread_store(self) -> Iterator[Store]:
        """A connection of its own for a thread worker (sqlite3 objects are per thread)."""
        store = self.store.reopen()
        try:
            yield store
        finally:
            store.close()


def workspace_of(node: DOMNode) -> Workspace:
    """The workspace of the app ``node`` runs in."""
    workspace = getattr(node.app, "workspace", None)
    if not isinstance(workspace, Workspace):
        raise RuntimeError(f"{type(node.app).__name__} holds no Workspace")
    return workspace
