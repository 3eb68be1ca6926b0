"""The dollar cap of a run: reserve a worst case before sending, settle after.

A request is sent only if ``spent + reserved + its worst case <= cap``.  The
worst case prices the input estimated from the request text (about four
characters per token) and the full ``max_tokens`` of output for each of the
``n`` completions.  Spend already in the store (a resumed run) counts.
"""

from __future__ import annotations

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
        self.exhausted = False

    def try_reserve(self, worst_usd: float) -> bool:
        """Reserve ``worst_usd``; False (and ``exhausted``) when it would pass the cap."""
        if self.cap is None:
            return True
        if self.spent + self.reserved + worst_usd > self.cap:
            self.exhausted = True
            return False
        self.reserved += worst_usd
        return True

    def settle(self, worst_usd: float, actual_usd: float | None) -> None:
        """Release a reservation and record what the call really cost."""
        if self.cap is not None:
            self.reserved = max(0.0, self.reserved - worst_usd)
        if actual_usd is not None:
            self.spent += actual_usd
