"""A small pool of grader processes with hard per-item timeouts.

Signals only work on the main thread, so sympy cannot be interrupted in a
Textual worker or an engine thread.  Instead each slow comparison runs in a
child process; the calling thread waits on the pipe with a timeout and, if the
child is still busy, kills it and starts a fresh one.  This works from any
thread.  Workers are started with ``spawn`` (forking a threaded process is
unsafe) and reused across calls.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing as mp
import os
import queue
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

from workbench.core.grading.equivalence import worker_main


@dataclass(frozen=True)
class PoolResult:
    """What one task sent to a grader process came back as."""

    status: str  # ok / timeout / error
    value: Any = None  # the worker's result when ok, the message when error


STARTUP_TIMEOUT_S = 120.0

_tracker_lock = threading.Lock()


def _ensure_resource_tracker() -> None:
    """Start multiprocessing's resource tracker against the process's real stderr.

    The tracker hands ``sys.stderr.fileno()`` to its child.  Inside a Textual app
    ``sys.stderr`` is a capture whose fileno is -1, and starting a worker fails with
    "bad value(s) in fds_to_keep"; the tracker, once running, is reused.
    """
    from multiprocessing import resource_tracker

    if sys.__stderr__ is None:
        return
    with _tracker_lock:
        saved = sys.stderr
        try:
            sys.stderr = sys.__stderr__
            resource_tracker.ensure_running()
        finally:
            sys.stderr = saved


class _Worker:
    def __init__(self) -> None:
        _ensure_resource_tracker()
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process: BaseProcess = ctx.Process(
            target=worker_main, args=(child,), daemon=True, name="wb-grader"
        )
        self.process.start()
        child.close()
        self.ready = False

    def ask(self, task: tuple[str, str], timeout_s: float) -> PoolResult:
        try:
            if not self.ready:
                # start-up (importing sympy) must not eat into the item's time limit
                if not self.conn.poll(STARTUP_TIMEOUT_S):
                    return PoolResult("error", "grader process did not start")
                self.conn.recv()
                self.ready = True
            self.conn.send(task)
            if not self.conn.poll(timeout_s):
                return PoolResult("timeout")
            status, value = self.conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            return PoolResult("error", f"grader process died: {type(exc).__name__}")
        return PoolResult(status, value)

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self.conn.send(None)
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
        self.conn.close()


class GraderPool:
    """Run ``(answer, gold)`` comparisons in worker processes; safe from any thread."""

    def __init__(self, size: int | None = None) -> None:
        self.size = size or max(1, min(4, os.cpu_count() or 1))
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(self.size):
            self._add()

    def _add(self) -> None:
        worker = _Worker()
        with self._lock:
            self._all.add(worker)
        self._idle.put(worker)

    def run_one(self, task: tuple[str, str], timeout_s: float) -> PoolResult:
        worker = self._idle.get()
        outcome = worker.ask(task, timeout_s)
        if outcome.status == "ok" or (outcome.status == "error" and worker.process.is_alive()):
            self._idle.put(worker)
            return outcome
        # timed out or died: it may still be computing, so replace it
        with self._lock:
            self._all.discard(worker)
        worker.kill()
        if not self._closed:
            self._add()
        return outcome

    def run(self, tasks: Sequence[tuple[str, str]], timeout_s: float) -> list[PoolResult]:
        """All tasks, in order, using every worker at once."""
        results: list[PoolResult] = [PoolResult("error", "not run")] * len(tasks)
        if not tasks:
            return results
        next_index = iter(range(len(tasks)))
        take = threading.Lock()

        def drain() -> None:
            while True:
                with take:
                    i = next(next_index, None)
                if i is None:
                    return
                results[i] = self.run_one(tasks[i], timeout_s)

        threads = [threading.Thread(target=drain) for _ in range(min(self.size, len(tasks)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers, self._all = list(self._all), set()
        for w in workers:
            w.stop()


_POOL: GraderPool | None = None
_POOL_LOCK = threading.Lock()


def shared_pool() -> GraderPool:
    """The process-wide pool, started on first use and stopped at exit."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = GraderPool()
            atexit.register(_POOL.close)
        return _POOL
