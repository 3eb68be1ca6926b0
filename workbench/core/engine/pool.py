"""Endpoint pools: one logical OpenAI-compatible provider served by several replicas.

Each replica has its own AIMD limiter (keyed by its URL) and health.  A request
goes to the healthy replica with the fewest outstanding requests among those
with a free slot (ties rotate, so equal replicas share evenly); with
``affinity = "problem"`` the replica that wins rendezvous hashing of the item's
problem id is tried first, so every continuation of one prefix reaches one
replica's prefix cache while it is healthy and has room.

Health: ``DOWN_AFTER`` consecutive connection errors, timeouts or 5xx mark a
replica down; the attempts still in flight on it are cut short (their
``asyncio.timeout`` is moved to now) and retried elsewhere under the normal
attempt cap.  A down replica is probed (``GET {base}/models``) after 10 s,
doubling to 5 min, and returns on the first success.  When every replica has
been down for ``pool_down_timeout_s`` the pool calls ``on_all_down`` (the
engine pauses the run with an event) and resumes it when one returns.

All methods run on the event loop thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from workbench.core.engine import limiter as lim
from workbench.core.engine.events import ReplicaStats
from workbench.core.errors import ErrorKind, ProviderError
from workbench.core.providers import Provider

log = logging.getLogger(__name__)

#: consecutive replica-side failures that mark a replica down
DOWN_AFTER = 5
#: failures that say something about the replica rather than the request
REPLICA_FAULTS = frozenset(
    {ErrorKind.CONNECTION, ErrorKind.TIMEOUT, ErrorKind.SERVER, ErrorKind.MALFORMED}
)


@dataclass(frozen=True)
class PoolTiming:
    """Probe backoff (first delay, cap) in seconds; tests shorten it."""

    probe_first_s: float = 10.0
    probe_cap_s: float = 300.0
    probe_timeout_s: float = 10.0


@dataclass(eq=False)
class Replica:
    """One URL of a pool: its adapter, limiter and health."""

    url: str
    provider: Provider
    limiter: lim.AdaptiveLimiter
    up: bool = True
    failures: int = 0  # consecutive replica-side failures
    served: int = 0
    errors: int = 0
    probe: asyncio.Task[None] | None = None
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=200))
    #: the timeouts of attempts in flight here, cut short when the replica goes down
    cutters: set[asyncio.Timeout] = field(default_factory=set)


@dataclass(slots=True)
class Slot:
    """A taken concurrency slot: where the attempt goes, and what to release."""

    provider: Provider
    limiter: lim.AdaptiveLimiter
    epoch: int
    replica: Replica | None = None

    @property
    def endpoint(self) -> str | None:
        return self.replica.url if self.replica is not None else None


@dataclass(frozen=True)
class HealthChange:
    """A replica went down or came back, and why."""

    provider: str
    endpoint: str
    up: bool
    reason: str


def rendezvous(key: str, urls: list[str]) -> int:
    """Index of the URL with the highest hash of (key, url): stable as replicas come and go."""
    best, best_score = 0, b""
    for i, url in enumerate(urls):
        score = hashlib.blake2b(f"{key}\x00{url}".encode(), digest_size=8).digest()
        if score > best_score:
            best, best_score = i, score
    return best


class EndpointPool:
    """The replicas of one provider; see the module docstring."""

    def __init__(
        self,
        name: str,
        replicas: list[Replica],
        *,
        affinity: str = "none",
        down_timeout_s: float = 600.0,
        timing: PoolTiming | None = None,
        on_health: Callable[[EndpointPool, HealthChange], None] | None = None,
        on_all_down: Callable[[EndpointPool, bool], None] | None = None,
    ) -> None:
        self.name = name
        self.replicas = replicas
        self.urls = [r.url for r in replicas]
        self.affinity = affinity
        self.down_timeout_s = down_timeout_s
        self.timing = timing or PoolTiming()
        self.on_health = on_health
        self.on_all_down = on_all_down
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._turn = 0  # rotates the tie-break among equally loaded replicas
        self._all_down_timer: asyncio.TimerHandle | None = None
        self.stalled = False  # on_all_down(True) was called and not yet undone

    # -- slots -----------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return sum(r.limiter.in_flight for r in self.replicas)

    @property
    def limit(self) -> int:
        return sum(r.limiter.limit for r in self.replicas if r.up)

    def stats(self) -> tuple[ReplicaStats, ...]:
        return tuple(
            ReplicaStats(
                provider=self.name,
                endpoint=r.url,
                up=r.up,
                in_flight=r.limiter.in_flight,
                limit=r.limiter.limit,
                served=r.served,
                errors=r.errors,
                latency_p50_ms=statistics.median(r.latencies) if r.latencies else None,
            )
            for r in self.replicas
        )

    def others_up(self, replica: Replica | None) -> bool:
        return any(r.up and r is not replica for r in self.replicas)

    def _pick(self, affinity_key: str | None, avoid: Replica | None) -> Replica | None:
        free = [r for r in self.replicas if r.up and r.limiter.in_flight < r.limiter.limit]
        if avoid is not None and len(free) > 1:
            free = [r for r in free if r is not avoid] or free
        if not free:
            return None
        if affinity_key is not None and self.affinity == "problem":
            preferred = self.replicas[rendezvous(affinity_key, self.urls)]
            if preferred in free and preferred is not avoid:
                return preferred
        n = len(self.replicas)
        self._turn = (self._turn + 1) % n
        turn = self._turn
        return min(
            free,
            key=lambda r: (r.limiter.in_flight, (self.replicas.index(r) - turn) % n),
        )

    async def acquire(
        self, tokens: float, affinity_key: str | None = None, avoid: Replica | None = None
    ) -> Slot:
        """Wait for a slot on a healthy replica (least outstanding, affinity first)."""
        self._ensure_probes()
        woken = False
        while True:
            if woken or not self._waiters:  # first in line: take a free slot if there is one
                replica = self._pick(affinity_key, avoid)
                if replica is not None:
                    epoch = await replica.limiter.acquire(tokens)  # a free slot: no wait
                    self._wake()  # chain: a waiter behind us may fit too
                    return Slot(replica.provider, replica.limiter, epoch, replica)
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                else:
                    self._wake()  # pass our wake-up on
                raise
            woken = True

    def _wake(self) -> None:
        """Wake the oldest waiter if some healthy replica has a free slot."""
        if not self._waiters:
            return
        if any(r.up and r.limiter.in_flight < r.limiter.limit for r in self.replicas):
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    def release(self, slot: Slot, outcome: str, kind: ErrorKind | None = None) -> None:
        """Give a slot back; count the outcome towards the replica's health."""
        replica = slot.replica
        slot.limiter.release(slot.epoch, outcome)
        if replica is not None:
            if outcome == lim.OK:
                replica.failures = 0
                replica.served += 1
            elif kind is not None and kind in REPLICA_FAULTS:
                replica.errors += 1
                replica.failures += 1
                if replica.up and replica.failures >= DOWN_AFTER:
                    self.mark_down(replica, f"{replica.failures} failures in a row ({kind.value})")
            elif outcome != lim.UNUSED:
                replica.failures = 0  # the replica answered (a 4xx, a 429): it is alive
        self._wake()

    def wake(self) -> None:
        """Limits changed (``set_limit``): let waiters re-check."""
        self._wake()

    # -- health ----------------------------------------------------------------

    def mark_down(self, replica: Replica, reason: str) -> None:
        replica.up = False
        log.warning("%s: replica %s down: %s", self.name, replica.url, reason)
        loop = asyncio.get_running_loop()
        for cutter in list(replica.cutters):  # in-flight attempts: retry them elsewhere now
            if not cutter.expired():
                cutter.reschedule(loop.time())
        self._start_probe(replica)
        if self.on_health is not None:
            self.on_health(self, HealthChange(self.name, replica.url, False, reason))
        if not self.others_up(None):
            self._all_down_timer = loop.call_later(self.down_timeout_s, self._still_all_down)
        self._wake()

    def mark_up(self, replica: Replica) -> None:
        replica.up, replica.failures = True, 0
        if self._all_down_timer is not None:
            self._all_down_timer.cancel()
            self._all_down_timer = None
        if self.on_health is not None:
            self.on_health(self, HealthChange(self.name, replica.url, True, "probe answered"))
        if self.stalled:
            self.stalled = False
            if self.on_all_down is not None:
                self.on_all_down(self, False)
        # a replica back up frees up to its limit: wake that many waiters
        for _ in range(replica.limiter.limit):
            self._wake()

    def _still_all_down(self) -> None:
        self._all_down_timer = None
        if not self.others_up(None) and not self.stalled:
            self.stalled = True
            if self.on_all_down is not None:
                self.on_all_down(self, True)

    def _ensure_probes(self) -> None:
        for replica in self.replicas:
            if not replica.up and (replica.probe is None or replica.probe.done()):
                self._start_probe(replica)

    def _start_probe(self, replica: Replica) -> None:
        if replica.probe is None or replica.probe.done():
            replica.probe = asyncio.get_running_loop().create_task(self._probe(replica))

    async def _probe(self, replica: Replica) -> None:
        delay = self.timing.probe_first_s
        while not replica.up:
            await asyncio.sleep(delay)
            try:
                await replica.provider.probe(self.timing.probe_timeout_s)
            except (ProviderError, TimeoutError, OSError) as exc:
                log.info("%s: probe of %s failed: %s", self.name, replica.url, exc)
                delay = min(delay * 2, self.timing.probe_cap_s)
                continue
            self.mark_up(replica)

    def stop(self) -> None:
        """Stop probing (the run ended); a later run starts probes again."""
        for replica in self.replicas:
            if replica.probe is not None:
                replica.probe.cancel()
                replica.probe = None
        if self._all_down_timer is not None:
            self._all_down_timer.cancel()
            self._all_down_timer = None
