"""The durable journal: calls + samples rows written in batched transactions.

Finished items queue here; every ``interval`` seconds (or once ``max_rows``
are waiting) the queue is written in one ``BEGIN IMMEDIATE`` transaction, and
only after the commit are the items' callbacks run (an item is counted only
once it is on disk).  A call and its sample always land in the same
transaction, so a run killed at any moment has either both or neither.

Call ids are assigned inside the write transaction (``MAX(id)`` + n, safe while
the write lock is held) so the rows go in with two ``executemany`` statements
instead of one round trip per row.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from workbench.core.engine.records import (
    CALL_COLUMNS,
    SAMPLE_COLUMNS,
    CallRecord,
    SampleRecord,
)
from workbench.core.store import Store

_INSERT_CALLS = (
    f"INSERT INTO calls (id,{','.join(CALL_COLUMNS)}) "
    f"VALUES ({','.join('?' * (len(CALL_COLUMNS) + 1))})"
)
# A re-run item (an errored one, retried) replaces its sample in place, keeping its id;
# the old error call stays in `calls` for the record.
_UPSERT_SAMPLES = (
    f"INSERT INTO samples ({','.join(SAMPLE_COLUMNS)},call_id) "
    f"VALUES ({','.join('?' * (len(SAMPLE_COLUMNS) + 1))}) "
    "ON CONFLICT(run_id, item_key) DO UPDATE SET "
    + ",".join(
        f"{c}=excluded.{c}"
        for c in (*SAMPLE_COLUMNS, "call_id")
        if c not in ("run_id", "item_key", "created_at")
    )
)

OnCommit = Callable[[int], None]


class Journal:
    """Batches rows for one store connection (the engine thread's)."""

    def __init__(self, store: Store, *, interval: float = 0.05, max_rows: int = 256) -> None:
        self.store = store
        self.interval = interval
        self.max_rows = max_rows
        self._pending: list[tuple[CallRecord, SampleRecord | None, OnCommit | None]] = []
        self.rows_written = 0
        self.commits = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(
        self,
        call: CallRecord,
        sample: SampleRecord | None = None,
        on_commit: OnCommit | None = None,
    ) -> None:
        """Queue one outcome; flushes at once when the batch is full."""
        self._pending.append((call, sample, on_commit))
        if len(self._pending) >= self.max_rows:
            self.flush()

    def flush(self) -> None:
        """Write everything queued in one transaction, then run the callbacks."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            with self.store.transaction() as conn:
                base = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM calls").fetchone()[0])
                calls = [(base + i, *c.values()) for i, (c, _, _) in enumerate(batch, start=1)]
                samples = [
                    (*s.values(), base + i)
                    for i, (_, s, _) in enumerate(batch, start=1)
                    if s is not None
                ]
                conn.executemany(_INSERT_CALLS, calls)
                if samples:
                    conn.executemany(_UPSERT_SAMPLES, samples)
        except BaseException:
            self._pending = batch + self._pending  # keep them for a later attempt
            raise
        self.rows_written += len(batch)
        self.commits += 1
        for i, (_, _, on_commit) in enumerate(batch, start=1):
            if on_commit is not None:
                on_commit(base + i)

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every ``interval`` until ``stop`` is set, then a final flush."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
            self.flush()
        self.flush()
