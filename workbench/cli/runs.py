"""``workbench runs``: the runs in a workspace with status, cost and duration.

``workbench runs archive RUN --to DIR [--prune]`` writes a finished run as Parquet
(samples and calls, with the calls' request and response text, redacted), checks the
row counts, and with ``--prune`` deletes its calls and samples, keeping the run row.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.core.views.runs import RunRow


def register(sub: Any) -> None:
    p = sub.add_parser("runs", help="list runs with status, cost and duration")
    p.add_argument("--limit", type=int, default=50, help="newest N runs (default 50)")
    p.add_argument("--status", help="only runs with this status (done, failed, ...)")
    p.add_argument("--db", default=argparse.SUPPRESS, help="workspace database")
    p.set_defaults(handler=cmd_runs)
    rsub = p.add_subparsers(dest="runs_command", metavar="ACTION")
    a = rsub.add_parser("archive", help="write a finished run as Parquet; --prune frees the store")
    a.add_argument("run_id", type=int, metavar="RUN")
    a.add_argument("--to", required=True, metavar="DIR", help="folder for run-RUN/*.parquet")
    a.add_argument(
        "--prune",
        action="store_true",
        help="then delete the run's calls and samples (the run row keeps a pointer)",
    )
    a.add_argument("--db", default=argparse.SUPPRESS, help="workspace database")
    a.set_defaults(handler=cmd_archive)


def cmd_archive(args: argparse.Namespace) -> int:
    from workbench.core.analysis import archive_run
    from workbench.core.store import open_store

    with open_store(args.db, create=False) as store:
        report = archive_run(store, args.run_id, args.to, prune=args.prune)
    done = "archived and pruned" if report.pruned else "archived"
    print(
        f"run {report.run_id} {done}: {report.samples} sample(s), {report.calls} call(s) "
        f"in {report.dir} (row counts verified)"
    )
    return 0


def _duration(row: RunRow) -> str:
    from workbench.cli.run_display import duration
    from workbench.core.status import RunStatus

    if not row.started_at:
        return "-"
    if not row.finished_at:
        return "running" if row.status is RunStatus.RUNNING else "-"
    delta = datetime.fromisoformat(row.finished_at) - datetime.fromisoformat(row.started_at)
    return duration(delta.total_seconds())


def cmd_runs(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from workbench.cli.run_display import money
    from workbench.core.store import open_store
    from workbench.core.views.runs import list_runs, run_headline

    with open_store(args.db, create=False) as store:
        rows = list_runs(store, limit=args.limit, status=args.status)
        headlines = {r.id: run_headline(store, r.id) for r in rows}
    console = Console()
    if not rows:
        console.print("no runs yet: start one with `workbench run CONFIG.toml`")
        return 0
    table = Table(
        "id", "name", "kind", "status", "result", "calls", "cache", "cost", "took", "created"
    )
    for r in rows:
        cost = money(r.cost_usd) + (f" +{r.unpriced_calls}?" if r.unpriced_calls else "")
        if r.budget_usd:
            cost += f" / {money(r.budget_usd)}"
        status = r.status if not r.error else f"{r.status}: {r.error[:40]}"
        table.add_row(
            str(r.id),
            r.name,
            r.kind,
            status,
            headlines[r.id],
            str(r.n_calls),
            str(r.cache_hits),
            cost,
            _duration(r),
            r.created_at[:19].replace("T", " "),
        )
    console.print(table)
    return 0
