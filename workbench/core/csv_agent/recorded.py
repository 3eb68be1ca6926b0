"""A recorded csv_agent run on tips, for ``workbench demo``: real structure, no API key.

The recording is the store rows of a run made against the scripted stub conversations the
tests use (``tests/record_csv_demo.py`` writes it): the run, its calls and request blobs,
its samples (turns, questions, verdicts) and its tool calls with their raw and shown
results.  Loading it copies those rows into a workspace under new ids, so every screen
reads it the way it reads a live run; its name ends in ``(recorded)``, which the screens
show.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.csv_agent.tables import bundled_tables, import_table
from workbench.core.errors import InputError
from workbench.core.store import Store

RECORDED_FILE = Path(__file__).resolve().parents[2] / "data" / "recorded" / "csv-tips.json.gz"
RECORDED_SUFFIX = "(recorded)"
RUN_NAME = f"tips questions {RECORDED_SUFFIX}"
_BLOB_COLUMNS = {"raw"}  # bytes, stored as base64 text in the recording


def _rows(store: Store, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    out = []
    for row in store.query(sql, params):
        for key in _BLOB_COLUMNS & row.keys():
            if isinstance(row[key], bytes):
                row[key] = base64.b64encode(row[key]).decode("ascii")
        out.append(row)
    return out


def dump_run(store: Store, run_id: int) -> dict[str, Any]:
    """A finished csv_agent run's rows, as the recording holds them."""
    calls = _rows(store, "SELECT * FROM calls WHERE run_id = ? ORDER BY id", (run_id,))
    for call in calls:
        call["base_url"] = "recorded"  # the stub's port means nothing elsewhere
    hashes = sorted({c["request_blob"] for c in calls if c.get("request_blob")})
    marks = ",".join("?" * len(hashes))
    blobs = [  # as text: the requests repeat the tool schemas, which gzip then shares
        {"hash": r["hash"], "text": zlib.decompress(r["data"]).decode("utf-8")}
        for r in store.query(f"SELECT * FROM blobs WHERE hash IN ({marks})", tuple(hashes))
    ]
    table = store.query_one(
        "SELECT DISTINCT table_sha256 FROM tool_calls WHERE run_id = ?", (run_id,)
    )
    return {
        "table_sha256": table["table_sha256"] if table else None,
        "run": store.query_one("SELECT * FROM runs WHERE id = ?", (run_id,)),
        "calls": calls,
        "blobs": blobs,
        "samples": _rows(store, "SELECT * FROM samples WHERE run_id = ? ORDER BY id", (run_id,)),
        "tool_calls": _rows(
            store, "SELECT * FROM tool_calls WHERE run_id = ? ORDER BY id", (run_id,)
        ),
    }


def write_recording(data: dict[str, Any], path: Path = RECORDED_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, indent=0)
    path.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))


def read_recording(path: Path = RECORDED_FILE) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(gzip.decompress(path.read_bytes()))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable recording ({exc})") from None
    return data


@dataclass(frozen=True)
class RecordedImport:
    run_id: int
    created: bool  # False: the workspace already had it

    def summary(self) -> str:
        verb = "recorded" if self.created else "already recorded"
        return f"run {self.run_id} '{RUN_NAME}': {verb} (csv_agent on tips)"


def _insert(conn: Any, table: str, row: dict[str, Any]) -> int:
    columns = ",".join(row)
    cursor = conn.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({','.join('?' * len(row))})",
        list(row.values()),
    )
    return int(cursor.lastrowid)


def load_recording(store: Store, path: Path = RECORDED_FILE) -> RecordedImport:
    """Copy the recorded run into ``store`` (once; the tips table too) under new ids."""
    existing = store.scalar("SELECT id FROM runs WHERE name = ? ORDER BY id LIMIT 1", (RUN_NAME,))
    if existing is not None:
        return RecordedImport(int(existing), created=False)
    data = read_recording(path)
    table = import_table(store, bundled_tables()["tips"]).table
    if data.get("table_sha256") != table.sha256:
        raise InputError(f"{path}: recorded on another tips.csv (sha256 {data['table_sha256']})")
    run = {k: v for k, v in data["run"].items() if k != "id"}
    run["name"] = RUN_NAME
    call_ids: dict[int, int] = {}
    sample_ids: dict[int, int] = {}
    with store.transaction() as conn:
        run_id = _insert(conn, "runs", run)
        for blob in data["blobs"]:
            conn.execute(
                "INSERT OR IGNORE INTO blobs (hash, data) VALUES (?, ?)",
                (blob["hash"], zlib.compress(blob["text"].encode("utf-8"))),
            )
        for call in data["calls"]:
            old = call.pop("id")
            call.update(run_id=run_id, cached_from=call_ids.get(call.get("cached_from") or -1))
            call_ids[old] = _insert(conn, "calls", call)
        for sample in data["samples"]:
            old = sample.pop("id")
            sample.update(
                run_id=run_id,
                parent_id=sample_ids.get(sample.get("parent_id") or -1),
                call_id=call_ids.get(sample.get("call_id") or -1),
            )
            payload = json.loads(sample.get("payload") or "{}")
            if isinstance(payload, dict) and "final_sample_id" in payload:  # a verdict's turn
                payload["final_sample_id"] = sample_ids.get(payload["final_sample_id"])
                sample["payload"] = json.dumps(payload, ensure_ascii=False, sort_keys=True)
            sample_ids[old] = _insert(conn, "samples", sample)
        for tc in data["tool_calls"]:
            tc.pop("id")
            tc.update(
                run_id=run_id,
                sample_id=sample_ids.get(tc.get("sample_id") or -1),
                raw=base64.b64decode(tc["raw"]),
            )
            _insert(conn, "tool_calls", tc)
    return RecordedImport(run_id, created=True)
