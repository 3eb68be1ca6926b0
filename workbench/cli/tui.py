"""The bare ``workbench`` command: open the TUI on a workspace."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("tui", help="open the terminal UI (the default)")
    p.set_defaults(handler=open_tui)


def open_tui(args: argparse.Namespace) -> int:
    return run_tui(args.db, args.config)


def run_tui(db: str | Path, config: str | Path | None = None) -> int:
    """Open the app on the workspace ``db`` (migrated if older) until the user quits.

    A missing ``db`` is an error: workspaces are made by ``workbench init`` or an import."""
    from workbench.core.providers import ProviderRegistry
    from workbench.core.settings import load_settings
    from workbench.core.store import open_store
    from workbench.tui.app import make_app

    settings = load_settings(config)
    store = open_store(db, create=False)
    app = make_app(store, ProviderRegistry(settings), settings)
    try:
        app.run()
    finally:
        store.close()
    return app.return_code or 0  # e.g. 129 when the terminal hung up
