"""The dollar cap of a run: reserve a worst case before sending, settle after.

A request is sent only if ``spent + reserved + its worst case <= cap``.  The
worst case prices the input estimated from the request text (about four
characters per token) and the full ``max_tokens`` of output for each of the
``n`` completions.  Spend already in the store (a resumed run) counts.

The cap is approached, not stopped short of: when the next reservation does not
fit, the run waits for calls in flight to settle (their real cost is usually far
below the worst case) and tries again, so fewer calls run at once near the cap.
It stops only when nothing is in flight and even one call's worst case does not
fit.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from workbench.core.providers import ModelRequest, Usage


class Pricer(Protocol):
    """What the engine needs of ``pricing.PriceTable``."""

    def price(self, model_ref: str) -> object | None: ...

    def cost(self, model_ref: str, usage: Usage, *, batch: bool = False) -> float | None: ...


def request_chars(request: ModelRequest) -> int:
    chars = len(request.system or "") + len(request.prompt or "") + len(request.prefix or "")
    for m in request.messages:
        chars += len(m.content)
    for t in request.tools:
        chars += len(t.description) + len(str(t.parameters))
    return chars


def estimate_input_tokens(request: ModelRequest) -> int:
    return request_chars(request) // 4 + 1


def worst_case_usage(request: ModelRequest) -> Usage:
    return Usage(
        input_tokens=estimate_input_tokens(request),
        output_tokens=request.max_tokens * max(1, request.n),
    )


class Budget:
    """Spend and reservations against an optional cap (``None`` = no cap)."""

    def __init__(self, cap_usd: float | None, spent_usd: float = 0.0) -> None:
        self.cap = cap_usd
        self.spent = spent_usd
        self.reserved = 0.0
        self.in_flight = 0  # reservations not yet settled
        self.exhausted = False
        self._waiters: list[asyncio.Future[None]] = []

    def fits(self, worst_usd: float) -> bool:
        return self.cap is None or self.spent + self.reserved + worst_usd <= self.cap

    async def reserve(self, worst_usd: float) -> bool:
        """Reserve ``worst_usd``, waiting for settlements while calls are in flight.

        False (and ``exhausted``) only when nothing is in flight and it still
        does not fit: the cap is reached.
        """
        while not self.fits(worst_usd):
            if self.in_flight == 0:
                self.exhausted = True
                return False
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            finally:
                if fut in self._waiters:
                    self._waiters.remove(fut)
        self._take(worst_usd)
        return True

    def try_reserve(self, worst_usd: float) -> bool:
        """Reserve ``worst_usd``; False (and ``exhausted``) when it would pass the cap."""
        if self.cap is None:
            return True
        if not self.fits(worst_usd):
            self.exhausted = True
            return False
        self._take(worst_usd)
        return True

    def _take(self, worst_usd: float) -> None:
        self.in_flight += 1
        if self.cap is not None:
            self.reserved += worst_usd

    def settle(self, worst_usd: float, actual_usd: float | None) -> None:
        """Release a reservation and record what the call really cost."""
        self.in_flight = max(0, self.in_flight - 1)
        if self.cap is not None:
            self.reserved = max(0.0, self.reserved - worst_usd) if self.in_flight else 0.0
        if actual_usd is not None:
            self.spent += actual_usd
        waiters, self._waiters = self._waiters, []
        for fut in waiters:  # each re-checks whether its reservation fits now
            if not fut.done():
                fut.set_result(None)

    def message(self, worst_usd: float) -> str:
        """Why the run stopped: the cap, the real spend, and what the next call needed."""
        cap = self.cap or 0.0
        return (
            f"budget ${cap:.2f}{'' if cap >= 0.01 else f' (${cap:.4f})'} reached: spent ${self.spent:.4f}, and the next call "
            f"could cost up to ${worst_usd:.4f}; raise the budget and resume to finish "
            "(workbench run --resume RUN_ID --budget USD)"
        )
