"""The ``batches`` and ``batch_items`` rows: the durable record of what is out where.

A batch row and its items are committed before anything leaves the machine
(a provider upload or a shard file), so a killed process knows on restart
which items are out and never sends them again.  Each item's work item is
stored as JSON, so results are recorded later (another process, days after)
without re-running the experiment's stages.
"""

from __future__ import annotations

import json
import time
import uuid as uuidlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.batch.ids import custom_id
from workbench.core.engine import WorkItem
from workbench.core.providers import ModelRequest
from workbench.core.status import OPEN_BATCH_STATES, BatchItemState, BatchState
from workbench.core.store import Store, dumps, loads, now_iso

_CHUNK = 500  # ids per IN (...) query, under SQLite's variable limit


@dataclass(frozen=True)
class BatchRow:
    """One ``batches`` row."""

    id: int
    run_id: int
    uuid: str
    provider: str  # "file", or the configured provider name
    stage: str
    model: str  # provider:model
    remote_id: str | None
    status: BatchState
    n_items: int
    reserved_usd: float
    prepared_at: float
    meta: dict[str, Any]
    created_at: str


@dataclass(frozen=True)
class BatchItemRow:
    """One ``batch_items`` row, its work item decoded."""

    custom_id: str
    batch_id: int
    run_id: int
    item_key: str
    attempt: int
    state: BatchItemState
    item: WorkItem


def item_json(item: WorkItem) -> str:
    return dumps(
        {
            "key": item.key,
            "stage": item.stage,
            "role": item.role,
            "model_ref": item.model_ref,
            "request": item.request.to_json(),
            "problem_id": item.problem_id,
            "sample_index": item.sample_index,
            "parent_id": item.parent_id,
            "payload": dict(item.payload),
        }
    )


def item_from_json(text: str) -> WorkItem:
    data = json.loads(text)
    return WorkItem(
        key=data["key"],
        stage=data["stage"],
        role=data["role"],
        model_ref=data["model_ref"],
        request=ModelRequest.from_json(data["request"]),
        problem_id=data.get("problem_id"),
        sample_index=int(data.get("sample_index", 0)),
        parent_id=data.get("parent_id"),
        payload=data.get("payload") or {},
    )


def _batch(row: Mapping[str, Any]) -> BatchRow:
    return BatchRow(
        id=row["id"],
        run_id=row["run_id"],
        uuid=row["uuid"],
        provider=row["provider"],
        stage=row["stage"] or "",
        model=row["model"] or "",
        remote_id=row["remote_id"],
        status=BatchState(row["status"]),
        n_items=row["n_items"],
        reserved_usd=row["reserved_usd"] or 0.0,
        prepared_at=row["prepared_at"] or 0.0,
        meta=loads(row["meta"], {}),
        created_at=row["created_at"],
    )


def next_attempts(db: Store, run_id: int, keys: Iterable[str]) -> dict[str, int]:
    """The attempt number each key's next batch line gets (1 when never batched)."""
    wanted = list(dict.fromkeys(keys))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = db.conn.execute(
            "SELECT item_key, MAX(attempt) FROM batch_items WHERE run_id=? AND item_key IN "
            f"({','.join('?' * len(chunk))}) GROUP BY item_key",
            (run_id, *chunk),
        )
        found.update({r[0]: int(r[1]) for r in rows})
    return {k: found.get(k, 0) + 1 for k in wanted}


def create_batch(
    db: Store,
    run_id: int,
    *,
    provider: str,
    stage: str,
    model: str,
    items: Sequence[WorkItem],
    reserved_usd: float = 0.0,
    status: BatchState = BatchState.PREPARING,
    meta: Mapping[str, Any] | None = None,
) -> tuple[BatchRow, list[str]]:
    """Insert a batch and its items in one transaction; return it and the items' custom ids
    (in ``items`` order)."""
    attempts = next_attempts(db, run_id, (i.key for i in items))
    ids = [custom_id(run_id, i.key, attempts[i.key]) for i in items]
    now = now_iso()
    local = uuidlib.uuid4().hex
    with db.transaction() as conn:
        batch_id = db.insert(
            "batches",
            {
                "run_id": run_id,
                "provider": provider,
                "remote_id": None,
                "status": status.value,
                "meta": dumps(dict(meta or {})),
                "created_at": now,
                "uuid": local,
                "stage": stage,
                "model": model,
                "n_items": len(items),
                "reserved_usd": reserved_usd,
                "prepared_at": time.time(),
                "updated_at": now,
            },
        )
        conn.executemany(
            "INSERT INTO batch_items (custom_id, batch_id, run_id, item_key, attempt, state, item)"
            " VALUES (?,?,?,?,?,?,?)",
            [
                (
                    cid,
                    batch_id,
                    run_id,
                    i.key,
                    attempts[i.key],
                    BatchItemState.OUT.value,
                    item_json(i),
                )
                for cid, i in zip(ids, items, strict=True)
            ],
        )
    return get_batch(db, batch_id), ids


