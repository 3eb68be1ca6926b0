"""The workspace store: one SQLite file, WAL mode, versioned schema.

A ``Store`` wraps one sqlite3 connection and must stay on the thread that
opened it.  Other threads (the run engine, workers) call ``store.reopen()``
to get their own connection to the same file; WAL lets one writer and many
readers work at once, and ``busy_timeout`` makes concurrent writers wait
instead of failing.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.core.errors import RunBusyError, StoreError
from workbench.core.schema import LATEST_VERSION, MIGRATIONS
from workbench.core.status import RunStatus, SampleStatus

DEFAULT_DB = "workbench.db"
BUSY_TIMEOUT_MS = 30_000
#: seconds between an executor's heartbeats, and the age after which its lease is void
HEARTBEAT_S = 2.0
LEASE_TTL_S = 20.0


def now_iso() -> str:
    """UTC timestamp with milliseconds, sortable as text."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def dumps(value: Any) -> str:
    """Compact, deterministic JSON used for every JSON column."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def loads(text: str | None, default: Any = None) -> Any:
    return default if text in (None, "") else json.loads(text)  # type: ignore[arg-type]


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except OSError:
        return False
    return True


def lease_alive(
    owner_pid: int | None,
    owner_host: str | None,
    heartbeat_at: float | None,
    *,
    now: float | None = None,
    ttl: float = LEASE_TTL_S,
) -> bool:
    """Whether a run's executor is still there: a fresh heartbeat, and on this host a live pid."""
    if heartbeat_at is None:
        return False
    if (now if now is not None else time.time()) - heartbeat_at > ttl:
        return False
    return not (owner_host == socket.gethostname() and owner_pid and not pid_alive(owner_pid))


def shown_run_status(row: Mapping[str, Any]) -> RunStatus:
    """A run's status as users should see it: ``interrupted`` when it is marked running (or
    paused) but no executor holds a live lease on it (killed, crashed, machine gone)."""
    status = RunStatus(row["status"])
    if status in (RunStatus.RUNNING, RunStatus.PAUSED) and not lease_alive(
        row.get("owner_pid"), row.get("owner_host"), row.get("heartbeat_at")
    ):
        return RunStatus.INTERRUPTED
    return status


@dataclass(frozen=True)
class RunTotals:
    """Totals for a run, summed from its calls (so a resumed run counts old calls)."""

    n_calls: int
    n_ok: int
    n_errors: int
    n_cache_hits: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: float
    n_unpriced: int  # ok calls whose cost is unknown


def inflate(data: bytes | None) -> str | None:
    """A ``blobs.data`` value (zlib-compressed UTF-8) as text."""
    return None if data is None else zlib.decompress(data).decode("utf-8")


