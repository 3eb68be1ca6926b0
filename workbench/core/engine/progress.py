"""Live counters for a run, turned into coalesced ``RunStats`` snapshots.

The engine updates the counters as items commit (cheap integer maths only);
``snapshot()`` does the sorting for percentiles and is called at most every
``interval`` seconds by the engine's ticker, plus once at the end.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable

from workbench.core.engine.events import CostRange, RunStats, StageProgress

RECENT = 2048  # latencies kept for percentiles
SPARK = 60  # latencies shown in the sparkline


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


class RunStatsTracker:
    """Counters for one run; see the module docstring."""

    def __init__(self, run_id: int | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.run_id = run_id
        self._clock = clock
        self.started = clock()
        self.stages: dict[str, list[int]] = {}  # stage -> [total, done, errors]
        self.spent_usd = 0.0
        self.unpriced_calls = 0
        self.budget_usd: float | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.latencies: deque[float] = deque(maxlen=RECENT)
        self.sent = 0  # items answered by a provider (not cache) in this session
        self.sent_cost = 0.0
        self.retries = 0
        self.errors_by_kind: Counter[str] = Counter()
        self.last_error: str | None = None
        self.refusals = 0
        self.cache_hits = 0
        self.in_flight = 0
        self.limit = 0
        self.paused = False
        self.to_send = 0  # items of the current stage not yet finished
        # later stages' projected cost (the runner sizes them from this stage's items)
        self.later: CostRange | None = None
        self.later_point = 0.0
        self._attempts: dict[int, float] = {}  # attempt token -> when it was sent
        self._attempt_seq = 0
        self._done_times: deque[float] = deque(maxlen=512)
        self.dirty = True

    def set_later(self, later: CostRange | None, point: float = 0.0) -> None:
        """Later stages' projected cost (``point`` within it); None: nothing after this."""
        self.later, self.later_point = later, point
        self.dirty = True

    def start_stage(self, stage: str, total: int, already_done: int) -> None:
        counts = self.stages.setdefault(stage, [0, 0, 0])
        counts[0] = total
        counts[1] = already_done
        counts[2] = 0
        self.to_send += total - already_done  # run_items may hold several stages
        self.dirty = True

    def item_done(
        self,
        stage: str,
        *,
        ok: bool,
        cost: float | None,
        input_tokens: int,
        output_tokens: int,
        latency_ms: float,
        cache_hit: bool,
    ) -> None:
        counts = self.stages.setdefault(stage, [0, 0, 0])
        counts[1] += 1
        if not ok:
            counts[2] += 1
        self.to_send = max(0, self.to_send - 1)
        self._done_times.append(self._clock())
        if cache_hit:
            self.cache_hits += 1
        else:
            self.input_tokens += input_tokens
            self.output_tokens += output_tokens
            if ok:
                self.sent += 1
                self.latencies.append(latency_ms)
                if cost is None:
                    self.unpriced_calls += 1
                else:
                    self.spent_usd += cost
                    self.sent_cost += cost
        self.dirty = True

    def attempt_started(self) -> int:
        """An attempt was sent; the token ends it (``attempt_ended``)."""
        self._attempt_seq += 1
        self._attempts[self._attempt_seq] = self._clock()
        return self._attempt_seq

    def attempt_ended(self, token: int) -> None:
        self._attempts.pop(token, None)

    def error(self, kind: str, message: str) -> None:
        self.errors_by_kind[kind] += 1
        self.last_error = message
        if kind == "refusal":
            self.refusals += 1
        self.dirty = True

    def _rate(self) -> float:
        """Items per second over the recent window (or the whole run when short)."""
        times = self._done_times
        if len(times) < 2:
            return 0.0
        span = times[-1] - times[0]
        return (len(times) - 1) / span if span > 0 else 0.0

    def snapshot(self) -> RunStats:
        self.dirty = False
        lat = sorted(self.latencies)
        rate = self._rate()
        priced = self.sent - self.unpriced_calls
        projected = low = high = None
        if priced > 0:
            projected = self.spent_usd + self.sent_cost / priced * self.to_send
            low = high = projected
            if self.later is not None:
                low, high = projected + self.later.low, projected + self.later.high
                projected += self.later_point
        now = self._clock()
        oldest = min(self._attempts.values(), default=None)
        return RunStats(
            run_id=self.run_id,
            elapsed_s=now - self.started,
            stages={k: StageProgress(*v) for k, v in self.stages.items()},
            spent_usd=self.spent_usd,
            unpriced_calls=self.unpriced_calls,
            projected_usd=projected,
            projected_low_usd=low,
            projected_high_usd=high,
            budget_usd=self.budget_usd,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            requests_per_s=rate,
            latency_p50_ms=percentile(lat, 0.5) if lat else None,
            latency_p95_ms=percentile(lat, 0.95) if lat else None,
            latency_max_ms=lat[-1] if lat else None,
            oldest_in_flight_ms=(now - oldest) * 1000.0 if oldest is not None else None,
            recent_latencies_ms=tuple(list(self.latencies)[-SPARK:]),
            in_flight=self.in_flight,
            limit=self.limit,
            retries=self.retries,
            errors_by_kind=dict(self.errors_by_kind),
            last_error=self.last_error,
            refusals=self.refusals,
            cache_hits=self.cache_hits,
            eta_s=(self.to_send / rate) if rate > 0 and self.to_send else None,
            paused=self.paused,
        )
