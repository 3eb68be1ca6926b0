"""``workbench batch``: batch files for self-hosted GPUs, and a run's batches.

- ``batch export RUN --stage S --out DIR [--shard-lines N]`` writes the stage's
  pending items as OpenAI-batch JSONL shards and ``manifest.json``;
- ``batch ingest RUN FILE...`` records output lines (``vllm run-batch`` output, or
  any tool writing that line shape); it may run many times, on partial output;
- ``batch list RUN`` shows the run's batches.

See ``docs/scale.md`` for where the shards run.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.core.engine import WorkItem
    from workbench.core.settings import Settings
    from workbench.core.store import Store


def register(sub: Any) -> None:
    p = sub.add_parser("batch", help="batch files for GPU nodes, and a run's provider batches")
    bsub = p.add_subparsers(dest="batch_command", metavar="ACTION", required=True)

    e = bsub.add_parser("export", help="write a stage's pending items as OpenAI-batch shards")
    e.add_argument("run_id", type=int, metavar="RUN")
    e.add_argument("--stage", required=True, help="the stage whose items to write")
    e.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    e.add_argument(
        "--shard-lines", type=int, default=50_000, metavar="N", help="lines per shard (50000)"
    )
    e.add_argument("--db", default=argparse.SUPPRESS, help="workspace database")
    e.add_argument("--config", default=argparse.SUPPRESS, help="settings file (workbench.toml)")
    e.set_defaults(handler=cmd_export)

    i = bsub.add_parser("ingest", help="record batch output files (re-running is a no-op)")
    i.add_argument("run_id", type=int, metavar="RUN")
    i.add_argument("files", nargs="+", type=Path, metavar="FILE")
    i.add_argument("--db", default=argparse.SUPPRESS, help="workspace database")
    i.add_argument("--config", default=argparse.SUPPRESS, help="settings file (workbench.toml)")
    i.set_defaults(handler=cmd_ingest)

    s = bsub.add_parser("submit", help="send a stage's pending items to provider batch APIs")
    s.add_argument("run_id", type=int, metavar="RUN")
    s.add_argument("--stage", required=True, help="the stage whose items to send")
    s.add_argument("--size", type=int, default=10_000, help="target items per batch (10000)")
    s.add_argument("--wait", action="store_true", help="then poll until every batch is in")
    s.add_argument("--db", default=argparse.SUPPRESS, help="workspace database")
    s.add_argument("--config", default=argparse.SUPPRESS, help="settings file (workbench.toml)")
    s.set_defaults(handler=cmd_submit)

    po = bsub.add_parser("poll", help="poll a run's provider batches and record what ended")
    po.add_argument("run_id", type=int, metavar="RUN")
    po.add_argument("--wait", action="store_true", help="until no batch is open")
    po.add_argument("--db", default=argparse.SUPPRESS, help="workspace database")
    po.add_argument("--config", default=argparse.SUPPRESS, help="settings file (workbench.toml)")
    po.set_defaults(handler=cmd_poll)

    c = bsub.add_parser("cancel", help="cancel a run's open batches (partial results are kept)")
    c.add_argument("run_id", type=int, metavar="RUN")
    c.add_argument("--db", default=argparse.SUPPRESS, help="workspace database")
    c.add_argument("--config", default=argparse.SUPPRESS, help="settings file (workbench.toml)")
    c.set_defaults(handler=cmd_cancel)

    a = bsub.add_parser("adopt", help="answer an ambiguous recovery: BATCH is REMOTE_ID")
    a.add_argument("run_id", type=int, metavar="RUN")
    a.add_argument("batch_id", type=int, metavar="BATCH")
    a.add_argument("remote_id", metavar="REMOTE_ID")
    a.add_argument("--db", default=argparse.SUPPRESS, help="workspace database")
    a.set_defaults(handler=cmd_adopt)

    ls = bsub.add_parser("list", help="a run's batches: provider, id, state, items")
    ls.add_argument("run_id", type=int, metavar="RUN")
    ls.add_argument("--db", default=argparse.SUPPRESS, help="workspace database")
    ls.set_defaults(handler=cmd_list)


def _stage_items(store: Store, settings: Settings, run_id: int, stage: str) -> list[WorkItem]:
    """The stage's work items, under the run's pinned prompts (as a resume builds them)."""
    from workbench.core.errors import ConfigError
    from workbench.core.experiments import load_experiment_config, make_experiment
    from workbench.core.prompts.versions import pinned_versions

    run = store.get_run(run_id)
    config = load_experiment_config(run["config"])
    experiment = make_experiment(config, settings)
    if stage not in experiment.stages():
        raise ConfigError(
            f"run {run_id} has no stage '{stage}' (stages: {', '.join(experiment.stages())})"
        )
    with pinned_versions(config.prompt_pins or {}):
        return list(experiment.items(stage, store, run_id))


def cmd_export(args: argparse.Namespace) -> int:
    from workbench.core.batch import export_stage
    from workbench.core.engine import Engine
    from workbench.core.providers import ProviderRegistry
    from workbench.core.settings import load_settings
    from workbench.core.store import open_store

    settings = load_settings(args.config)
    with open_store(args.db, create=False) as store:
        items = _stage_items(store, settings, args.run_id, args.stage)
        engine = Engine(store, ProviderRegistry(settings), settings)
        report = export_stage(
            engine, store, args.run_id, args.stage, items, args.out, shard_lines=args.shard_lines
        )
    lines = sum(s.lines for s in report.shards)
    print(
        f"run {args.run_id} stage {args.stage}: {lines} line(s) in {len(report.shards)} shard(s) "
        f"under {report.out_dir}; {report.cached} from the cache, {report.skipped} already "
        "done or out"
    )
    for shard in report.shards:
        print(f"  {shard.file}  {shard.model}  {shard.lines} lines")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    import sys

    from workbench.core.batch import ingest_files
    from workbench.core.engine import Engine
    from workbench.core.providers import ProviderRegistry
    from workbench.core.settings import load_settings
    from workbench.core.store import open_store

    settings = load_settings(args.config)
    with open_store(args.db, create=False) as store:
        store.get_run(args.run_id)  # one line if there is no such run
        engine = Engine(store, ProviderRegistry(settings), settings)
        report = ingest_files(engine, store, args.run_id, args.files)
    for problem in report.problems:
        print(f"workbench: {problem}", file=sys.stderr)
    print(
        f"run {args.run_id}: {report.lines} line(s): {report.recorded} recorded, "
        f"{report.errors} error(s) recorded, {report.requeued} to send again, "
        f"{report.skipped} already recorded, {report.bad} unusable"
    )
    return 1 if report.bad else 0


def cmd_list(args: argparse.Namespace) -> int:
    from workbench.core.batch import count_states, run_batches
    from workbench.core.store import open_store

    with open_store(args.db, create=False) as store:
        store.get_run(args.run_id)
        batches = run_batches(store, args.run_id)
        states = count_states(store, args.run_id)
    if not batches:
        print(f"run {args.run_id} has no batches")
        return 0
    for b in batches:
        where = b.meta.get("file") or b.remote_id or "-"
        print(
            f"{b.id:>5}  {b.provider:<10} {b.status.value:<10} {b.n_items:>7}  {b.model}  {where}"
        )
    print("items: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
    return 0


def _engine(store: Store, args: argparse.Namespace) -> Any:
    from workbench.core.engine import Engine
    from workbench.core.providers import ProviderRegistry
    from workbench.core.settings import load_settings

    settings = load_settings(args.config)
    return Engine(store, ProviderRegistry(settings), settings), settings


def _print_ingest(run_id: int, report: Any) -> None:
    import sys

    for problem in report.ingested.problems:
        print(f"workbench: {problem}", file=sys.stderr)
    ing = report.ingested
    print(
        f"run {run_id}: {ing.recorded} recorded, {ing.errors} error(s), {ing.requeued} to send "
        f"again; {report.open} batch(es) still open"
    )


def cmd_submit(args: argparse.Namespace) -> int:
    import asyncio

    from workbench.core.batch import remote
    from workbench.core.store import open_store

    with open_store(args.db, create=False) as store:
        engine, settings = _engine(store, args)
        items = _stage_items(store, settings, args.run_id, args.stage)
        budget = store.get_run(args.run_id).get("budget_usd")

        async def go() -> Any:
            try:
                report = await remote.submit_items(
                    engine,
                    store,
                    args.run_id,
                    args.stage,
                    items,
                    budget_usd=budget,
                    target_size=args.size,
                )
                print(
                    f"run {args.run_id}: {len(report.submitted)} batch(es) submitted, "
                    f"{report.cached} from the cache, {report.waiting} waiting"
                )
                for line in report.refused:
                    print(f"  {line}")
                if args.wait:
                    _print_ingest(args.run_id, await remote.wait(engine, store, args.run_id))
            finally:
                await engine.providers.aclose()

        asyncio.run(go())
    return 0


def cmd_poll(args: argparse.Namespace) -> int:
    import asyncio

    from workbench.core.batch import remote
    from workbench.core.store import open_store

    with open_store(args.db, create=False) as store:
        store.get_run(args.run_id)
        engine, _ = _engine(store, args)

        async def go() -> Any:
            try:
                if args.wait:
                    return await remote.wait(engine, store, args.run_id, first_poll_s=0)
                return await remote.poll_once(engine, store, args.run_id)
            finally:
                await engine.providers.aclose()

        _print_ingest(args.run_id, asyncio.run(go()))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    import asyncio

    from workbench.core.batch import remote
    from workbench.core.store import open_store

    with open_store(args.db, create=False) as store:
        store.get_run(args.run_id)
        engine, _ = _engine(store, args)

        async def go() -> list[int]:
            try:
                return await remote.cancel(engine, store, args.run_id)
            finally:
                await engine.providers.aclose()

        ids = asyncio.run(go())
    print(
        f"run {args.run_id}: cancel asked for {len(ids)} batch(es); "
        f"`workbench batch poll {args.run_id} --wait` records their partial results"
    )
    return 0


def cmd_adopt(args: argparse.Namespace) -> int:
    from workbench.core.batch import remote
    from workbench.core.store import open_store

    with open_store(args.db, create=False) as store:
        remote.adopt(store, args.run_id, args.batch_id, args.remote_id)
    print(f"run {args.run_id}: batch {args.batch_id} is {args.remote_id}; poll to record it")
    return 0
