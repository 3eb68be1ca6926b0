"""How long to wait before trying a failed request again."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; ``Retry-After`` is a floor, within reason.

    From 0.5 s up to 8 s, as the OpenAI and Anthropic SDKs do: a run's time under
    scattered faults is the tail of its longest retry chain (bench/faults.py).
    """

    base_s: float = 0.5
    cap_s: float = 8.0
    max_retry_after_s: float = 300.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        delay = rng.uniform(0.0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after_s))
        return delay
