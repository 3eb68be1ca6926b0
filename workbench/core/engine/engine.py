"""The run engine: work items -> model calls -> journal, with limits, retries, cache, budget.

Each item goes through three phases:

1. **prepare** (all items, before anything is sent): resolve the provider,
   the continuation method (``ConfigError`` here fails the run before any
   spend), the request JSON and its cache key; look the keys up in the cache;
   check prices (a capped run refuses models without one) and API keys.
2. **send** (cache misses): per endpoint, a dispatcher takes a limiter slot,
   reserves the worst-case cost against the budget, and starts a task that
   tries the request with retries (exponential backoff, full jitter,
   ``Retry-After`` honoured, bounded attempts, a per-attempt timeout).
3. **record**: the outcome goes to the journal, which commits calls + samples
   rows in batches; the item is counted (events, stats) after its commit.

Batch mode seam: a provider batch API (or a batch file for GPU nodes)
replaces phase 2 only.  ``core/batch`` takes the prepared items of one
endpoint and model (``Prepared``: request, key, continuation, worst case),
writes ``batches`` / ``batch_items`` rows before anything leaves (so a
restarted run polls instead of resubmitting), and hands each result to
``RunSession.record(..., batch=True)`` (batch pricing) through a session from
``Engine.recorder``.  Items out in an open batch are skipped by phase 1 like
finished ones, so a resume never sends them twice.  Cache, budget, journal,
resume and events stay as they are.

Thread model: ``run_items`` and ``call`` run on the engine's own event loop
thread with their own store connection; ``pause``, ``resume``, ``cancel`` and
``set_limit`` may be called from any thread.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from workbench.core.engine import limiter as lim
from workbench.core.engine.budget import Pricer, estimate_input_tokens, worst_case_usage
from workbench.core.engine.cache import find_cached, hash_request_text, request_json_text
from workbench.core.engine.events import (
    CostRange,
    Event,
    LimitChanged,
    PoolStalled,
    ReplicaHealth,
)
from workbench.core.engine.items import CallPlan, WorkItem
from workbench.core.engine.pool import EndpointPool, HealthChange, PoolTiming, Replica
from workbench.core.engine.pricing import PriceTable
from workbench.core.engine.progress import RunStatsTracker
from workbench.core.engine.records import Prepared
from workbench.core.engine.retry import RetryPolicy
from workbench.core.engine.session import RunEnd, RunSession, SessionDeps
from workbench.core.errors import ConfigError, ErrorKind
from workbench.core.providers import (
    Continuation,
    ModelRequest,
    ModelResponse,
    Provider,
    ProviderRegistry,
)
from workbench.core.redact import Redactor
from workbench.core.settings import ProviderSettings, Settings
from workbench.core.status import OPEN_BATCH_STATES, BatchItemState, CallStatus, RunStatus
from workbench.core.store import Store

__all__ = ["CallResult", "Engine", "EventListener", "RetryPolicy", "RunEnd"]

log = logging.getLogger(__name__)

EventListener = Callable[[Event], None]


@dataclass(frozen=True)
class CallResult:
    """The outcome of ``Engine.call``."""

    call_id: int
    status: CallStatus
    response: ModelResponse | None
    cost_usd: float | None
    cache_hit: bool
    latency_ms: float
    attempts: int
    continuation: Continuation | None
    error_kind: ErrorKind | None = None
    error: str | None = None

    @property
    def text(self) -> str:
        return self.response.text if self.response else ""


class _GCFreeze:
    """``gc.freeze()`` while any run is in phase 2 of this process, ``gc.unfreeze()`` after.

    A run keeps every prepared item (requests, keys, work items) alive until it ends, and
    each cyclic collection walked all of them: at 5,000 items that was most of the engine's
    own overhead over a bare SDK loop (bench/engine_throughput.py, 0.87x -> 0.93x).  Frozen
    objects are still freed by reference counting; only cycles made before the freeze wait
    for the unfreeze.  Counted, so overlapping runs (the TUI) unfreeze once, at the last.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs = 0

    def __enter__(self) -> None:
        with self._lock:
            self._runs += 1
            if self._runs == 1:
                gc.freeze()

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._runs -= 1
            if self._runs == 0:
                gc.unfreeze()


