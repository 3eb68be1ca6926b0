"""Persistent tool workers: one jailed process per table serves many tool calls.

A one-shot sandbox run per tool call pays for a process, the pandas import and
the CSV parse every time (about 370 ms on diamonds.csv).  A ``ToolWorker`` pays
once: it starts ``worker_main.py`` through ``sandbox.script_launch`` (the same
jail, rlimits, empty environment, syscall filter and audit hook as the sandbox
child; the table read-only), loads the table, and answers JSON-line requests.
Each call has a wall limit (here) and a CPU limit (an rlimit moved per call).

On a timeout, a crash or a memory error the process is killed and restarted on
the next call; the call returns ``is_error`` with that kind.  A ``ToolSession``
(one conversation) remembers how each of its frames was made, so a fresh worker
rebuilds them by replaying those calls.  Results are cached on (table sha256,
tool, canonical arguments, lineage of the input frame): best-of-n attempts that
repeat a call do not run it again.  A ``WorkerPool`` keeps at most
``min(cores, max_table_workers)`` processes, stops idle ones after 60 s, and
leaves none behind at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import queue
import selectors
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.core.csv_agent import render, tools
from workbench.core.sandbox import Limits, ScriptLaunch, kill_process_group, script_launch
from workbench.core.store import dumps, now_iso

WORKER_SCRIPT = Path(__file__).with_name("worker_main.py")
WORKER_MODULES = (Path(tools.__file__), Path(render.__file__))
READY_TIMEOUT_S = 60.0
TABLE_FILE = "table.csv"


@dataclass(frozen=True)
class WorkerLimits:
    """Per-call limits and the worker's own."""

    wall_s: float = 5.0  # per call
    cpu_s: float = 5.0  # per call
    cpu_budget_s: int = 3600  # the whole worker's life
    memory_mb: int = 2048  # address space; pandas and a table fit well inside
    max_frames: int = tools.MAX_FRAMES
    frame_mb: float = tools.DEFAULT_FRAME_MB
    jail: bool = True
    syscall_filter: bool = True


@dataclass(frozen=True)
class TableSource:
    """What a worker loads: the file, its identity and how pandas reads it."""

    path: str
    sha256: str
    delimiter: str = ","
    encoding: str = "utf-8"

    def read_csv_options(self) -> dict[str, Any]:
        encoding = "utf-8-sig" if self.encoding == "utf-8-sig" else self.encoding
        return {"sep": self.delimiter, "encoding": encoding}


@dataclass(frozen=True)
class ToolOutcome:
    """One tool call as the conversation sees it and the store records it."""

    tool: str
    args: Any
    result: dict[str, Any]  # raw JSON result
    shown: str  # what the model is shown (truncated)
    duration_ms: float
    cache_hit: bool = False

    @property
    def error_kind(self) -> str | None:
        return str(self.result.get("error_kind")) if render.is_error(self.result) else None


class WorkerFailure(Exception):
    """The worker process died or overran; ``kind`` is timeout / memory / crash."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Spawner:
    """Starts worker processes from one long-lived thread.

    The jail asks the kernel to kill it when its parent dies (``--die-with-parent``,
    a parent-death signal), and Linux sends that signal when the *thread* that forked
    it exits.  Workers outlive the engine's and the tool pool's short-lived threads,
    so they are forked from a thread that lives as long as the process.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[ScriptLaunch, Future[subprocess.Popen[bytes]]]]
        self._jobs = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, launch: ScriptLaunch) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="csv-spawner", daemon=True)
                self._thread.start()
        future: Future[subprocess.Popen[bytes]] = Future()
        self._jobs.put((launch, future))
        return future.result()

    def _serve(self) -> None:
        while True:
            launch, future = self._jobs.get()
            try:
                proc = subprocess.Popen(
                    launch.argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    cwd=launch.cwd,
                    env=launch.env,
                    start_new_session=True,
                )
            except BaseException as exc:  # handed to the caller, who decides
                future.set_exception(exc)
            else:
                future.set_result(proc)


_SPAWNER = _Spawner()


def _spawn(launch: ScriptLaunch) -> subprocess.Popen[bytes]:
    return _SPAWNER.popen(launch)


