"""``workbench prompts list|show|export|import``: prompt versions from the shell."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("prompts", help="list, show, export and import prompt templates")
    verbs = p.add_subparsers(dest="prompts_command", metavar="VERB", required=True)
    ls = verbs.add_parser("list", help="prompts with their version counts")
    ls.add_argument("--versions", action="store_true", help="list every version")
    ls.set_defaults(handler=cmd_list)
    show = verbs.add_parser("show", help="print a version (NAME = newest, NAME@ID, or ID)")
    show.add_argument("ref")
    show.set_defaults(handler=cmd_show)
    exp = verbs.add_parser("export", help="write the newest version of each prompt to DIR")
    exp.add_argument("directory")
    exp.add_argument("--name", action="append", help="only this prompt (repeatable)")
    exp.set_defaults(handler=cmd_export)
    imp = verbs.add_parser("import", help="save *.md.j2 files (a file or a directory) as versions")
    imp.add_argument("path")
    imp.add_argument("--note", default="", help="note recorded on each new version")
    imp.set_defaults(handler=cmd_import)


def _store(args: argparse.Namespace, *, create: bool = False) -> Any:
    from workbench.core.prompts import seed_defaults
    from workbench.core.store import open_store

    store = open_store(args.db, create=create)  # only an import may make a new workspace
    seed_defaults(store)  # the defaults are always listed, exported and resolvable
    return store


def cmd_list(args: argparse.Namespace) -> int:
    from workbench.core.prompts.versions import list_prompts, versions

    with _store(args) as store:
        for p in list_prompts(store):
            print(
                f"{p.name:<24} {p.purpose:<10} {p.n_versions:>3} version(s)  newest {p.latest_id}"
            )
            if args.versions:
                for v in versions(store, p.name):
                    parent = f" <- {v.parent_id}" if v.parent_id else ""
                    print(
                        f"    {v.id:>5}{parent:<9} {v.created_at}  {v.content_hash[:10]}  {v.note}"
                    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from workbench.core.prompts import resolve_version

    with _store(args) as store:
        print(resolve_version(store, args.ref).body.rstrip("\n"))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from workbench.core.prompts.versions import export_prompts

    with _store(args) as store:
        for path in export_prompts(store, args.directory, args.name):
            print(path)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from workbench.core.prompts.versions import get_version, import_prompts

    with _store(args, create=True) as store:
        for vid in import_prompts(store, args.path, note=args.note):
            v = get_version(store, vid)
            print(f"{v.name}@{v.id}  {v.note}")
    return 0
