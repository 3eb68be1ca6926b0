"""``workbench cache explain RUN_ID ITEM_KEY``: a call's cache key and why it hit or missed."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("cache", help="inspect the response cache")
    verbs = p.add_subparsers(dest="cache_command", metavar="VERB", required=True)
    ex = verbs.add_parser("explain", help="show an item's cache key parts and why it missed")
    ex.add_argument("run_id", type=int, metavar="RUN_ID")
    ex.add_argument("item_key", metavar="ITEM_KEY")
    ex.add_argument("--db", default=argparse.SUPPRESS, help="workspace database")
    ex.set_defaults(handler=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    from workbench.core.engine.cache import explain
    from workbench.core.store import open_store

    with open_store(args.db, create=False) as store:
        store.get_run(args.run_id)  # a clear error for an unknown run
        for line in explain(store, args.run_id, args.item_key):
            print(line)
    return 0
