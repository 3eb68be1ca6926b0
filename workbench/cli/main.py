"""Command line: ``workbench`` opens the TUI; subcommands run headless.

Each area adds its subcommands from ``workbench/cli/<area>.py`` (a
``register(subparsers)`` function).  Those modules import only argparse at the
top; nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from workbench.cli import batch, cache, demo, export, imports, init, prompts, run, runs, tui
from workbench.cli.pipes import silence_stdout
from workbench.core.errors import WorkbenchError

#: modules that add subcommands, in help order
COMMAND_MODULES = (tui, init, demo, imports, run, runs, prompts, export, cache, batch)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="A terminal research workbench for LLM reasoning and error-recovery experiments.",
    )
    parser.add_argument(
        "--db",
        default=os.environ.get("WORKBENCH_DB", "workbench.db"),
        help="workspace database (default: ./workbench.db, or $WORKBENCH_DB)",
    )
    parser.add_argument(
        "--config",
        default=None,
        help="settings file (default: ./workbench.toml if present, or $WORKBENCH_CONFIG)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        from workbench.cli.tui import open_tui

        handler = open_tui
    try:
        return int(handler(args) or 0)
    except WorkbenchError as exc:
        print(f"workbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("workbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `workbench ... | head`: the reader has all it wanted
        silence_stdout()
        return 1


if __name__ == "__main__":
    sys.exit(main())
