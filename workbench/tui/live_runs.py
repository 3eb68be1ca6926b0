"""Running an experiment from the TUI: the thread body and the messages it posts.

A run executes in a thread worker with its own asyncio loop and its own store
connection.  The engine's events become typed messages; ``RunStatsUpdated``
coalesces (``can_replace``), so a slow screen only ever draws the newest
snapshot.  Control goes back through the engine's thread-safe methods.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from textual.message import Message
from textual.signal import Signal

from workbench.core.engine import Event, LimitChanged, RunStats
from workbench.core.experiments.estimate import Estimate
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.status import RunStatus
from workbench.core.store import Store


@dataclass
class RunStatsUpdated(Message):
    """The newest snapshot of a run; a newer one for the same run replaces it unread."""

    run_id: int
    stats: RunStats

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunStatsUpdated) and message.run_id == self.run_id


@dataclass
class RunLimitChanged(Message):
    run_id: int
    provider: str
    limit: int
    reason: str


@dataclass
class RunEngineReady(Message):
    """The engine exists; pause / resume / cancel / set_limit may be called on it."""

    run_id: int
    engine: Any


@dataclass
class RunEnded(Message):
    run_id: int
    status: RunStatus
    error: str | None


@dataclass(frozen=True)
class LaunchRequest:
    """What the run builder hands back: a validated config and the models it names."""

    config: Any  # a validated ExperimentConfig subclass
    model_refs: tuple[str, ...]
    estimate: Estimate | None


@dataclass
class LaunchRun(Message):
    """The run builder was confirmed: create and start this run."""

    request: LaunchRequest


@dataclass
class LiveRun:
    """What the UI knows about a run it launched (changed only in message handlers)."""

    run_id: int
    model_refs: tuple[str, ...]
    changed: Signal[LiveRun]  # published after each change; monitors subscribe
    status: RunStatus = RunStatus.RUNNING
    engine: Any = None
    stats: RunStats | None = None
    limits: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ref.partition(":")[0] for ref in self.model_refs))


def execute_run(
    store: Store,
    settings: Settings,
    config: Any,
    run_id: int,
    post: Callable[[Message], object],
    *,
    change: Any = None,
) -> None:
    """Run ``config`` as ``run_id`` to the end (on a worker thread); report through ``post``.

    ``change`` (a ``RunSettings``) gives a resumed run a new budget / concurrency."""
    from workbench.core.engine import Engine
    from workbench.core.experiments import run_experiment

    def on_event(event: Event) -> None:
        if isinstance(event, RunStats):
            post(RunStatsUpdated(run_id, event))
        elif isinstance(event, LimitChanged):
            post(RunLimitChanged(run_id, event.provider, event.limit, event.reason))

    db = store.reopen()
    providers = ProviderRegistry(settings)  # clients bound to this thread's event loop

    async def main() -> None:
        concurrency = change.concurrency if change is not None else config.concurrency
        engine = Engine(db, providers, settings, on_event, concurrency=concurrency)
        post(RunEngineReady(run_id, engine))
        try:
            await run_experiment(
                db,
                providers,
                settings,
                config,
                run_id=run_id,
                on_event=on_event,
                engine=engine,
                change=change,
            )
        finally:
            engine.close()
            await providers.aclose()

    try:
        asyncio.run(main())
    except Exception as exc:  # one line for the monitor; the store keeps what landed
        post(RunEnded(run_id, RunStatus.FAILED, str(exc)))
        return
    finally:
        db.close()
    status = store.reopen()
    try:
        final = status.get_run(run_id)
        post(RunEnded(run_id, RunStatus(final["status"]), final["error"]))
    finally:
        status.close()


def cancel_batches(
    store: Store, settings: Settings, run_id: int, batch_ids: list[int]
) -> list[int]:
    """Ask the provider to cancel these open batches of ``run_id`` (on a worker thread);
    the ids it asked for.  Their partial results come in with the run's next poll."""
    from workbench.core.batch import remote
    from workbench.core.engine import Engine

    db = store.reopen()
    providers = ProviderRegistry(settings)  # clients bound to this thread's event loop

    async def main() -> list[int]:
        try:
            return await remote.cancel(
                Engine(db, providers, settings), db, run_id, only=set(batch_ids)
            )
        finally:
            await providers.aclose()

    try:
        return asyncio.run(main())
    finally:
        db.close()