def get_batch(db: Store, batch_id: int) -> BatchRow:
    row = db.query_one("SELECT * FROM batches WHERE id=?", (batch_id,))
    if row is None:
        raise KeyError(batch_id)
    return _batch(row)


def run_batches(db: Store, run_id: int, *, open_only: bool = False) -> list[BatchRow]:
    sql = "SELECT * FROM batches WHERE run_id=?"
    if open_only:
        sql += f" AND status IN ({','.join(repr(s.value) for s in OPEN_BATCH_STATES)})"
    return [_batch(r) for r in db.query(sql + " ORDER BY id", (run_id,))]


def update_batch(
    db: Store,
    batch_id: int,
    *,
    status: BatchState | None = None,
    remote_id: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> None:
    """Change a batch's status / remote id / meta (merged) in one commit."""
    with db.transaction():
        current = db.query_one("SELECT meta FROM batches WHERE id=?", (batch_id,))
        values: dict[str, Any] = {"updated_at": now_iso()}
        if status is not None:
            values["status"] = status.value
        if remote_id is not None:
            values["remote_id"] = remote_id
        if meta:
            merged = {**loads(current["meta"] if current else None, {}), **meta}
            values["meta"] = dumps(merged)
        db.update("batches", batch_id, values)


def lookup_items(db: Store, ids: Iterable[str]) -> dict[str, BatchItemRow]:
    """``batch_items`` rows by custom id, whatever their run."""
    wanted = list(dict.fromkeys(ids))
    found: dict[str, BatchItemRow] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = db.conn.execute(
            "SELECT custom_id, batch_id, run_id, item_key, attempt, state, item FROM batch_items"
            f" WHERE custom_id IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        for r in rows:
            found[r[0]] = BatchItemRow(
                r[0], r[1], r[2], r[3], r[4], BatchItemState(r[5]), item_from_json(r[6])
            )
    return found


def batch_items(
    db: Store, batch_id: int, state: BatchItemState | None = None
) -> list[BatchItemRow]:
    sql = (
        "SELECT custom_id, batch_id, run_id, item_key, attempt, state, item FROM batch_items"
        " WHERE batch_id=?"
    )
    params: list[Any] = [batch_id]
    if state is not None:
        sql += " AND state=?"
        params.append(state.value)
    return [
        BatchItemRow(r[0], r[1], r[2], r[3], r[4], BatchItemState(r[5]), item_from_json(r[6]))
        for r in db.conn.execute(sql, params)
    ]


def mark_items(db: Store, states: Mapping[str, BatchItemState]) -> None:
    """Set item states by custom id, in one commit."""
    if not states:
        return
    with db.transaction() as conn:
        conn.executemany(
            "UPDATE batch_items SET state=? WHERE custom_id=?",
            [(s.value, cid) for cid, s in states.items()],
        )


def close_finished(db: Store, batch_ids: Iterable[int]) -> list[int]:
    """Mark ``ingested`` each ended / submitted batch with no item out; return those closed."""
    closed = []
    for batch_id in dict.fromkeys(batch_ids):
        out = db.scalar(
            "SELECT COUNT(*) FROM batch_items WHERE batch_id=? AND state=?",
            (batch_id, BatchItemState.OUT.value),
        )
        if out == 0:
            update_batch(db, batch_id, status=BatchState.INGESTED)
            closed.append(batch_id)
    return closed


def count_states(db: Store, run_id: int) -> dict[str, int]:
    """Batch items of a run by state (for the monitor and the CLI)."""
    rows = db.conn.execute(
        "SELECT state, COUNT(*) FROM batch_items WHERE run_id=? GROUP BY state", (run_id,)
    )
    return {r[0]: int(r[1]) for r in rows}
