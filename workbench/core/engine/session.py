"""One ``Engine.run_items`` (or ``Engine.call``) in progress: dispatch, attempts, record.

Per-run state lives here (budget, journal, stats, pause gate, halt status,
tasks) so the ``Engine`` itself only holds what outlives a run: limiters,
settings, listeners.  The engine prepares the items (phase 1, before any
spend) and hands the session everything else it needs as one frozen
``SessionDeps``; the session never reaches back into the engine and ends
with a ``RunEnd`` (status and why).  Everything here runs on the engine's
event loop.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from workbench.core.engine import limiter as lim
from workbench.core.engine.budget import Budget, Pricer
from workbench.core.engine.events import (
    Event,
    ItemFinished,
    RetryScheduled,
    StageFinished,
    StageStarted,
)
from workbench.core.engine.journal import Journal
from workbench.core.engine.pool import REPLICA_FAULTS, EndpointPool, Replica, Slot
from workbench.core.engine.progress import RunStatsTracker
from workbench.core.engine.records import (
    AttemptOutcome,
    Prepared,
    error_records,
    hit_records,
    ok_records,
)
from workbench.core.engine.retry import RetryPolicy
from workbench.core.errors import ErrorKind, ProviderError, StoreError
from workbench.core.status import RunStatus, SampleStatus
from workbench.core.store import Store

#: errors that would fail every remaining request to the same endpoint: stop the run
FATAL_KINDS = frozenset({ErrorKind.AUTH, ErrorKind.NOT_FOUND})


def affinity_key(p: Prepared) -> str | None:
    """The item's problem id (the key's problem part when it has none): all samples and
    continuations of one problem hash to one replica and share its prefix cache."""
    item = p.item
    if item is None:
        return None
    if item.problem_id is not None:
        return item.problem_id
    parts = item.key.split("/")
    return parts[1] if len(parts) > 1 else item.key


@dataclass(frozen=True)
class SessionDeps:
    """What a session needs from the engine that starts it, handed over once."""

    emit: Callable[[Event], None]
    listening: bool  # someone listens: build per-item events
    redact: Callable[[str], str]
    retry: RetryPolicy
    rng: random.Random
    sleep: Callable[[float], Any]
    prices: Pricer
    snapshot_interval: float
    journal_interval: float


@dataclass(frozen=True)
class RunEnd:
    """How ``run_items`` ended, and why when it did not end done."""

    status: RunStatus
    error: str | None = None


class RunSession:
    """See the module docstring."""

    def __init__(
        self,
        deps: SessionDeps,
        db: Store,
        run_id: int | None,
        budget_usd: float | None,
        stats: RunStatsTracker,
        *,
        quiet: bool = False,
        item_key: str | None = None,
    ) -> None:
        self.deps = deps
        self.db = db
        self.run_id = run_id
        self.quiet = quiet
        self.journal = Journal(db, interval=deps.journal_interval)
        self.stats = stats
        spent = db.run_totals(run_id).cost_usd if run_id is not None and budget_usd else 0.0
        self.budget = Budget(budget_usd, spent)
        self.stats.budget_usd = budget_usd
        self.gate = asyncio.Event()
        self.gate.set()
        self.status: RunStatus | None = None  # set when the run must stop early
        self.error: str | None = None
        self.failure: BaseException | None = None  # an unexpected exception in a task
        self.tasks: set[asyncio.Task[None]] = set()
        self.dispatchers: list[asyncio.Task[None]] = []
        self.limiters: set[lim.AdaptiveLimiter] = set()
        self.pools: list[EndpointPool] = []
        self.item_key = item_key  # the key of an Engine.call outside an item list
        self.last_call_id = 0

    # -- control ---------------------------------------------------------------

    def set_paused(self, paused: bool) -> None:
        if paused:
            self.gate.clear()
        else:
            self.gate.set()
        self.stats.paused = paused
        self.stats.dirty = True

    def halt(self, status: RunStatus, error: str | None = None) -> None:
        """Stop sending; ``cancelled`` also abandons requests in flight."""
        if self.status is None or (
            status == RunStatus.CANCELLED and self.status != RunStatus.CANCELLED
        ):
            self.status, self.error = status, error
        self.gate.set()
        for task in self.dispatchers:
            task.cancel()  # they only wait on the gate or a limiter: safe to cancel
        if status == RunStatus.CANCELLED:
            for task in list(self.tasks):
                task.cancel()
        self.stats.dirty = True

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.failure = self.failure or exc
            self.halt(RunStatus.FAILED, f"{type(exc).__name__}: {exc}")

    # -- the run ---------------------------------------------------------------

    async def execute(
        self, stages: Mapping[str, tuple[int, int]], preps: Sequence[Prepared]
    ) -> RunEnd:
        """Send the prepared items; ``stages`` maps each stage to (items, already done)."""
        stats = self.stats
        misses = [p for p in preps if p.cached is None]
        stats.to_send = 0
        for stage, (total, already) in stages.items():
            stats.start_stage(stage, total, already)
            self.deps.emit(StageStarted(self.run_id, stage, total, already))

        stop_journal = asyncio.Event()
        journal_task = asyncio.create_task(self.journal.run(stop_journal))
        journal_task.add_done_callback(self._journal_done)
        ticker = asyncio.create_task(self._tick())
        try:
            for p in preps:
                if p.cached is not None:
                    self.record_hit(p)
            groups: dict[lim.AdaptiveLimiter | EndpointPool, list[Prepared]] = {}
            for p in misses:
                groups.setdefault(p.pool or p.limiter, []).append(p)
            for source in groups:
                if isinstance(source, EndpointPool):
                    self.limiters.update(r.limiter for r in source.replicas)
                    self.pools.append(source)
                else:
                    self.limiters.add(source)
            self.dispatchers = [asyncio.create_task(self._dispatch(g)) for g in groups.values()]
            if self.status is not None:  # cancelled before it started
                self.halt(self.status, self.error)
            await asyncio.gather(*self.dispatchers, return_exceptions=True)
            while self.tasks:
                await asyncio.gather(*list(self.tasks), return_exceptions=True)
        finally:
            stop_journal.set()
            try:
                await journal_task
            except Exception as exc:
                raise StoreError(f"{self.db.path}: could not write results: {exc}") from exc
            finally:
                ticker.cancel()
                self._publish()
                for stage in stages:
                    self.deps.emit(StageFinished(self.run_id, stage))
        if self.failure is not None:
            raise self.failure
        if self.status is not None:
            return RunEnd(self.status, self.error)
        errors = sum(stats.stages[s][2] for s in stages)
        if errors:
            return RunEnd(
                RunStatus.FAILED, f"{errors} item(s) failed; last error: {stats.last_error}"
            )
        return RunEnd(RunStatus.DONE)

    def _journal_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.halt(RunStatus.FAILED, f"could not write results: {task.exception()}")

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.deps.snapshot_interval)
            if self.stats.dirty or self.tasks:
                self._publish()

    def _publish(self) -> None:
        stats = self.stats
        stats.in_flight = sum(limiter.in_flight for limiter in self.limiters)
        stats.limit = sum(limiter.limit for limiter in self.limiters)
        snapshot = stats.snapshot()
        if self.pools:
            snapshot = replace(snapshot, replicas=tuple(s for p in self.pools for s in p.stats()))
        self.deps.emit(snapshot)

    async def acquire(self, p: Prepared, avoid: Replica | None = None) -> Slot:
        """A concurrency slot for ``p``: its endpoint's, or a pool replica's."""
        if p.pool is not None:
            return await p.pool.acquire(p.est_tokens, affinity_key(p), avoid)
        return Slot(p.provider, p.limiter, await p.limiter.acquire(p.est_tokens))

    @staticmethod
    def release(p: Prepared, slot: Slot, outcome: str, kind: ErrorKind | None = None) -> None:
        if p.pool is not None:
            p.pool.release(slot, outcome, kind)
        else:
            slot.limiter.release(slot.epoch, outcome)

    async def _dispatch(self, preps: list[Prepared]) -> None:
        for p in preps:
            while True:
                if not self.gate.is_set():
                    await self.gate.wait()
                if self.status is not None:
                    return
                # the budget first: near the cap this waits for calls in flight to settle,
                # so fewer run at once instead of the run stopping short of its cap
                if not await self.budget.reserve(p.worst_usd):
                    self.halt(RunStatus.BUDGET, self.budget.message(p.worst_usd))
                    return
                try:
                    slot = await self.acquire(p)
                except asyncio.CancelledError:
                    self.budget.settle(p.worst_usd, None)
                    raise
                if self.status is not None or not self.gate.is_set():
                    self.release(p, slot, lim.UNUSED)  # stopped or paused while waiting
                    self.budget.settle(p.worst_usd, None)
                    if self.status is not None:
                        return
                    continue
                break
            task = asyncio.create_task(self._send(p, slot))
            self.tasks.add(task)
            task.add_done_callback(self._task_done)

    async def _send(self, p: Prepared, slot: Slot) -> None:
        self.record(p, await self.attempts(p, slot))

    async def attempts(self, p: Prepared, slot: Slot) -> AttemptOutcome:
        """Try ``p`` until it succeeds, fails for good, or runs out of attempts."""
        deps = self.deps
        timeout = p.settings.timeout_s
        attempt, held = 0, True
        try:
            while True:
                attempt += 1
                started = time.perf_counter()
                error: ProviderError | None = None
                replica = slot.replica
                sent = self.stats.attempt_started()  # a hung attempt counts toward max latency
                try:
                    async with asyncio.timeout(timeout) as cutter:
                        if replica is not None:
                            replica.cutters.add(cutter)
                        try:
                            response = await slot.provider.complete(p.request, timeout=timeout)
                        finally:
                            if replica is not None:
                                replica.cutters.discard(cutter)
                except ProviderError as exc:
                    error = exc
                except TimeoutError:
                    if replica is not None and not replica.up:  # cut short: the replica is down
                        error = ProviderError(
                            ErrorKind.CONNECTION, f"{p.provider.name}: replica {replica.url} down"
                        )
                    else:
                        error = ProviderError(ErrorKind.TIMEOUT, f"no response within {timeout:g}s")
                except Exception as exc:  # an adapter bug must not kill the run
                    error = ProviderError(ErrorKind.OTHER, f"{type(exc).__name__}: {exc}")
                finally:
                    self.stats.attempt_ended(sent)
                latency_ms = (time.perf_counter() - started) * 1000.0
                held = False
                if replica is not None and error is None:
                    replica.latencies.append(latency_ms)
                if error is None:
                    self.release(p, slot, lim.OK)
                    if replica is not None:  # a pool's tpm is per replica: settle it there
                        usage = response.usage
                        slot.limiter.settle_tokens(
                            p.est_tokens, usage.input_tokens + usage.output_tokens
                        )
                    return AttemptOutcome(response, None, None, latency_ms, attempt, slot.endpoint)
                rate_limited = error.kind is ErrorKind.RATE_LIMIT
                outcome = lim.RATE_LIMITED if rate_limited else lim.FAILED
                self.release(p, slot, outcome, error.kind)
                message = deps.redact(str(error))
                self.stats.error(error.kind.value, message)
                if (
                    not error.retryable
                    or attempt >= p.settings.max_attempts
                    or self.status in (RunStatus.FAILED, RunStatus.CANCELLED)
                ):
                    return AttemptOutcome(None, error, message, latency_ms, attempt, slot.endpoint)
                delay = deps.retry.delay(
                    attempt, error.retry_after, deps.rng, rate_limited=rate_limited
                )
                avoid, skip_wait = None, False
                if replica is not None and error.kind in REPLICA_FAULTS:
                    avoid = replica  # try another replica next
                    if not replica.up and p.pool is not None and p.pool.others_up(replica):
                        delay, skip_wait = 0.0, True  # the replica is down, not the service
                self.stats.retries += 1
                if not self.quiet:
                    deps.emit(
                        RetryScheduled(
                            run_id=self.run_id,
                            key=p.item.key if p.item else (self.item_key or ""),
                            provider=p.provider.name,
                            attempt=attempt,
                            delay_s=delay,
                            error_kind=error.kind.value,
                            error=message,
                        )
                    )
                if not skip_wait:
                    await deps.sleep(delay)
                slot = await self.acquire(p, avoid)
                held = True
        except asyncio.CancelledError:
            if held:
                self.release(p, slot, lim.UNUSED)
            self.budget.settle(p.worst_usd, None)
            raise

    # -- recording ---------------------------------------------------------------

    def record(self, p: Prepared, outcome: AttemptOutcome, *, batch: bool = False) -> float | None:
        """Queue the call (and sample) rows for an outcome; return the call's cost.

        ``batch``: the outcome came from a batch (provider API or file), priced at the
        batch rate; it took no limiter slot.
        """
        key = p.item.key if p.item else self.item_key
        resp, error = outcome.response, outcome.error
        if resp is not None:
            usage = resp.usage
            cost = self.deps.prices.cost(p.model_ref, usage, batch=batch)
            self.budget.settle(p.worst_usd, cost)
            if not batch and p.pool is None:
                p.limiter.settle_tokens(p.est_tokens, usage.input_tokens + usage.output_tokens)
            call, sample = ok_records(self.run_id, key, p, outcome, cost)
            done = self._committed(p, True, cost, usage.input_tokens, usage.output_tokens, outcome)
            self.journal.add(call, sample, done)
            return cost
        assert error is not None
        self.budget.settle(p.worst_usd, None)
        call, sample = error_records(self.run_id, key, p, outcome)
        self.journal.add(call, sample, self._committed(p, False, None, 0, 0, outcome))
        if error.kind in FATAL_KINDS:
            self.halt(RunStatus.FAILED, f"{p.model_ref}: {outcome.message}")
        return None

    def record_hit(self, p: Prepared) -> None:
        """A cache hit: recorded like a call, cost 0, nothing sent."""
        assert p.cached is not None
        call, sample = hit_records(self.run_id, p.item.key if p.item else self.item_key, p)
        hit, outcome = p.cached, AttemptOutcome(None, None, None, 0.0, 0)
        self.journal.add(
            call,
            sample,
            self._committed(p, True, 0.0, hit.input_tokens, hit.output_tokens, outcome, hit=True),
        )

    def _committed(
        self,
        p: Prepared,
        ok: bool,
        cost: float | None,
        input_tokens: int,
        output_tokens: int,
        outcome: AttemptOutcome,
        *,
        hit: bool = False,
    ) -> Any:
        """The after-commit callback: count the item and tell listeners."""
        item = p.item

        def on_commit(call_id: int) -> None:
            self.last_call_id = call_id
            if item is None or self.quiet:
                return
            self.stats.item_done(
                item.stage,
                ok=ok,
                cost=cost,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                latency_ms=outcome.latency_ms,
                cache_hit=hit,
            )
            if self.deps.listening:
                error = outcome.error
                self.deps.emit(
                    ItemFinished(
                        run_id=self.run_id,
                        key=item.key,
                        stage=item.stage,
                        status=SampleStatus.DONE if ok else SampleStatus.ERROR,
                        cost_usd=cost,
                        input_tokens=input_tokens,
                        output_tokens=output_tokens,
                        latency_ms=outcome.latency_ms,
                        cache_hit=hit,
                        error_kind=error.kind.value if error else None,
                        error=outcome.message,
                    )
                )

        return on_commit
