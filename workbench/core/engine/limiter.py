"""Per-endpoint concurrency limiter: AIMD on 429 episodes, optional rpm/tpm caps.

One ``AdaptiveLimiter`` per (provider name, base URL).  The limit halves once
per rate-limit *episode*, as TCP does once per round trip: every slot remembers
the epoch it was taken in, and only a 429 on a slot from the current epoch can
halve the limit (429s from requests already in flight when we backed off belong
to the same episode); after a halving, further 429s within ``cooldown_s`` are
the same episode too (retries of the burst's own requests, scattered 429s of a
busy server).  A 429's ``Retry-After`` delays that request only (the engine's
retry), never the window.

Recovery is fast: below the limit the last halving started from, every
success adds one (the window doubles per round, like slow start) until it is
back; above it, a clean round (``limit`` successes without a 429 or error)
adds one, up to the ceiling.  Server errors and timeouts neither shrink nor
grow it.

Slots are handed over directly to the oldest waiter on release, so the limit
is never overshot and waiters are served in order.  All methods run on the
event loop thread; the engine marshals cross-thread calls (``set_limit``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

#: what happened to the request a slot was used for
OK, RATE_LIMITED, FAILED, UNUSED = "ok", "rate_limited", "failed", "unused"


class TokenBucket:
    """``per_minute`` units, refilled continuously; a burst of up to one minute's worth."""

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.tokens = self.capacity
        self._clock = clock
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._at) * self.rate)
        self._at = now

    def shortfall_s(self, n: float) -> float:
        """Seconds until ``n`` units are available (0 if they are now)."""
        self._refill()
        n = min(n, self.capacity)
        return 0.0 if self.tokens >= n else (n - self.tokens) / self.rate

    def take(self, n: float) -> None:
        self.tokens -= min(n, self.capacity)

    def give_back(self, n: float) -> None:
        self.tokens = min(self.capacity, self.tokens + n)


@dataclass(frozen=True)
class LimitChange:
    limit: int
    reason: str


class AdaptiveLimiter:
    """Concurrency slots for one endpoint; see the module docstring."""

    def __init__(
        self,
        key: tuple[str, str],
        *,
        ceiling: int,
        initial: int | None = None,
        adaptive: bool = True,
        rpm: int | None = None,
        tpm: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[AdaptiveLimiter, LimitChange], None] | None = None,
        cooldown_s: float = 2.0,
    ) -> None:
        self.key = key
        self.ceiling = max(1, ceiling)
        self.limit = max(1, min(initial or self.ceiling, self.ceiling))
        self.adaptive = adaptive
        self.in_flight = 0
        self.epoch = 0
        self._clean = 0
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._calm_at = float("-inf")  # before this time a 429 belongs to the last episode
        self._recover_to = 0  # the limit the last halving started from
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._rpm = TokenBucket(rpm, clock) if rpm else None
        self._tpm = TokenBucket(tpm, clock) if tpm else None
        self._on_change = on_change

    @property
    def name(self) -> str:
        return self.key[0]

    async def acquire(self, tokens: float = 0.0) -> int:
        """Wait for a slot (and rpm/tpm room); return the epoch to pass to ``release``."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
        else:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut  # the releaser counted our slot in in_flight already
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._free_slot()
                elif fut in self._waiters:
                    self._waiters.remove(fut)
                raise
        epoch = self.epoch
        if self._rpm is not None or self._tpm is not None:
            try:
                await self._wait_for_rate(tokens)
            except asyncio.CancelledError:
                self._free_slot()
                raise
        return epoch

    async def _wait_for_rate(self, tokens: float) -> None:
        while True:
            wait = max(
                self._rpm.shortfall_s(1) if self._rpm else 0.0,
                self._tpm.shortfall_s(tokens) if self._tpm else 0.0,
            )
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        if self._rpm:
            self._rpm.take(1)
        if self._tpm:
            self._tpm.take(tokens)

    def settle_tokens(self, estimated: float, actual: float) -> None:
        """Correct the tpm bucket once the real usage is known."""
        if self._tpm is not None and actual < estimated:
            self._tpm.give_back(estimated - actual)

    def release(self, epoch: int, outcome: str) -> None:
        """Give the slot back and adapt the limit to how the request went."""
        if self.adaptive:
            if outcome == RATE_LIMITED:
                self._clean = 0
                now = self._clock()
                if epoch == self.epoch and now >= self._calm_at:  # a new episode
                    self.epoch += 1
                    self._calm_at = now + self.cooldown_s
                    self._recover_to = max(self._recover_to, self.limit)
                    self._change(max(1, self.limit // 2), "429 backoff")
            elif outcome == OK:
                if self.limit < min(self._recover_to, self.ceiling):
                    self._change(self.limit + 1, "recovery")  # back to where it was, fast
                else:
                    self._recover_to = 0
                    self._clean += 1
                    if self._clean >= self.limit and self.limit < self.ceiling:
                        self._clean = 0
                        self._change(self.limit + 1, "growth")
            elif outcome == FAILED:
                self._clean = 0  # not clean, but never a reason to shrink
        self._free_slot()

    def set_limit(self, n: int, reason: str = "user") -> None:
        """Set the limit by hand; it becomes the ceiling too (growth stops there)."""
        n = max(1, n)
        self.ceiling = n
        self._clean = 0
        self._recover_to = 0
        self._change(n, reason)
        self._wake()

    def _change(self, limit: int, reason: str) -> None:
        if limit == self.limit:
            return
        self.limit = limit
        if self._on_change is not None:
            self._on_change(self, LimitChange(limit, reason))

    def _free_slot(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            fut = self._waiters.popleft()
            if not fut.done():
                self.in_flight += 1
                fut.set_result(None)