_gc_freeze = _GCFreeze()


def out_in_batches(db: Store, run_id: int) -> set[str]:
    """Keys of items out in an open batch (provider or file): their results are pending."""
    open_states = ",".join(f"'{s.value}'" for s in OPEN_BATCH_STATES)
    rows = db.conn.execute(
        "SELECT bi.item_key FROM batch_items bi JOIN batches b ON b.id = bi.batch_id "
        f"WHERE bi.run_id=? AND bi.state=? AND b.status IN ({open_states})",
        (run_id, BatchItemState.OUT.value),
    )
    return {r[0] for r in rows}


class Engine:
    """Runs work items; see the module docstring."""

    def __init__(
        self,
        store: Store,
        providers: ProviderRegistry,
        settings: Settings,
        on_event: EventListener | None = None,
        *,
        concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        prices: Pricer | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        snapshot_interval: float = 0.1,
        journal_interval: float = 0.05,
        rng: random.Random | None = None,
        pool_timing: PoolTiming | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.settings = settings
        self.on_event = on_event
        self.concurrency = concurrency  # a cap over every provider's max_concurrency
        self.retry = retry or RetryPolicy()
        self.prices: Pricer = PriceTable.load(settings) if prices is None else prices
        self.sleep = sleep
        self.snapshot_interval = snapshot_interval
        self.journal_interval = journal_interval
        self.rng = rng or random.Random()
        self._limiters: dict[tuple[str, str], lim.AdaptiveLimiter] = {}
        self._pools: dict[str, EndpointPool] = {}
        self.pool_timing = pool_timing
        self._user_limits: dict[str, int] = {}
        self._provider_settings: dict[str, ProviderSettings] = {}
        self._tracker: RunStatsTracker | None = None
        self._redactor = Redactor.from_env()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: RunSession | None = None
        self._paused = False
        self._cancel_requested = False
        self._local = threading.local()

    # -- thread-safe controls ------------------------------------------------

    def _in_loop(self, fn: Callable[[], None]) -> None:
        with self._lock:
            loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(fn)
                return
            except RuntimeError:  # closed between the check and the call
                pass
        fn()

    def pause(self) -> None:
        """Stop starting requests; in-flight ones finish."""
        self._paused = True
        self._in_loop(lambda: self._session.set_paused(True) if self._session else None)

    def resume(self) -> None:
        self._paused = False
        self._in_loop(lambda: self._session.set_paused(False) if self._session else None)

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def cancel_requested(self) -> bool:
        """``cancel`` was called (for work outside ``run_items``: a batch stage's polling)."""
        return self._cancel_requested

    def cancel(self) -> None:
        """Stop the run: in-flight requests are abandoned, finished ones are committed."""
        self._cancel_requested = True
        self._in_loop(lambda: self._session.halt(RunStatus.CANCELLED) if self._session else None)

    def reset_controls(self) -> None:
        """Forget an earlier cancel / pause before starting a new run on this engine."""
        self._cancel_requested = False
        self._paused = False

    def set_limit(self, provider: str, n: int) -> None:
        """Set the concurrency limit of every endpoint of ``provider`` (configured name)."""

        def apply() -> None:
            self._user_limits[provider] = n
            for limiter in self._limiters.values():
                if limiter.name == provider:
                    limiter.set_limit(n)
            if provider in self._pools:
                self._pools[provider].wake()

        self._in_loop(apply)

    def limits(self) -> dict[str, int]:
        """Current limit per endpoint (``name`` or ``name@base_url``)."""
        return {
            (name if not url else f"{name}@{url}"): limiter.limit
            for (name, url), limiter in list(self._limiters.items())
        }

    # -- events --------------------------------------------------------------

    def emit(self, event: Event) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:  # a listener must never break a run
            log.exception("event listener failed on %s", type(event).__name__)

    def redact(self, text: str) -> str:
        return self._redactor.text(text)

    def _deps(self) -> SessionDeps:
        return SessionDeps(
            emit=self.emit,
            listening=self.on_event is not None,
            redact=self.redact,
            retry=self.retry,
            rng=self.rng,
            sleep=self.sleep,
            prices=self.prices,
            snapshot_interval=self.snapshot_interval,
            journal_interval=self.journal_interval,
        )

    def recorder(
        self, db: Store, run_id: int, *, budget_usd: float | None = None, quiet: bool = True
    ) -> RunSession:
        """A session that records outcomes arriving outside phase 2 (batch results).

        The caller queues rows with ``record(..., batch=True)`` / ``record_hit`` and
        flushes ``journal``; ``quiet`` sessions count nothing and emit no item events.
        """
        return RunSession(
            self._deps(), db, run_id, budget_usd, self.tracker(run_id, db), quiet=quiet
        )

    def tracker(self, run_id: int | None, db: Store) -> RunStatsTracker:
        """The stats of ``run_id``, kept across its stages; seeded from stored totals."""
        if self._tracker is None or self._tracker.run_id != run_id:
            tracker = RunStatsTracker(run_id)
            if run_id is not None:
                totals = db.run_totals(run_id)
                tracker.spent_usd = totals.cost_usd
                tracker.input_tokens = totals.input_tokens
                tracker.output_tokens = totals.output_tokens
            self._tracker = tracker
        return self._tracker

    # -- preparation ----------------------------------------------------------

    def _limiter(self, provider: Provider, ps: ProviderSettings) -> lim.AdaptiveLimiter:
        key = (provider.name, provider.base_url or "")
        limiter = self._limiters.get(key)
        if limiter is None:
            ceiling = min(ps.max_concurrency, self.concurrency or ps.max_concurrency)
            limiter = lim.AdaptiveLimiter(
                key,
                ceiling=ceiling,
                initial=ps.initial_concurrency,
                adaptive=ps.adaptive,
                rpm=ps.rpm,
                tpm=ps.tpm,
                on_change=self._limit_changed,
            )
            if provider.name in self._user_limits:
                limiter.set_limit(self._user_limits[provider.name], "user")
            self._limiters[key] = limiter
        return limiter

    def _pool(self, provider: Provider, ps: ProviderSettings) -> EndpointPool:
        """The endpoint pool of a provider with replicas (built once, kept across runs)."""
        pool = self._pools.get(provider.name)
        if pool is None:
            replicas = [Replica(r.base_url, r, self._limiter(r, ps)) for r in provider.replicas()]
            pool = EndpointPool(
                provider.name,
                replicas,
                affinity=ps.affinity,
                down_timeout_s=ps.pool_down_timeout_s,
                timing=self.pool_timing,
                on_health=self._replica_health,
                on_all_down=self._pool_stalled,
            )
            self._pools[provider.name] = pool
        return pool

    def _replica_health(self, pool: EndpointPool, change: HealthChange) -> None:
        session = self._session
        if session is not None:
            session.stats.dirty = True
            if not change.up:
                session.stats.error("replica_down", f"{change.endpoint}: {change.reason}")
        self.emit(
            ReplicaHealth(
                run_id=session.run_id if session else None,
                provider=change.provider,
                endpoint=change.endpoint,
                up=change.up,
                reason=change.reason,
            )
        )

    def _pool_stalled(self, pool: EndpointPool, stalled: bool) -> None:
        """Every replica down too long: pause the run (not fail it); resume when one is back."""
        session = self._session
        if stalled:
            message = (
                f"{pool.name}: every replica has been down for {pool.down_timeout_s:g}s; "
                "the run is paused and resumes when a probe finds one back"
            )
            log.warning("%s", message)
        else:
            message = f"{pool.name}: a replica is back; the run resumes"
        if session is not None and not self._paused:
            session.set_paused(stalled)
        self.emit(
            PoolStalled(
                run_id=session.run_id if session else None,
                provider=pool.name,
                stalled=stalled,
                message=message,
            )
        )

    def pool_health(self) -> dict[str, dict[str, bool]]:
        """Up (True) or down per replica URL, per pooled provider."""
        return {name: {r.url: r.up for r in pool.replicas} for name, pool in self._pools.items()}

    def _limit_changed(self, limiter: lim.AdaptiveLimiter, change: lim.LimitChange) -> None:
        session = self._session
        if session is not None:
            session.stats.dirty = True
        self.emit(
            LimitChanged(
                run_id=session.run_id if session else None,
                provider=limiter.name,
                limit=change.limit,
                reason=change.reason,
            )
        )

    def _settings_for(self, name: str) -> ProviderSettings:
        ps = self._provider_settings.get(name)
        if ps is None:
            try:
                ps = self.providers.settings_for(name)
            except ConfigError:  # an injected adapter with no settings entry: defaults
                ps = ProviderSettings(kind="openai-compatible")
            self._provider_settings[name] = ps
        return ps

    def prepare(
        self, model_ref: str, request: ModelRequest, sample_index: int, item: WorkItem | None
    ) -> Prepared:
        """Resolve provider, continuation and cache key (``ConfigError`` before any spend)."""
        provider, model = self.providers.resolve(model_ref)
        ps = self._settings_for(provider.name)
        if request.model != model:
            request = replace(request, model=model)
        continuation = provider.resolve_continuation(request)
        request_text = request_json_text(request)
        # a pool's logical provider has an empty base_url: any replica's answer is one entry
        key = hash_request_text(provider.name, provider.base_url or "", request_text, sample_index)
        pool = self._pool(provider, ps) if provider.replicas() else None
        return Prepared(
            item=item,
            model_ref=model_ref,
            provider=provider,
            settings=ps,
            request=request,
            request_text=request_text,
            key=key,
            continuation=continuation,
            limiter=pool.replicas[0].limiter if pool is not None else self._limiter(provider, ps),
            est_tokens=estimate_input_tokens(request) + request.max_tokens * max(1, request.n),
            pool=pool,
        )

    def check_prices(self, preps: Sequence[Prepared]) -> None:
        """A capped run refuses models without a price; fill in each worst case."""
        for ref in dict.fromkeys(p.model_ref for p in preps):
            if self.prices.price(ref) is None:
                raise ConfigError(
                    f"{ref}: no known price, so a run with a budget cap would spend blind; "
                    "add it under [pricing] in workbench.toml or remove budget_usd"
                )
        for p in preps:
            p.worst_usd = self.prices.cost(p.model_ref, worst_case_usage(p.request)) or 0.0

    def check_ready(self, preps: Sequence[Prepared]) -> None:
        """Every provider about to be called can run (keys present, model loadable)."""
        problems = []
        for provider in {p.provider.name: p.provider for p in preps}.values():
            try:
                provider.check_ready()
            except ConfigError as exc:
                problems.append(f"{provider.name}: {exc}")
        if problems:
            raise ConfigError("; ".join(problems))

    def preflight(self, plans: Sequence[CallPlan], *, budget_usd: float | None) -> None:
        """Check every call a run will make, later stages included, before the first one.

        One ``ConfigError`` line listing each problem: an unknown provider or model
        reference, a missing key, a continuation method the model cannot do, or (under
        a budget cap) a model without a price.
        """
        problems: list[str] = []
        ready: dict[str, str | None] = {}
        for plan in dict.fromkeys(plans):
            where = f"{plan.role} {plan.model_ref}"
            try:
                provider, model = self.providers.resolve(plan.model_ref)
                if plan.prefix:
                    probe = ModelRequest(model=model, prefix=" ", continuation=plan.continuation)
                    provider.resolve_continuation(probe)
                if provider.name not in ready:
                    try:
                        provider.check_ready()
                        ready[provider.name] = None
                    except ConfigError as exc:
                        ready[provider.name] = str(exc)
                if ready[provider.name] is not None:
                    raise ConfigError(ready[provider.name])
            except ConfigError as exc:
                problems.append(f"{where}: {exc}")
                continue
            if budget_usd is not None and self.prices.price(plan.model_ref) is None:
                problems.append(
                    f"{where}: no known price, so a run with a budget cap would spend blind; "
                    "add it under [pricing] in workbench.toml or remove budget_usd"
                )
        if problems:
            raise ConfigError("; ".join(dict.fromkeys(problems)))

    # -- running -----------------------------------------------------------------

    async def run_items(
        self,
        run_id: int,
        items: Sequence[WorkItem],
        *,
        budget_usd: float | None = None,
        later_usd: CostRange | None = None,
        later_point_usd: float = 0.0,
    ) -> RunEnd:
        """Run every unfinished item; say how it ended (done / failed / cancelled / budget).

        ``later_usd``: what the stages after these will cost (the caller projects them),
        so the live projection is spent + these items' + later stages' (``later_point_usd``
        is the point within that range).  Raises ``ConfigError`` (before any request) for
        an unsupported continuation, a missing key, or a capped run with an unpriced model.
        """
        with self._lock:
            self._loop = asyncio.get_running_loop()
        db = self.store.reopen()
        try:
            stages, preps = self._prepare_run(db, run_id, items, budget_usd)
            tracker = self.tracker(run_id, db)
            tracker.set_later(later_usd, later_point_usd)
            session = RunSession(self._deps(), db, run_id, budget_usd, tracker)
            self._session = session
            if self._paused:
                session.set_paused(True)
            if self._cancel_requested:
                session.halt(RunStatus.CANCELLED)
            with _gc_freeze:
                return await session.execute(stages, preps)
        finally:
            for pool in self._pools.values():
                pool.stop()  # probes belong to this loop; the next run starts its own
            self._session = None
            with self._lock:
                self._loop = None
            db.close()

    def _prepare_run(
        self, db: Store, run_id: int, items: Sequence[WorkItem], budget_usd: float | None
    ) -> tuple[dict[str, tuple[int, int]], list[Prepared]]:
        """Phase 1, before any spend: skip finished items, then continuation, cache, prices, keys."""
        done = db.done_item_keys(run_id) | out_in_batches(db, run_id)
        stages: dict[str, tuple[int, int]] = {}
        pending: list[WorkItem] = []
        seen: set[str] = set()
        for item in items:
            if item.key in seen:
                raise ConfigError(f"stage {item.stage}: duplicate work item key '{item.key}'")
            seen.add(item.key)
            total, already = stages.get(item.stage, (0, 0))
            if item.key in done:
                already += 1
            else:
                pending.append(item)
            stages[item.stage] = (total + 1, already)
        preps = [self.prepare(i.model_ref, i.request, i.sample_index, i) for i in pending]
        hits = find_cached(db, [p.key for p in preps])
        for p in preps:
            p.cached = hits.get(p.key)
        misses = [p for p in preps if p.cached is None]
        if budget_usd is not None and misses:
            self.check_prices(misses)
        if misses:
            self.check_ready(misses)
        return stages, preps

    async def call(
        self,
        model_ref: str,
        request: ModelRequest,
        *,
        run_id: int | None = None,
        sample_index: int = 0,
        item_key: str | None = None,
    ) -> CallResult:
        """One request outside a run's item list (previews, judges): cache, retries, journal."""
        db: Store | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self.store.reopen()
        p = self.prepare(model_ref, request, sample_index, None)
        session = RunSession(
            self._deps(), db, run_id, None, RunStatsTracker(run_id), quiet=True, item_key=item_key
        )
        p.cached = find_cached(db, [p.key]).get(p.key)
        if p.cached is not None:
            session.record_hit(p)
            session.journal.flush()
            return CallResult(
                call_id=session.last_call_id,
                status=CallStatus.OK,
                response=p.cached.to_response(),
                cost_usd=0.0,
                cache_hit=True,
                latency_ms=0.0,
                attempts=0,
                continuation=p.continuation,
            )
        self.check_ready([p])
        outcome = await session.attempts(p, await session.acquire(p))
        cost = session.record(p, outcome)
        session.journal.flush()
        error = outcome.error
        return CallResult(
            call_id=session.last_call_id,
            status=CallStatus.OK if error is None else CallStatus.ERROR,
            response=outcome.response,
            cost_usd=cost,
            cache_hit=False,
            latency_ms=outcome.latency_ms,
            attempts=outcome.attempts,
            continuation=p.continuation,
            error_kind=error.kind if error else None,
            error=outcome.message,
        )

    def close(self) -> None:
        """Close this thread's connection used by ``call``."""
        db: Store | None = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
