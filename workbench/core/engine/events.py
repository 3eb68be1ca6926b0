"""Engine events: what the engine tells its listeners (CLI, TUI, tests).

Listeners receive immutable events and never touch the engine's state; the
coalesced ``RunStats`` snapshot is what screens render.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# -- events ---------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    run_id: int | None


@dataclass(frozen=True)
class StageStarted(Event):
    stage: str
    total: int  # items in the stage
    already_done: int  # finished before (resume / cache of journal)


@dataclass(frozen=True)
class ItemFinished(Event):
    key: str
    stage: str
    status: str  # done / error
    cost_usd: float | None
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cache_hit: bool
    error_kind: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class RetryScheduled(Event):
    key: str
    provider: str
    attempt: int
    delay_s: float
    error_kind: str
    error: str


@dataclass(frozen=True)
class LimitChanged(Event):
    provider: str
    limit: int
    reason: str  # "429 backoff" / "recovery" / "growth" / "user"


@dataclass(frozen=True)
class ReplicaHealth(Event):
    """A replica of an endpoint pool went down or came back."""

    provider: str
    endpoint: str
    up: bool
    reason: str


@dataclass(frozen=True)
class PoolStalled(Event):
    """Every replica of a pool has been down for ``pool_down_timeout_s``: the run is paused
    (``stalled``) until a probe finds one back (``stalled=False``, the run resumes)."""

    provider: str
    stalled: bool
    message: str


@dataclass(frozen=True)
class StageFinished(Event):
    stage: str


@dataclass(frozen=True)
class RunFinished(Event):
    status: str  # done / failed / cancelled / stopped: budget
    error: str | None = None


@dataclass(frozen=True)
class StageProgress:
    total: int = 0
    done: int = 0
    errors: int = 0


@dataclass(frozen=True)
class CostRange:
    """A projected cost: ``low`` (mean output of earlier calls, or input alone without
    history) to ``high`` (every request at its ``max_tokens``)."""

    low: float = 0.0
    high: float = 0.0


@dataclass(frozen=True)
class ReplicaStats:
    """One replica of an endpoint pool, for the monitor (req/s: ``served`` between two
    snapshots over their ``elapsed_s``)."""

    provider: str
    endpoint: str
    up: bool
    in_flight: int
    limit: int
    served: int  # ok answers
    errors: int  # connection errors, timeouts, 5xx, malformed bodies
    latency_p50_ms: float | None


@dataclass(frozen=True)
class RunStats(Event):
    """A coalesced snapshot, published at most every ``snapshot_interval`` seconds.

    Screens and the CLI render this; individual events are for logs and tests.
    """

    elapsed_s: float = 0.0
    stages: Mapping[str, StageProgress] = field(default_factory=dict)
    spent_usd: float = 0.0
    unpriced_calls: int = 0
    # spent + the current stage's remaining items at their mean cost so far + later
    # stages (their point: history's mean when there is one, else their upper bound)
    projected_usd: float | None = None  # None while nothing is known
    projected_low_usd: float | None = None  # the same with later stages at their low end
    projected_high_usd: float | None = None  # ... and at their upper bound
    budget_usd: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    requests_per_s: float = 0.0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_max_ms: float | None = None
    # the longest-running attempt still in flight (a hung call is slow before it ends)
    oldest_in_flight_ms: float | None = None
    recent_latencies_ms: tuple[float, ...] = ()  # for a sparkline
    in_flight: int = 0
    limit: int = 0  # current concurrency limit (sum over providers in use)
    retries: int = 0
    errors_by_kind: Mapping[str, int] = field(default_factory=dict)
    last_error: str | None = None
    refusals: int = 0
    cache_hits: int = 0
    eta_s: float | None = None
    paused: bool = False
    replicas: tuple[ReplicaStats, ...] = ()  # endpoint pools in use, one per replica
