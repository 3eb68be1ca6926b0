"""A stage in batch mode (``[stages.NAME] mode = "batch"``): provider batches replace phase 2.

``workbench run`` sends a batch-mode stage's pending items as provider batches
(``remote.submit_items``: reserve, commit, upload, create), polls them with one
poller (``remote.wait``), and records what comes back through the same session
as sync calls.  Items the ingester re-queues (expired, cancelled, a retryable
error, an enqueued-token refusal) go out in the next batch, up to their batch
attempts; what is still unfinished then is sent sync when the config says
``batch_fallback = "sync"``, and is the stage's failure otherwise.  A restarted
run first polls the batches its stage left open: nothing is resubmitted.  Cancelling
the run (``Engine.cancel``, the lease lost) while it waits asks the provider to cancel
the open batches and ends the stage ``cancelled``; their partial results are recorded by
the next poll (``workbench batch poll RUN``, or a resume).

What cannot be batched fails before any spend (``check_stages``): the local
model, Cohere and OpenAI-compatible servers have no provider batch path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from workbench.core.batch import remote
from workbench.core.batch.rows import run_batches
from workbench.core.engine import (
    CallPlan,
    Engine,
    RunEnd,
    StageFinished,
    StageStarted,
    WorkItem,
)
from workbench.core.errors import ConfigError
from workbench.core.status import RunStatus
from workbench.core.store import Store

#: provider kinds with a batch API
BATCH_KINDS = ("openai", "anthropic")
#: the first poll after a submit, and the cap of the backoff between polls (seconds)
FIRST_POLL_S = 30.0
POLL_CAP_S = 300.0
#: a guard on submit -> wait rounds (each item has at most MAX_BATCH_ATTEMPTS batches)
MAX_ROUNDS = 12


def check_stages(
    engine: Engine,
    modes: Mapping[str, str],
    stages: Sequence[str],
    plans_for: Callable[[str], Sequence[CallPlan]],
) -> None:
    """Before any spend: every named stage exists, and every batch stage's models can batch.

    One ``ConfigError`` naming the stage (and the model) otherwise.
    """
    for name in modes:
        if name not in stages:
            raise ConfigError(f"stages.{name}: no such stage (stages: {', '.join(stages)})")
    for stage, mode in modes.items():
        if mode != "batch":
            continue
        for plan in plans_for(stage):
            provider, _ = engine.providers.resolve(plan.model_ref)
            if provider.kind not in BATCH_KINDS:
                raise ConfigError(
                    f'stage {stage}: mode = "batch", but {plan.model_ref} ({plan.role}) is a '
                    f"{provider.kind} provider with no batch API (openai and anthropic have); "
                    'run the stage sync (mode = "sync")'
                )


def _open_remote(db: Store, run_id: int) -> int:
    return sum(1 for b in run_batches(db, run_id, open_only=True) if b.provider != "file")


def _with_samples(db: Store, run_id: int, stage: str) -> set[str]:
    rows = db.conn.execute(
        "SELECT item_key FROM samples WHERE run_id=? AND stage=?", (run_id, stage)
    )
    return {r[0] for r in rows}


class _Cancelled(Exception):
    """The run was cancelled while its batches were out."""


def _cancellable(
    engine: Engine, sleep: Callable[[float], Any], publish: Callable[[], None]
) -> Callable[[float], Any]:
    """``sleep`` in steps of at most a second that ends early when the run is cancelled,
    publishing the run's stats at each step (a batch stage may wait for hours)."""

    async def wait(delay: float) -> None:
        end = time.monotonic() + delay
        while not engine.cancel_requested:
            publish()
            left = end - time.monotonic()
            if left <= 0:
                return
            await sleep(min(left, 1.0))
        raise _Cancelled

    return wait


async def run_batch_stage(
    engine: Engine,
    db: Store,
    run_id: int,
    stage: str,
    items: Sequence[WorkItem],
    *,
    budget_usd: float | None = None,
    fallback: str = "none",
    sleep: Callable[[float], Any] = asyncio.sleep,
) -> RunEnd:
    """Run one stage's items through provider batches; say how it ended."""
    items = [i for i in items if i.stage == stage]
    already = len(db.done_item_keys(run_id, stage) & {i.key for i in items})
    engine.emit(StageStarted(run_id, stage, len(items), already))
    stats = engine.tracker(run_id, db)
    stats.start_stage(stage, len(items), already)

    def publish() -> None:
        engine.emit(stats.snapshot())

    refused: list[str] = []
    sleep = _cancellable(engine, sleep, publish)
    try:
        if _open_remote(db, run_id):  # a restart: poll what is out before sending anything
            await remote.wait(
                engine,
                db,
                run_id,
                first_poll_s=0.0,
                poll_cap_s=POLL_CAP_S,
                sleep=sleep,
                quiet=False,
            )
        send: Sequence[WorkItem] = items  # the first round retries errored items too
        for _ in range(MAX_ROUNDS):
            report = await remote.submit_items(
                engine, db, run_id, stage, send, budget_usd=budget_usd
            )
            refused = report.refused
            if not _open_remote(db, run_id):
                break
            await remote.wait(
                engine,
                db,
                run_id,
                first_poll_s=FIRST_POLL_S,
                poll_cap_s=POLL_CAP_S,
                sleep=sleep,
                quiet=False,
            )
            have = _with_samples(db, run_id, stage)  # re-queued items have none yet
            send = [i for i in items if i.key not in have]
            if not send:
                break
    except _Cancelled:
        asked = await remote.cancel(engine, db, run_id)
        return RunEnd(
            RunStatus.CANCELLED,
            f"stage {stage}: cancelled with {len(asked)} batch(es) out; they were asked to "
            f"stop, and `workbench batch poll {run_id}` (or a resume) records what they did",
        )
    finally:
        publish()
        engine.emit(StageFinished(run_id, stage))
    done = db.done_item_keys(run_id, stage)
    rest = [i for i in items if i.key not in done]
    budget = next((r for r in refused if r.startswith("budget")), None)
    if budget is not None:
        return RunEnd(RunStatus.BUDGET, budget)
    if rest and fallback == "sync":
        return await engine.run_items(run_id, items, budget_usd=budget_usd)
    if rest:
        why = f"; {refused[0]}" if refused else ""
        return RunEnd(
            RunStatus.FAILED,
            f"stage {stage}: {len(rest)} item(s) not finished in batch mode{why} "
            '(batch_fallback = "sync" sends them as ordinary requests)',
        )
    return RunEnd(RunStatus.DONE)
