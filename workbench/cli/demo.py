"""``workbench demo --dir DIR``: a ready workspace with samples and prompts, then the TUI.

Besides the samples and prompts, the published GPT-3 solutions to the sample
GSM8K problems are recorded as a graded calibration run, so Runs, Traces, Plots
and the Problems screen's solve rates show real results without any API key; a
csv_agent run on tips, recorded from the tests' stub conversations, fills Tables.
Idempotent: the samples are imported, the default prompts seeded and the traces
recorded only when missing, so a second ``make demo`` opens straight away.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from workbench.core.store import Store, open_store

DEMO_DB = "workbench.db"


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="set up a demo workspace (bundled samples) and open the TUI")
    p.add_argument("--dir", default="demo-workspace", help="workspace folder (created if missing)")
    p.add_argument(
        "--no-tui", action="store_true", help="prepare the workspace and exit (for scripts)"
    )
    p.set_defaults(handler=run_demo)


def prepare_demo(folder: Path) -> list[str]:
    """Set up the workspace in ``folder``; return one line per thing done."""
    folder.mkdir(parents=True, exist_ok=True)
    done: list[str] = []
    with open_store(folder / DEMO_DB) as store:
        done += _import_samples(store)
        done += _seed_prompts(store)
        done += _record_traces(store, folder)
        done += _record_csv_run(store)
    return done


def _record_csv_run(store: Store) -> list[str]:
    """A recorded csv_agent run on tips, for the Tables screen (once)."""
    from workbench.core.csv_agent.recorded import load_recording
    from workbench.core.errors import InputError

    try:
        result = load_recording(store)
    except InputError as exc:
        return [f"tables: csv_agent run not recorded: {exc}"]
    return [f"tables: {result.summary()}"] if result.created else []


def _record_traces(store: Store, folder: Path) -> list[str]:
    """The GPT-3 GSM8K traces as a finished run (once; a later demo only checks them)."""
    from workbench.core.errors import InputError
    from workbench.core.experiments.published_traces import import_traces
    from workbench.core.settings import load_settings

    toml = folder / "workbench.toml"
    settings = load_settings(toml) if toml.exists() else None  # the workspace's [bins]
    try:
        result = import_traces(store, settings=settings)
    except InputError as exc:  # e.g. a workspace whose sample problems were removed
        return [f"runs: GPT-3 traces not recorded: {exc}"]
    return [f"runs: {result.summary()}"] if result.n_added else []


def _import_samples(store: Store) -> list[str]:
    from workbench.core.library import ProblemFilter, count_problems, import_samples

    if count_problems(store, ProblemFilter()):
        return []
    from workbench.core.library import describe_import

    # GSM8K + MATH-500, and BIG-Bench Mistake traces with their first-mistake labels
    reports = import_samples(store) + import_samples(store, "bbmistake")
    return [f"samples: {describe_import(reports)}"]


def _seed_prompts(store: Store) -> list[str]:
    """Seed default prompts (idempotent on the prompts side, so run it every time)."""
    from workbench.core.prompts.versions import count_versions, seed_defaults

    before = count_versions(store)
    seed_defaults(store)
    added = count_versions(store) - before
    return [f"prompts: added {added} default prompt versions"] if added else []


def run_demo(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    for line in prepare_demo(folder):
        print(f"workbench demo: {line}", file=sys.stderr)
    if args.no_tui:
        print(f"workbench demo: workspace ready in {folder}", file=sys.stderr)
        return 0
    from workbench.cli.tui import run_tui

    config = args.config or (
        folder / "workbench.toml" if (folder / "workbench.toml").exists() else None
    )
    return run_tui(folder / DEMO_DB, config)
