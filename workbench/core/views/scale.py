"""Read models for a run's scale-out, as the monitor shows them: its provider batches
(or batch files) with their item counts, and the replicas of its endpoint pools."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from workbench.core.batch import run_batches
from workbench.core.engine import ReplicaStats, RunStats
from workbench.core.status import BatchItemState, BatchState
from workbench.core.store import Store

#: batch states whose items the provider (or a GPU node) holds: in flight
_AT_PROVIDER = frozenset({BatchState.SUBMITTED, BatchState.ENDED, BatchState.AMBIGUOUS})


@dataclass(frozen=True)
class BatchLine:
    """One batch of a run, for the monitor's batch table."""

    id: int
    provider: str  # "file" for batch files
    remote_id: str | None  # the provider's id, or the shard file
    status: str  # the provider's word while it holds the batch, else the local state
    stage: str
    model: str
    n_items: int
    out: int  # items whose result is not recorded yet
    done: int
    errors: int
    requeued: int
    created_at: str
    expires_at: str | None
    open: bool  # its items are out; cancel applies
    cancel_requested: bool


@dataclass(frozen=True)
class BatchTotals:
    """A run's batch items: waiting to go out, out, and back."""

    queued: int  # committed but not at the provider yet, or waiting to go out again
    in_flight: int
    done: int
    errored: int
    oldest_open_age_s: float | None  # the oldest batch still open


@dataclass(frozen=True)
class BatchesView:
    lines: tuple[BatchLine, ...]
    totals: BatchTotals


NO_BATCHES = BatchesView((), BatchTotals(0, 0, 0, 0, None))


def batches_view(store: Store, run_id: int, *, now: float | None = None) -> BatchesView:
    """The run's batches and their item counts (empty for a run that never batched)."""
    batches = run_batches(store, run_id)
    if not batches:
        return NO_BATCHES
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for batch_id, state, n in store.conn.execute(
        "SELECT batch_id, state, COUNT(*) FROM batch_items WHERE run_id=? GROUP BY 1, 2",
        (run_id,),
    ):
        counts[int(batch_id)][str(state)] = int(n)
    # an item requeued from a batch and since sent again counts once, where it is now
    waiting = int(
        store.scalar(
            "SELECT COUNT(DISTINCT item_key) FROM batch_items b WHERE run_id=? AND state=?"
            " AND NOT EXISTS (SELECT 1 FROM batch_items o WHERE o.run_id=b.run_id"
            " AND o.item_key=b.item_key AND o.attempt>b.attempt)",
            (run_id, BatchItemState.REQUEUED.value),
        )
        or 0
    )
    lines, queued, in_flight, oldest = [], waiting, 0, None
    clock = time.time() if now is None else now
    for b in batches:
        c = counts.get(b.id, {})
        out = c.get(BatchItemState.OUT.value, 0)
        remote = b.meta.get("remote_status")
        status = b.status.value
        if isinstance(remote, str) and remote and b.status is BatchState.SUBMITTED:
            status = remote  # the provider's own word says more while it holds the batch
        if b.status.open:
            if b.status in _AT_PROVIDER:
                in_flight += out
            else:
                queued += out
            age = clock - float(b.meta.get("created_at") or b.prepared_at or clock)
            oldest = age if oldest is None else max(oldest, age)
        lines.append(
            BatchLine(
                id=b.id,
                provider=b.provider,
                remote_id=b.remote_id or b.meta.get("file"),
                status=status,
                stage=b.stage,
                model=b.model,
                n_items=b.n_items,
                out=out,
                done=c.get(BatchItemState.DONE.value, 0),
                errors=c.get(BatchItemState.ERROR.value, 0),
                requeued=c.get(BatchItemState.REQUEUED.value, 0),
                created_at=b.created_at,
                expires_at=b.meta.get("expires_at"),
                open=b.status.open,
                cancel_requested=bool(b.meta.get("cancel_requested")),
            )
        )
    done = sum(line.done for line in lines)
    errored = sum(line.errors for line in lines)
    return BatchesView(tuple(lines), BatchTotals(queued, in_flight, done, errored, oldest))


@dataclass(frozen=True)
class ReplicaLine:
    """One replica of an endpoint pool, for the monitor."""

    provider: str
    endpoint: str
    up: bool
    in_flight: int
    limit: int
    requests_per_s: float | None  # None until two snapshots
    latency_p50_ms: float | None
    errors: int


def replica_lines(current: RunStats, previous: RunStats | None = None) -> tuple[ReplicaLine, ...]:
    """``current``'s replicas, req/s from the answers served since ``previous``."""
    before: dict[tuple[str, str], ReplicaStats] = {}
    span = 0.0
    if previous is not None:
        before = {(r.provider, r.endpoint): r for r in previous.replicas}
        span = current.elapsed_s - previous.elapsed_s
    return tuple(_line(r, before.get((r.provider, r.endpoint)), span) for r in current.replicas)


def _line(r: ReplicaStats, before: ReplicaStats | None, span: float) -> ReplicaLine:
    rate = None
    if before is not None and span > 0:
        rate = max(0, r.served - before.served) / span
    return ReplicaLine(
        r.provider, r.endpoint, r.up, r.in_flight, r.limit, rate, r.latency_p50_ms, r.errors
    )
