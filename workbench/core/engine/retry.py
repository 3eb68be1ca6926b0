"""How long to wait before trying a failed request again."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; ``Retry-After`` is a floor, within reason.

    A rate limit backs off from 0.5 s up to 8 s, as the OpenAI and Anthropic SDKs do.
    Other transient faults (a 5xx, a dropped connection, a malformed reply) are not a
    sign of load, so they start from 0.1 s: a run's time under scattered faults is the
    tail of its longest retry chain (bench/faults.py), and the limiter, not the backoff,
    is what slows a run down under congestion.
    """

    base_s: float = 0.5
    fault_base_s: float = 0.1
    cap_s: float = 8.0
    max_retry_after_s: float = 300.0

    def delay(
        self,
        attempt: int,
        retry_after: float | None,
        rng: random.Random,
        *,
        rate_limited: bool = True,
    ) -> float:
        base = self.base_s if rate_limited else min(self.base_s, self.fault_base_s)
        delay = rng.uniform(0.0, min(self.cap_s, base * 2 ** (attempt - 1)))
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after_s))
        return delay