class Store:
    """One workspace database."""

    def __init__(self, path: str | Path, *, migrate: bool = True) -> None:
        self.path = Path(path)
        try:
            conn = sqlite3.connect(
                str(self.path),
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # autocommit; transactions are explicit
                check_same_thread=True,
            )
        except sqlite3.Error as exc:
            raise StoreError(open_error(self.path, exc)) from exc
        self.conn = conn
        self._depth = 0
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA synchronous=NORMAL")
            # blobs.data (zlib) as text, for reading request JSON kept in ``blobs``
            conn.create_function("wb_inflate", 1, inflate, deterministic=True)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(open_error(self.path, exc)) from exc
        if migrate:
            self.migrate()

    # -- lifecycle ---------------------------------------------------------

    def reopen(self) -> Store:
        """A new connection to the same file, for use on another thread."""
        return Store(self.path, migrate=False)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ------------------------------------------------------------

    @property
    def version(self) -> int:
        if "schema_version" not in self.table_names():
            return 0
        row = self.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def migrate(self) -> list[int]:
        """Apply pending migrations in order; return the versions applied."""
        with self.transaction():
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
        current = self.version
        if current > LATEST_VERSION:
            raise StoreError(
                f"{self.path}: schema version {current} is newer than this workbench "
                f"({LATEST_VERSION}); upgrade workbench"
            )
        applied = []
        for version, description, statements in MIGRATIONS:
            if version <= current:
                continue
            with self.transaction():
                for sql in statements:
                    self.conn.execute(sql)
                self.conn.execute(
                    "INSERT INTO schema_version(version, description, applied_at) VALUES (?,?,?)",
                    (version, description, now_iso()),
                )
            applied.append(version)
        return applied

    def table_names(self) -> list[str]:
        """Names of the database's tables (SQLite's own ``sqlite_*`` tables left out)."""
        rows = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
        return [r[0] for r in rows]

    # -- transactions ------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE); nested calls join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0

    # -- generic helpers ---------------------------------------------------

    def query(
        self, sql: str, params: Iterable[Any] | Mapping[str, Any] = ()
    ) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, params)  # type: ignore[arg-type]
        cols = [c[0] for c in cur.description or ()]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def query_one(
        self, sql: str, params: Iterable[Any] | Mapping[str, Any] = ()
    ) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Iterable[Any] | Mapping[str, Any] = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
        return None if row is None else row[0]

    def insert(self, table: str, row: Mapping[str, Any]) -> int:
        cols = list(row)
        sql = f"INSERT INTO {table} ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})"
        cur = self.conn.execute(sql, [row[c] for c in cols])
        return int(cur.lastrowid or 0)

    def update(self, table: str, key: Any, values: Mapping[str, Any], *, pk: str = "id") -> None:
        sets = ",".join(f"{c}=?" for c in values)
        self.conn.execute(f"UPDATE {table} SET {sets} WHERE {pk}=?", [*values.values(), key])

    # -- runs --------------------------------------------------------------

    def create_run(
        self, name: str, kind: str, config: Mapping[str, Any], *, budget_usd: float | None = None
    ) -> int:
        with self.transaction():
            return self.insert(
                "runs",
                {
                    "name": name,
                    "kind": kind,
                    "config": dumps(config),
                    "status": RunStatus.PENDING,
                    "budget_usd": budget_usd,
                    "created_at": now_iso(),
                },
            )

    def get_run(self, run_id: int) -> dict[str, Any]:
        row = self.query_one("SELECT * FROM runs WHERE id=?", (run_id,))
        if row is None:
            raise StoreError(f"no run with id {run_id}")
        row["config"] = loads(row["config"], {})
        return row

    def set_run_status(self, run_id: int, status: RunStatus, *, error: str | None = None) -> None:
        status = RunStatus(status)
        values: dict[str, Any] = {"status": status, "error": error}
        if status is RunStatus.RUNNING:
            values["finished_at"] = None
        elif status not in (RunStatus.PENDING, RunStatus.PAUSED):
            values["finished_at"] = now_iso()
        with self.transaction():
            self.update("runs", run_id, values)
            if status is RunStatus.RUNNING:  # a resumed run keeps its first start time
                self.conn.execute(
                    "UPDATE runs SET started_at=COALESCE(started_at, ?) WHERE id=?",
                    (now_iso(), run_id),
                )

    def record_run_settings(
        self, run_id: int, budget_usd: float | None, concurrency: int | None, note: str
    ) -> None:
        """Append to the run's settings history (budget cap and concurrency, and why)."""
        with self.transaction():
            self.insert(
                "run_settings",
                {
                    "run_id": run_id,
                    "budget_usd": budget_usd,
                    "concurrency": concurrency,
                    "note": note,
                    "changed_at": now_iso(),
                },
            )

    def run_settings_history(self, run_id: int) -> list[dict[str, Any]]:
        """The run's budget / concurrency settings, oldest first."""
        return self.query(
            "SELECT budget_usd, concurrency, note, changed_at FROM run_settings"
            " WHERE run_id=? ORDER BY id",
            (run_id,),
        )

    # -- run lease ---------------------------------------------------------

    def acquire_run_lease(self, run_id: int, token: str) -> None:
        """Make this process the run's one executor; ``RunBusyError`` while another lives."""
        with self.transaction():
            row = self.query_one(
                "SELECT owner_pid, owner_host, owner_token, heartbeat_at FROM runs WHERE id=?",
                (run_id,),
            )
            if row is None:
                raise StoreError(f"no run with id {run_id}")
            if row["owner_token"] not in (None, token) and lease_alive(
                row["owner_pid"], row["owner_host"], row["heartbeat_at"]
            ):
                age = max(0.0, time.time() - float(row["heartbeat_at"]))
                raise RunBusyError(
                    f"run {run_id} is already running (pid {row['owner_pid']} on "
                    f"{row['owner_host']}, heartbeat {age:.0f}s ago); wait for it to end "
                    "or stop it there, then resume"
                )
            self.update(
                "runs",
                run_id,
                {
                    "owner_pid": os.getpid(),
                    "owner_host": socket.gethostname(),
                    "owner_token": token,
                    "heartbeat_at": time.time(),
                },
            )

    def heartbeat_run(self, run_id: int, token: str) -> bool:
        """Renew the lease; False when it is no longer ours (another executor took it over)."""
        with self.transaction():
            cur = self.conn.execute(
                "UPDATE runs SET heartbeat_at=? WHERE id=? AND owner_token=?",
                (time.time(), run_id, token),
            )
        return cur.rowcount == 1

    def release_run_lease(self, run_id: int, token: str) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE runs SET owner_pid=NULL, owner_host=NULL, owner_token=NULL,"
                " heartbeat_at=NULL WHERE id=? AND owner_token=?",
                (run_id, token),
            )

    def run_totals(self, run_id: int) -> RunTotals:
        row = self.conn.execute(
            """
            SELECT COUNT(*),
                   COALESCE(SUM(status='ok'),0),
                   COALESCE(SUM(status='error'),0),
                   COALESCE(SUM(cache_hit),0),
                   COALESCE(SUM(CASE WHEN cache_hit=0 THEN input_tokens END),0),
                   COALESCE(SUM(CASE WHEN cache_hit=0 THEN output_tokens END),0),
                   COALESCE(SUM(CASE WHEN cache_hit=0 THEN cached_tokens END),0),
                   COALESCE(SUM(CASE WHEN cache_hit=0 THEN cost_usd END),0.0),
                   COALESCE(SUM(status='ok' AND cache_hit=0 AND cost_usd IS NULL),0)
            FROM calls WHERE run_id=?
            """,
            (run_id,),
        ).fetchone()
        return RunTotals(*row)

    # -- samples -----------------------------------------------------------

    def done_item_keys(self, run_id: int, stage: str | None = None) -> set[str]:
        """Keys of work items that finished (any status but error) in a run."""
        sql = "SELECT item_key FROM samples WHERE run_id=? AND status!=?"
        params: list[Any] = [run_id, SampleStatus.ERROR]
        if stage is not None:
            sql += " AND stage=?"
            params.append(stage)
        return {r[0] for r in self.conn.execute(sql, params)}

    def samples(
        self, run_id: int, stage: str | None = None, *, status: SampleStatus | None = None
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM samples WHERE run_id=?"
        params: list[Any] = [run_id]
        if stage is not None:
            sql += " AND stage=?"
            params.append(stage)
        if status is not None:
            sql += " AND status=?"
            params.append(status)
        rows = self.query(sql + " ORDER BY id", params)
        for r in rows:
            r["payload"] = loads(r["payload"], {})
        return rows

    def update_sample_payload(self, sample_id: int, updates: Mapping[str, Any]) -> None:
        """Merge keys into a sample's payload (used by re-runnable post-processing)."""
        with self.transaction():
            row = self.conn.execute(
                "SELECT payload FROM samples WHERE id=?", (sample_id,)
            ).fetchone()
            if row is None:
                raise StoreError(f"no sample with id {sample_id}")
            payload = loads(row[0], {})
            payload.update(updates)
            self.update("samples", sample_id, {"payload": dumps(payload), "updated_at": now_iso()})


def open_error(path: Path, exc: sqlite3.Error) -> str:
    """One line saying why ``path`` could not be opened as a workspace."""
    text = str(exc)
    folder = path.parent if str(path.parent) else Path(".")
    unwritable = not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK))
    if "readonly" in text or "read-only" in text or (unwritable and "unable to open" in text):
        return (
            f"{path}: cannot write the workspace (read-only filesystem or no permission): "
            f"{text}; copy it somewhere writable"
        )
    if "unable to open" in text:
        return f"{path}: cannot open the workspace: {text}"
    return f"{path}: not a workbench database ({text})"


def open_store(path: str | Path | None = None, *, create: bool = True) -> Store:
    """Open (migrating if needed) the workspace database; ``create`` makes a missing one.

    Commands that only read pass ``create=False``: a mistyped ``--db`` is then an
    error, not a new empty workspace.
    """
    target = Path(path or DEFAULT_DB)
    if not create and not target.exists():
        raise StoreError(
            f"{target}: no workspace here (check --db or $WORKBENCH_DB); "
            "create one with `workbench init` or `workbench import`"
        )
    return Store(target)


def like_pattern(text: str) -> str:
    """A ``LIKE ? ESCAPE '\\'`` pattern matching ``text`` anywhere, its ``%`` and ``_`` literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
