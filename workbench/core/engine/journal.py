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
import hashlib
import zlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from workbench.core.engine import records
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

_INSERT_BLOBS = "INSERT OR IGNORE INTO blobs (hash, data) VALUES (?, ?)"
#: request JSON longer than this is stored once in ``blobs`` (k samples of one prompt and
#: every cache hit share it), zlib-compressed; shorter requests stay inline
BLOB_MIN_CHARS = 1024
_REQUEST = CALL_COLUMNS.index("request")
_RESPONSE_TEXT = CALL_COLUMNS.index("response_text")
_REQUEST_BLOB = CALL_COLUMNS.index("request_blob")
_RECENT_BLOBS = 512  # requests written lately (k samples of a prompt): not compressed again

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
        self._recent: OrderedDict[str, str] = OrderedDict()  # request text -> its hash

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
                blobs: dict[str, bytes] = {}
                calls = [
                    (base + i, *self._call_values(c, s, blobs))
                    for i, (c, s, _) in enumerate(batch, start=1)
                ]
                if blobs:
                    conn.executemany(_INSERT_BLOBS, blobs.items())
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
            self._recent.clear()  # their blobs were rolled back too
            raise
        self.rows_written += len(batch)
        self.commits += 1
        for i, (_, _, on_commit) in enumerate(batch, start=1):
            if on_commit is not None:
                on_commit(base + i)

    def _call_values(
        self, call: CallRecord, sample: SampleRecord | None, blobs: dict[str, bytes]
    ) -> tuple[Any, ...]:
        """The row's values with one copy of each payload: a long request moved to
        ``blobs`` (keyed by its sha256), and the text left to the sample that holds it."""
        values = call.values()
        if records.INLINE_STORE:
            return values
        text = call.request
        answer = call.response_text
        own_answer = not (answer and sample is not None and sample.output == answer)
        if own_answer and len(text) <= BLOB_MIN_CHARS:
            return values
        row = list(values)
        if not own_answer:
            row[_RESPONSE_TEXT] = None  # read back by ``cache.response_text_sql``
        if len(text) <= BLOB_MIN_CHARS:
            return tuple(row)
        digest = self._recent.get(text)
        if digest is None:
            digest = hashlib.sha256(text.encode()).hexdigest()
            blobs[digest] = zlib.compress(text.encode(), 6)
            self._recent[text] = digest
            if len(self._recent) > _RECENT_BLOBS:
                self._recent.popitem(last=False)
        else:
            self._recent.move_to_end(text)
        row[_REQUEST], row[_REQUEST_BLOB] = "", digest  # the column is NOT NULL
        return tuple(row)

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every ``interval`` until ``stop`` is set, then a final flush."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
            self.flush()
        self.flush()
