"""``workbench run CONFIG.toml [--resume RUN_ID | --retry-failed RUN_ID]``: headless runs.

Shows live progress (when stdout is a terminal), prints a summary, and exits
non-zero unless the run ended ``done``.  Ctrl-C once cancels cleanly (finished
calls are committed; ``--resume`` continues); twice aborts at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from datetime import datetime
from typing import Any

from workbench.core.errors import ConfigError


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run an experiment config with live progress and a summary")
    p.add_argument("experiment", nargs="?", metavar="CONFIG", help="experiment config (TOML)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", type=int, metavar="RUN_ID", help="continue a run")
    mode.add_argument(
        "--retry-failed", type=int, metavar="RUN_ID", help="re-run only a run's errored items"
    )
    # also accepted after the subcommand
    p.add_argument("--db", default=argparse.SUPPRESS, help="workspace database")
    p.add_argument("--config", default=argparse.SUPPRESS, help="settings file (workbench.toml)")
    p.add_argument(
        "--budget",
        type=_budget,
        default=argparse.SUPPRESS,
        metavar="USD",
        help="budget cap in USD ('none': no cap); with --resume, raises a stopped run's cap",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=argparse.SUPPRESS,
        metavar="N",
        help="cap on requests at once; with --resume, changes the run's setting",
    )
    p.add_argument("--no-live", action="store_true", help="plain progress lines, no live display")
    p.set_defaults(handler=cmd_run)


def _budget(text: str) -> float | None:
    """``--budget``: dollars > 0, or ``none`` for no cap."""
    if text.strip().lower() in ("none", "off"):
        return None
    try:
        value = float(text.strip().lstrip("$"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of dollars") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 (or 'none' for no cap)")
    return value


def _config_for(args: argparse.Namespace, store: Any) -> tuple[Any, int | None, Any]:
    """The config to run, the run to continue (or None), and the settings change (or None).

    A run's budget and concurrency may change on resume (``--budget``, ``--concurrency``,
    or different values in CONFIG); anything else in CONFIG must match the run's snapshot.
    """
    from workbench.core.experiments.runner import (
        RunSettings,
        load_experiment_config,
        pin_like,
        with_settings,
        without_settings,
    )

    budget = getattr(args, "budget", ...)
    concurrency = getattr(args, "concurrency", ...)
    if concurrency is not ... and concurrency < 1:
        raise ConfigError("run: --concurrency must be at least 1")
    run_id = args.resume or args.retry_failed
    if run_id is None:
        if not args.experiment:
            raise ConfigError("run: give an experiment CONFIG.toml (or --resume RUN_ID)")
        config = load_experiment_config(args.experiment)
        if budget is not ... or concurrency is not ...:
            config = with_settings(
                config,
                RunSettings(
                    config.budget_usd if budget is ... else budget,
                    config.concurrency if concurrency is ... else concurrency,
                ),
            )
        return config, None, None
    stored = load_experiment_config(store.get_run(run_id)["config"])
    base = stored
    if args.experiment:
        given = pin_like(load_experiment_config(args.experiment), stored)  # runs pin prompts
        if without_settings(given) != without_settings(stored):
            raise ConfigError(
                f"{args.experiment}: differs from the config of run {run_id} in more than "
                "budget_usd / concurrency; omit CONFIG to continue that run (use --budget / "
                "--concurrency to change those), or start a new run"
            )
        base = given
    change = RunSettings(
        base.budget_usd if budget is ... else budget,
        base.concurrency if concurrency is ... else concurrency,
    )
    if (change.budget_usd, change.concurrency) == (stored.budget_usd, stored.concurrency):
        return stored, run_id, None
    return with_settings(stored, change), run_id, change


def cmd_run(args: argparse.Namespace) -> int:
    from workbench.cli.run_display import PipeConsole, RunDisplay
    from workbench.core.engine import Engine
    from workbench.core.experiments import run_experiment
    from workbench.core.providers import ProviderRegistry
    from workbench.core.settings import load_settings
    from workbench.core.store import open_store

    settings = load_settings(args.config)
    console = PipeConsole()
    with open_store(args.db, create=False) as store:
        config, run_id, change = _config_for(args, store)
        providers = ProviderRegistry(settings)
        display = RunDisplay(console, live=console.is_terminal and not args.no_live)
        result: dict[str, int] = {}

        async def main() -> None:
            engine = Engine(
                store, providers, settings, display.on_event, concurrency=config.concurrency
            )
            interrupts = 0

            def on_sigint() -> None:
                nonlocal interrupts
                interrupts += 1
                if interrupts == 1:
                    display.note("cancelling: finishing writes (Ctrl-C again to abort)")
                    engine.cancel()
                else:
                    raise KeyboardInterrupt

            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGINT, on_sigint)
            try:
                result["run_id"] = await run_experiment(
                    store,
                    providers,
                    settings,
                    config,
                    run_id=run_id,
                    engine=engine,
                    retry_failed=args.retry_failed is not None,
                    change=change,
                )
            finally:
                await providers.aclose()

        with display:
            asyncio.run(main())
        return print_summary(store, result["run_id"], config, settings)


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, tuple | list) and all(isinstance(v, float | int) for v in value):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return " · ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return str(value)


def _print_tree(data: dict[str, Any], indent: int = 2) -> None:
    for key, value in data.items():
        nested = isinstance(value, dict) and any(isinstance(v, dict) for v in value.values())
        if nested:
            print(f"{' ' * indent}{key}:")
            _print_tree(value, indent + 2)
        else:
            print(f"{' ' * indent}{key}: {_fmt(value)}")


def print_summary(store: Any, run_id: int, config: Any, settings: Any) -> int:
    """Print the run's headline numbers; the exit code (0 only for a done run)."""
    from workbench.cli.run_display import duration, money
    from workbench.core.experiments import make_experiment
    from workbench.core.status import RunStatus
    from workbench.core.views.runs import sample_status_counts

    run = store.get_run(run_id)
    totals = store.run_totals(run_id)
    counts = sample_status_counts(store, run_id)
    by_status = ", ".join(f"{n} {status}" for status, n in counts.items()) or "none"
    took = duration(_seconds(run["started_at"], run["finished_at"]))
    print(f"run {run_id} ({run['kind']} '{run['name']}'): {run['status']} in {took}")
    if run["error"]:
        print(f"  reason: {run['error']}")
    print(
        f"  items: {by_status} · calls {totals.n_calls} ({totals.n_cache_hits} cache hits,"
        f" {totals.n_errors} errors) · tokens {totals.input_tokens:,} in /"
        f" {totals.output_tokens:,} out"
    )
    cost = f"  cost: {money(totals.cost_usd)}"
    if totals.n_unpriced:
        cost += f" + {totals.n_unpriced} calls of unknown price"
    print(cost)
    try:
        summary = make_experiment(config, settings).summarise(store, run_id)
    except Exception as exc:  # a summary must not hide the run's own outcome
        print(f"  (no summary: {exc})", file=sys.stderr)
        summary = {}
    _print_tree(summary)
    if run["status"] == RunStatus.BUDGET:
        cap = float(run["budget_usd"] or 0.0)
        raised = max(cap * 2, totals.cost_usd * 2)
        print(f"  continue with: workbench run --resume {run_id} --budget {raised:.2f}")
        return 1
    if run["status"] != RunStatus.DONE:
        print(f"  continue with: workbench run --resume {run_id}")
        return 1
    return 0