class ToolWorker:
    """One jailed process holding one table; calls are serialised by a lock."""

    def __init__(self, source: TableSource, limits: WorkerLimits = WorkerLimits()) -> None:
        self.source = source
        self.limits = limits
        self.generation = 0  # incremented per start: frames from before a restart are gone
        self.restarts = 0
        self.last_used = time.monotonic()
        self.startup_s = 0.0
        self.lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._launch: ScriptLaunch | None = None
        self._buffer = bytearray()
        self._next_id = 0

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the process and wait until the table is loaded (no-op when running)."""
        if self.alive:
            return
        self.stop()
        started = time.monotonic()
        sandbox = Limits(
            memory_mb=self.limits.memory_mb,
            jail=self.limits.jail,
            syscall_filter=self.limits.syscall_filter,
        )
        launch = script_launch(
            WORKER_SCRIPT,
            limits=sandbox,
            files={TABLE_FILE: self.source.path},
            modules=WORKER_MODULES,
        )
        self._launch = launch
        self._proc = _spawn(launch)
        self._buffer.clear()
        job = {
            "child_path": launch.child_path,
            "table": launch.files[TABLE_FILE],
            "read_csv": self.source.read_csv_options(),
            "read_only": launch.read_only,
            "allowed_modules": sorted(sandbox.modules),
            "syscall_filter": sandbox.syscall_filter,
            "cpu_per_call_s": self.limits.cpu_s,
            "cpu_budget_s": self.limits.cpu_budget_s,
            "max_frames": self.limits.max_frames,
            "frame_mb": self.limits.frame_mb,
            "limits": {
                "cpu_s": self.limits.cpu_budget_s,
                "memory_bytes": sandbox.memory_mb * 1024 * 1024,
                "file_bytes": sandbox.file_bytes,
                "open_files": sandbox.open_files,
                "processes": sandbox.processes,
            },
        }
        try:
            self._send(job)
            ready = self._receive(READY_TIMEOUT_S)
        except WorkerFailure:
            self.stop()
            raise
        if not ready.get("ready"):
            self.stop()
            raise WorkerFailure("crash", f"worker did not start: {ready}")
        self.generation += 1
        self.startup_s = time.monotonic() - started
        self.last_used = time.monotonic()

    def ensure_started(self) -> None:
        with self.lock:
            self.start()

    def stop(self) -> None:
        """Kill the process (and everything in its jail) and reap it."""
        proc, self._proc = self._proc, None
        if proc is not None:
            kill_process_group(proc)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        launch, self._launch = self._launch, None
        if launch is not None and launch.workdir is not None:
            shutil.rmtree(launch.workdir, ignore_errors=True)

    # -- calls -----------------------------------------------------------------------------

    def call(self, conv: str, tool: str, args: Any) -> dict[str, Any]:
        """Run one tool call; a failure of the process is an error result of its kind."""
        with self.lock:
            self.last_used = time.monotonic()
            try:
                self.start()
                self._next_id += 1
                self._send(
                    {"id": self._next_id, "op": "call", "conv": conv, "tool": tool, "args": args}
                )
                reply = self._receive(self.limits.wall_s)
            except WorkerFailure as failure:
                self.stop()
                self.restarts += 1
                return render.error_result(str(failure), failure.kind)
            finally:
                self.last_used = time.monotonic()
            result = reply.get("result")
            if not isinstance(result, dict):
                self.stop()
                self.restarts += 1
                return render.error_result("worker sent no result", "crash")
            if result.get("error_kind") in ("memory", "crash", "tampering"):
                self.stop()  # its state is suspect: the next call starts afresh
                self.restarts += 1
            return result

    def drop(self, conv: str) -> None:
        """Forget a conversation's frames in the process."""
        with self.lock:
            if self.alive:
                with contextlib.suppress(WorkerFailure):
                    self._send({"op": "drop", "conv": conv})

    def max_rss_mb(self) -> float:
        """The process's peak resident memory (MB)."""
        with self.lock:
            self.start()
            self._next_id += 1
            self._send({"id": self._next_id, "op": "stats"})
            return float(self._receive(self.limits.wall_s)["max_rss_kb"]) / 1024

    def _send(self, message: Mapping[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise WorkerFailure("crash", "worker is not running")
        try:
            proc.stdin.write(json.dumps(message).encode() + b"\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise self._died() from exc

    def _receive(self, timeout: float) -> dict[str, Any]:
        proc = self._proc
        if proc is None or proc.stdout is None:
            raise WorkerFailure("crash", "worker is not running")
        deadline = time.monotonic() + timeout
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WorkerFailure("timeout", f"wall-clock limit of {timeout:g}s exceeded")
                if not sel.select(remaining):
                    continue
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise self._died()
                self._buffer += chunk
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer = bytearray(rest)
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError as exc:
            raise WorkerFailure("crash", f"worker sent an unreadable reply: {exc}") from exc
        return parsed if isinstance(parsed, dict) else {}

    def _died(self) -> WorkerFailure:
        proc = self._proc
        code = None
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = proc.wait(timeout=2)
        if code is not None and self._launch is not None and self._launch.signal_as_status:
            code = 128 - code if code > 128 else code
        if code in (-signal.SIGXCPU, -signal.SIGKILL):
            return WorkerFailure("timeout", f"CPU limit of {self.limits.cpu_s:g}s exceeded")
        return WorkerFailure("crash", f"worker exited (status {code})")


# -- the pool --------------------------------------------------------------------------------

_POOLS: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


class WorkerPool:
    """At most ``max_workers`` workers over all tables; conversations stick to one worker."""

    def __init__(
        self,
        *,
        max_table_workers: int = 4,
        idle_s: float = 60.0,
        limits: WorkerLimits = WorkerLimits(),
    ) -> None:
        self.max_workers = max(1, min(os.cpu_count() or 1, max_table_workers))
        self.idle_s = idle_s
        self.limits = limits
        self._workers: list[ToolWorker] = []
        self._assigned: dict[str, ToolWorker] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="csv-workers", daemon=True)
        self._reaper.start()
        _POOLS.add(self)

    def worker_for(self, source: TableSource, conv: str) -> ToolWorker:
        with self._lock:
            worker = self._assigned.get(conv)
            if worker is not None and worker in self._workers:
                return worker
            same = [w for w in self._workers if w.source.sha256 == source.sha256]
            if len(self._workers) < self.max_workers and (
                not same or all(w.lock.locked() for w in same)
            ):
                worker = ToolWorker(source, self.limits)
                self._workers.append(worker)
            elif same:
                load = {id(w): 0 for w in same}
                for assigned in self._assigned.values():
                    if id(assigned) in load:
                        load[id(assigned)] += 1
                worker = min(same, key=lambda w: load[id(w)])
            else:  # at the cap with other tables: the least recently used worker makes room
                victim = min(self._workers, key=lambda w: w.last_used)
                self._workers.remove(victim)
                self._assigned = {c: w for c, w in self._assigned.items() if w is not victim}
                victim.stop()
                worker = ToolWorker(source, self.limits)
                self._workers.append(worker)
            self._assigned[conv] = worker
            return worker

    def release(self, conv: str) -> None:
        """A conversation is over: free its frames."""
        with self._lock:
            worker = self._assigned.pop(conv, None)
        if worker is not None:
            worker.drop(conv)

    def workers(self) -> list[ToolWorker]:
        with self._lock:
            return list(self._workers)

    def close(self) -> None:
        """Stop every worker; no process is left behind."""
        self._closed.set()
        with self._lock:
            workers, self._workers = self._workers, []
            self._assigned.clear()
        for worker in workers:
            with worker.lock:
                worker.stop()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _reap(self) -> None:
        while not self._closed.wait(min(5.0, max(0.05, self.idle_s / 4))):
            now = time.monotonic()
            for worker in self.workers():
                if now - worker.last_used > self.idle_s and worker.lock.acquire(blocking=False):
                    try:
                        worker.stop()  # restarted on its next call, frames replayed
                    finally:
                        worker.lock.release()


@atexit.register
def _close_all() -> None:
    for pool in list(_POOLS):
        pool.close()


# -- the result cache ------------------------------------------------------------------------


def cache_key(table_sha256: str, tool: str, args: Any, lineage: str) -> str:
    """sha256 of (table, tool, canonical arguments, input-frame lineage).

    Frame names are left out: the lineage says what the input frame holds, whatever
    an attempt called it, and the name a result is saved under does not change it.
    """
    canonical = (
        {k: v for k, v in args.items() if k not in ("save_as", "frame")}
        if isinstance(args, dict)
        else args
    )
    text = json.dumps(
        [table_sha256, tool, canonical, lineage], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(text.encode()).hexdigest()


def pack(result: Mapping[str, Any]) -> bytes:
    return zlib.compress(dumps(result).encode("utf-8"))


def unpack(blob: bytes) -> dict[str, Any]:
    value = json.loads(zlib.decompress(blob).decode("utf-8"))
    return value if isinstance(value, dict) else {}


class ToolCache:
    """Successful results by ``cache_key``: in memory, and in the store's ``tool_cache``."""

    def __init__(self, db_path: str | Path | None = None, *, memory_items: int = 4096) -> None:
        self.db_path = str(db_path) if db_path is not None else None
        self._memory: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._memory_items = memory_items
        self._lock = threading.Lock()
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection | None:
        if self.db_path is None:
            return None
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            hit = self._memory.get(key)
            if hit is not None:
                self._memory.move_to_end(key)
                return hit
        conn = self._conn()
        if conn is None:
            return None
        row = conn.execute("SELECT raw FROM tool_cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        result = unpack(row[0])
        self._remember(key, result)
        return result

    def put(self, key: str, table_sha256: str, tool: str, result: dict[str, Any]) -> None:
        self._remember(key, result)
        conn = self._conn()
        if conn is not None:
            conn.execute(
                "INSERT OR IGNORE INTO tool_cache(key, table_sha256, tool, raw, created_at)"
                " VALUES (?,?,?,?,?)",
                (key, table_sha256, tool, pack(result), now_iso()),
            )

    def _remember(self, key: str, result: dict[str, Any]) -> None:
        with self._lock:
            self._memory[key] = result
            self._memory.move_to_end(key)
            while len(self._memory) > self._memory_items:
                self._memory.popitem(last=False)


# -- one conversation ------------------------------------------------------------------------


@dataclass
class _FrameOrigin:
    tool: str
    args: dict[str, Any]
    lineage: str


@dataclass
class ToolSession:
    """The tools of one conversation over one table: frames, their lineage, replay, cache."""

    pool: WorkerPool
    source: TableSource
    conv: str
    cache: ToolCache | None = None
    max_rows: int = render.DEFAULT_MAX_ROWS
    max_chars: int = render.DEFAULT_MAX_CHARS
    origins: dict[str, _FrameOrigin] = field(default_factory=dict)
    replays: int = 0
    _materialized: set[str] = field(default_factory=set)
    _worker_state: tuple[int, int] = (0, 0)  # (id of the worker, its generation)

    def call(self, tool: str, args: Any) -> ToolOutcome:
        """Run (or serve from the cache) one tool call and render what the model sees."""
        started = time.perf_counter()
        result, hit = self._result(tool, args)
        shown = render.render_result(result, max_rows=self.max_rows, max_chars=self.max_chars)
        duration = (time.perf_counter() - started) * 1000
        return ToolOutcome(tool, args, result, shown, duration, cache_hit=hit)

    def call_json(self, tool: str, arguments: str) -> ToolOutcome:
        """A call whose arguments arrive as JSON text (invalid JSON is a tool error)."""
        try:
            args = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            result = render.error_result(f"arguments are not valid JSON ({exc.msg})")
            shown = render.render_result(result, max_rows=self.max_rows, max_chars=self.max_chars)
            return ToolOutcome(tool, arguments, result, shown, 0.0)
        return self.call(tool, args)

    def close(self) -> None:
        self.pool.release(self.conv)

    def restore(self, calls: Sequence[tuple[str, Any]]) -> None:
        """Know the frames earlier successful calls made (a resumed run): replayed on use."""
        for tool, args in calls:
            try:
                checked = tools.check_args(tool, args)
            except tools.ToolArgError:
                continue
            lineage = self.lineage(tools.input_frame(checked))
            if lineage is not None:
                key = cache_key(self.source.sha256, tool, checked, lineage)
                self._saved(tool, checked, key, materialized=False)

    def lineage(self, frame: str) -> str | None:
        if frame == "df":
            return self.source.sha256
        origin = self.origins.get(frame)
        return origin.lineage if origin is not None else None

    def _result(self, tool: str, args: Any) -> tuple[dict[str, Any], bool]:
        try:
            checked = tools.check_args(tool, args)
        except tools.ToolArgError as exc:
            return render.error_result(str(exc)), False
        lineage = self.lineage(tools.input_frame(checked))
        key = cache_key(self.source.sha256, tool, checked, lineage) if lineage else None
        if key is not None and self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                self._saved(tool, checked, key, materialized=False)
                return cached, True
        result = self._run(tool, checked)
        if not render.is_error(result) and key is not None:
            if self.cache is not None:
                self.cache.put(key, self.source.sha256, tool, result)
            self._saved(tool, checked, key, materialized=True)
        return result, False

    def _saved(self, tool: str, args: dict[str, Any], key: str, *, materialized: bool) -> None:
        name = tools.output_frame(tool, args)
        if name is None:
            return
        self.origins[name] = _FrameOrigin(tool, args, key)
        if materialized:
            self._materialized.add(name)
        else:
            self._materialized.discard(name)

    def _worker(self) -> ToolWorker:
        worker = self.pool.worker_for(self.source, self.conv)
        state = (id(worker), worker.generation)
        if state != self._worker_state:
            self._materialized.clear()
        return worker

    def _run(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        worker = self.pool.worker_for(self.source, self.conv)
        try:
            worker.ensure_started()  # a process that died since the last call: a new generation
        except WorkerFailure as died:
            return render.error_result(str(died), died.kind)
        worker = self._worker()
        failure = self._materialize(worker, tools.input_frame(args), depth=0)
        if failure is not None:
            return failure
        result = worker.call(self.conv, tool, args)
        self._worker_state = (id(worker), worker.generation)
        if result.get("error_kind") in ("timeout", "memory", "crash", "tampering"):
            self._materialized.clear()  # the worker restarts: its frames are gone
        return result

    def _materialize(self, worker: ToolWorker, frame: str, depth: int) -> dict[str, Any] | None:
        """Rebuild ``frame`` (and what it was made from) in the worker by replaying calls."""
        if frame == "df" or frame in self._materialized or frame not in self.origins:
            return None
        if depth > tools.MAX_FRAMES:
            return render.error_result(f"frame {tools.quote(frame)} cannot be rebuilt", "crash")
        origin = self.origins[frame]
        failure = self._materialize(worker, tools.input_frame(origin.args), depth + 1)
        if failure is not None:
            return failure
        self.replays += 1
        result = worker.call(self.conv, origin.tool, origin.args)
        self._worker_state = (id(worker), worker.generation)
        if render.is_error(result):
            return render.error_result(
                f"rebuilding frame {tools.quote(frame)} failed: {result.get('error')}",
                str(result.get("error_kind") or "crash"),
            )
        self._materialized.add(frame)
        return None


def record_tool_call(
    conn: sqlite3.Connection,
    outcome: ToolOutcome,
    *,
    table_sha256: str,
    call_id: str,
    run_id: int | None = None,
    sample_id: int | None = None,
) -> int:
    """Store one call in ``tool_calls``: raw result (zlib JSON) and the text shown."""
    cursor = conn.execute(
        "INSERT INTO tool_calls(run_id, sample_id, call_id, table_sha256, tool, args, raw, shown,"
        " duration_ms, error_kind, cache_hit, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            run_id,
            sample_id,
            call_id,
            table_sha256,
            outcome.tool,
            dumps(outcome.args),
            pack(outcome.result),
            outcome.shown,
            round(outcome.duration_ms, 3),
            outcome.error_kind,
            int(outcome.cache_hit),
            now_iso(),
        ),
    )
    return int(cursor.lastrowid or 0)


def with_limits(limits: WorkerLimits, **changes: Any) -> WorkerLimits:
    return replace(limits, **changes)
