"""Archive a finished run as Parquet, and optionally prune its calls and samples from the store.

``archive_run`` writes ``DIR/run-ID/``:

- ``samples/part-NNNNN.parquet``: the export's sample columns plus the call's request
  JSON and response text (``CALL_TEXT_COLUMNS``), redacted as every export is;
- ``calls/part-NNNNN.parquet``: every call of the run (attempts that failed, cache hits,
  calls with no sample), with its request and response text, redacted; never headers,
  keys or what the adapter sent;
- ``manifest.json``: the run row, the files and their row counts.

Rows are streamed in 2,000-row groups into parts of at most ``PART_ROWS`` rows: a
Parquet writer keeps every row group's metadata until its file is closed (about 25 KB
per group here), so parts keep memory flat in the run's size; ``pq.read_table(folder)``
reads a folder's parts as one table.  Every part is read back: the row
counts must equal the store's, or nothing is pruned.  With
``prune`` the run's calls and samples (their grades and labels with them) are deleted in
one transaction, and the ``runs`` row keeps ``archive``: where the files are, the row
counts, and the run's totals as they were (``SUM`` over its calls is 0 afterwards).
Pruned calls no longer serve the cache; other runs' cache hits that pointed at them keep
their copy of the response and lose only ``cached_from``.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.core.analysis.export import (
    CALL_TEXT_COLUMNS,
    SAMPLE_COLUMNS,
    iter_sample_rows,
    write_parquet,
)
from workbench.core.engine import request_sql, response_text_sql
from workbench.core.errors import InputError
from workbench.core.redact import Redactor
from workbench.core.status import RunStatus
from workbench.core.store import Store, dumps, loads, now_iso

ARCHIVE_SAMPLE_COLUMNS = SAMPLE_COLUMNS + CALL_TEXT_COLUMNS
PART_ROWS = 250_000
#: calls columns archived, with their Arrow types (text otherwise)
CALL_COLUMNS = (
    "call_id", "run_id", "item_key", "provider", "base_url", "endpoint", "model",
    "continuation", "request_hash", "request", "response_text", "finish_reason",
    "input_tokens", "output_tokens", "cached_tokens", "cost_usd", "latency_ms", "attempts",
    "status", "error_kind", "error", "cache_hit", "cached_from", "created_at",
)  # fmt: skip
CALL_TYPES = {
    "call_id": "int", "run_id": "int", "input_tokens": "int", "output_tokens": "int",
    "cached_tokens": "int", "cost_usd": "float", "latency_ms": "float", "attempts": "int",
    "cache_hit": "bool", "cached_from": "int",
}  # fmt: skip


@dataclass(frozen=True)
class ArchiveReport:
    """What ``archive_run`` wrote (and pruned)."""

    run_id: int
    dir: str
    samples: int
    calls: int
    pruned: bool


def _iter_calls(store: Store, run_id: int) -> Iterator[dict[str, Any]]:
    special = {
        "call_id": "id AS call_id",
        "request": f"{request_sql()} AS request",
        "response_text": f"{response_text_sql()} AS response_text",
    }
    cols = ", ".join(special.get(c, c) for c in CALL_COLUMNS)
    cur = store.conn.execute(f"SELECT {cols} FROM calls WHERE run_id=? ORDER BY id", (run_id,))
    redactor = Redactor.from_env()
    for raw in cur:
        if redactor.is_clean("\x00".join(v for v in raw if type(v) is str)):
            yield dict(zip(CALL_COLUMNS, raw, strict=True))
        else:
            yield {
                c: redactor.text(v) if type(v) is str else v
                for c, v in zip(CALL_COLUMNS, raw, strict=True)
            }


def _write_parts(
    rows: Iterator[dict[str, Any]], out: Path, name: str, **columns: Any
) -> tuple[list[str], int]:
    """``rows`` as ``out/name/part-00000.parquet``, ... of at most ``PART_ROWS`` rows (one
    part when there are none, so an empty run has its schema on disk)."""
    parts: list[str] = []
    total = 0
    (out / name).mkdir(exist_ok=True)
    while True:
        path = out / name / f"part-{len(parts):05d}.parquet"
        n = write_parquet(itertools.islice(rows, PART_ROWS), path, **columns)
        if n == 0 and parts:
            path.unlink()
            break
        parts.append(path.name)
        total += n
        if n < PART_ROWS:
            break
    return parts, total


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(str(path)).metadata.num_rows)


def _count(store: Store, table: str, run_id: int) -> int:
    return int(store.scalar(f"SELECT COUNT(*) FROM {table} WHERE run_id=?", (run_id,)))


def archive_run(store: Store, run_id: int, to: str | Path, *, prune: bool = False) -> ArchiveReport:
    """Write the run's Parquet under ``to``, verify it, and (``prune``) drop its rows."""
    run = store.get_run(run_id)  # one line for an unknown run
    status = RunStatus(run["status"])
    if status.active:
        raise InputError(f"run {run_id} is {status.value}: archive it once it has finished")
    if run.get("archive") and loads(run["archive"], {}).get("pruned"):
        raise InputError(f"run {run_id} is already archived and pruned ({run['archive']})")
    out = Path(to) / f"run-{run_id}"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create: {exc.strerror or exc}") from None
    n_samples = _count(store, "samples", run_id)
    n_calls = _count(store, "calls", run_id)
    totals = store.run_totals(run_id)
    for old in [*out.glob("samples/part-*.parquet"), *out.glob("calls/part-*.parquet")]:
        old.unlink()  # an earlier archive of this run: its parts are written again
    sample_parts, wrote_samples = _write_parts(
        iter_sample_rows(store, run_id, call_text=True),
        out,
        "samples",
        columns=ARCHIVE_SAMPLE_COLUMNS,
    )
    call_parts, wrote_calls = _write_parts(
        _iter_calls(store, run_id), out, "calls", columns=CALL_COLUMNS, types=CALL_TYPES
    )
    for name, parts, wrote, stored in (
        ("samples", sample_parts, wrote_samples, n_samples),
        ("calls", call_parts, wrote_calls, n_calls),
    ):
        on_disk = sum(_parquet_rows(out / name / part) for part in parts)
        if not wrote == on_disk == stored:
            raise InputError(
                f"{out}: {name}: {on_disk} rows on disk, {wrote} written, {stored} in the "
                "store; nothing was pruned"
            )
    pointer = {
        "dir": str(out.resolve()),
        "files": {"samples": sample_parts, "calls": call_parts},
        "rows": {"samples": n_samples, "calls": n_calls},
        "archived_at": now_iso(),
        "pruned": prune,
        "totals": asdict(totals),
    }
    manifest = {"run": {k: v for k, v in run.items() if k != "archive"}, **pointer}
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, out / "manifest.json")
    with store.transaction() as conn:
        if prune:
            _prune(conn, run_id)
        conn.execute("UPDATE runs SET archive=? WHERE id=?", (dumps(pointer), run_id))
    return ArchiveReport(run_id, str(out), n_samples, n_calls, prune)


def _prune(conn: Any, run_id: int) -> None:
    """Delete the run's samples (grades and labels cascade) and calls; keep the run row."""
    # rows of other runs that point into this one keep their own copy and lose the link
    conn.execute(
        "UPDATE calls SET cached_from=NULL WHERE cached_from IN "
        "(SELECT id FROM calls WHERE run_id=?) AND (run_id IS NULL OR run_id!=?)",
        (run_id, run_id),
    )
    conn.execute(
        "UPDATE samples SET parent_id=NULL WHERE parent_id IN "
        "(SELECT id FROM samples WHERE run_id=?) AND run_id!=?",
        (run_id, run_id),
    )
    conn.execute("DELETE FROM samples WHERE run_id=?", (run_id,))
    conn.execute("DELETE FROM calls WHERE run_id=?", (run_id,))
    conn.execute(  # requests no call refers to any more
        "DELETE FROM blobs WHERE hash NOT IN "
        "(SELECT request_blob FROM calls WHERE request_blob IS NOT NULL)"
    )
