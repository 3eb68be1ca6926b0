"""``workbench init``: make a workspace database (the explicit way; an import also does)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="make a new workspace database (./workbench.db or --db)")
    p.add_argument("--db", default=argparse.SUPPRESS, help="workspace database")
    p.set_defaults(handler=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    from workbench.core.prompts import seed_defaults
    from workbench.core.store import open_store

    path = Path(args.db)
    existed = path.exists()
    with open_store(path) as store:
        seed_defaults(store)
        version = store.version
    if existed:
        print(f"{path}: already a workspace (schema {version}); nothing changed")
    else:
        print(f"{path}: new workspace (schema {version}); next: workbench import --sample")
    return 0
