"""The persistent tool worker: jailed, limits as tool errors, restart + replay, pool, cache."""

from __future__ import annotations

import hashlib
import os
import signal
import time
import zlib
from pathlib import Path

import pytest

from workbench.core.csv_agent.render import render_result
from workbench.core.csv_agent.tables import bundled_tables
from workbench.core.csv_agent.worker import (
    TableSource,
    ToolCache,
    ToolSession,
    WorkerLimits,
    WorkerPool,
    record_tool_call,
    unpack,
)
from workbench.core.sandbox import Isolation, jail_status
from workbench.core.store import Store

TIPS = bundled_tables()["tips"]


def _source(path: Path) -> TableSource:
    return TableSource(str(path), hashlib.sha256(path.read_bytes()).hexdigest())


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """Two 20,000-value columns (their crosstab is 400M cells) and a long run of x's."""
    path = tmp_path / "hostile.csv"
    n = 20_000
    rows = [f"{i},{(i * 7919) % n},{'x' * 40 if i < 3 else 'y'}" for i in range(n)]
    path.write_text("a,b,text\n" + "\n".join(rows) + "\n")
    return path


def test_worker_runs_jailed_and_matches_in_process_results() -> None:
    with WorkerPool() as pool:
        session = ToolSession(pool, _source(TIPS), "c1")
        out = session.call("groupby_agg", {"by": ["day"], "column": "tip", "agg": "mean"})
        assert out.error_kind is None and "mean_tip" in out.shown
        import pandas as pd

        want = pd.read_csv(TIPS).groupby("day")["tip"].mean()
        got = {row[0]: row[1] for row in out.result["rows"]}
        assert got == pytest.approx(want.to_dict())
        worker = pool.workers()[0]
        assert worker._launch is not None
        if jail_status().isolation is Isolation.BWRAP:
            assert worker._launch.isolation is Isolation.BWRAP
        assert worker.max_rss_mb() < 400


@pytest.mark.parametrize(
    ("tool", "args", "kind"),
    [
        ("crosstab", {"a": "a", "b": "b"}, "memory"),
        ("filter", {"conditions": [{"column": "text", "op": "contains", "value": r"(x+x+)+\1y"}]}, "timeout"),
        ("compute", {"expression": "10**10**10"}, "timeout"),
    ],
)  # fmt: skip
def test_limits_are_tool_errors_and_the_worker_restarts(
    hostile: Path, tool: str, args: dict, kind: str
) -> None:
    limits = WorkerLimits(wall_s=2.0, cpu_s=1.0)
    with WorkerPool(limits=limits) as pool:
        session = ToolSession(pool, _source(hostile), "c1")
        made = session.call(
            "filter", {"conditions": [{"column": "a", "op": "<", "value": 10}], "save_as": "f1"}
        )
        assert made.error_kind is None
        started = time.monotonic()
        out = session.call(tool, args)
        assert out.error_kind == kind, out.result
        assert time.monotonic() - started < 8
        assert out.shown.startswith(f"error ({kind}):")
        worker = pool.workers()[0]
        assert worker.restarts == 1
        after = session.call("head", {"n": 3, "frame": "f1"})  # a fresh worker, f1 replayed
        assert after.error_kind is None and after.result["rows"] == made.result["rows"][:3]
        assert session.replays == 1


def test_a_crash_mid_conversation_replays_the_same_frames() -> None:
    with WorkerPool() as pool:
        session = ToolSession(pool, _source(TIPS), "c1")
        session.call(
            "filter",
            {"conditions": [{"column": "day", "op": "==", "value": "Sun"}], "save_as": "sun"},
        )
        session.call(
            "groupby_agg",
            {"by": ["size"], "column": "tip", "agg": "sum", "frame": "sun", "save_as": "g"},
        )
        before = session.call("sort_top", {"column": "sum_tip", "k": 3, "frame": "g"})
        worker = pool.workers()[0]
        pid = worker.pid
        assert pid is not None
        for child in _descendants(pid) | {pid}:
            os.kill(child, signal.SIGKILL)
        time.sleep(0.2)
        after = session.call(
            "sort_top", {"column": "sum_tip", "k": 3, "frame": "g", "ascending": True}
        )
        again = session.call("sort_top", {"column": "sum_tip", "k": 3, "frame": "g"})
        assert after.error_kind is None and session.replays == 2  # sun, then g
        assert again.result == before.result and worker.generation == 2


def test_no_process_is_left_after_the_pool_closes() -> None:
    before = _descendants(os.getpid())
    pool = WorkerPool(max_table_workers=2)
    sessions = [ToolSession(pool, _source(TIPS), f"c{i}") for i in range(3)]
    for s in sessions:
        assert s.call("head", {"n": 1}).error_kind is None
    assert len(_descendants(os.getpid()) - before) >= 2
    assert len(pool.workers()) <= 2
    pool.close()
    time.sleep(0.1)
    assert _descendants(os.getpid()) - before == set()


def test_idle_workers_stop_and_restart_on_demand() -> None:
    with WorkerPool(idle_s=0.2) as pool:
        session = ToolSession(pool, _source(TIPS), "c1")
        session.call(
            "filter", {"conditions": [{"column": "size", "op": ">", "value": 4}], "save_as": "big"}
        )
        worker = pool.workers()[0]
        deadline = time.monotonic() + 5
        while worker.alive and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not worker.alive
        out = session.call("schema", {"frame": "big"})
        assert out.error_kind is None and out.result["frame_rows"] == 9 and session.replays == 1


def test_the_cache_serves_repeats_across_attempts(tmp_path: Path) -> None:
    store = Store(tmp_path / "wb.db")
    source = _source(TIPS)
    calls = [
        (
            "filter",
            {"conditions": [{"column": "smoker", "op": "==", "value": "Yes"}], "save_as": "s"},
        ),
        ("groupby_agg", {"by": ["day"], "column": "tip", "agg": "max", "frame": "s"}),
    ]
    with WorkerPool() as pool:
        first = ToolSession(pool, source, "attempt-0", cache=ToolCache(store.path))
        outs = [first.call(t, a) for t, a in calls]
        assert not any(o.cache_hit for o in outs)
        # another attempt, a fresh process-level cache: served from the store, frame names differ
        second = ToolSession(pool, source, "attempt-1", cache=ToolCache(store.path))
        renamed = [
            (t, {**a, "save_as": "smokers"} if "save_as" in a else {**a, "frame": "smokers"})
            for t, a in calls
        ]
        again = [second.call(t, a) for t, a in renamed]
        assert all(o.cache_hit for o in again)
        assert [o.result for o in again] == [o.result for o in outs]
        third = second.call("head", {"n": 2, "frame": "smokers"})  # materialised by replay
        assert third.error_kind is None and second.replays == 1
    assert store.conn.execute("SELECT COUNT(*) FROM tool_cache").fetchone()[0] == 3


def test_invalid_json_arguments_are_tool_errors() -> None:
    with WorkerPool() as pool:
        session = ToolSession(pool, _source(TIPS), "c1")
        out = session.call_json("head", '{"n": 3')
        assert out.error_kind == "invalid_args" and "not valid JSON" in out.shown
        assert pool.workers() == []  # nothing started for a call that cannot run


def test_tool_calls_store_raw_and_shown(tmp_path: Path) -> None:
    store = Store(tmp_path / "wb.db")
    with WorkerPool() as pool:
        session = ToolSession(pool, _source(TIPS), "c1", max_rows=5)
        out = session.call("head", {"n": 50})
    assert out.shown.endswith("[truncated: 5 of 50 rows shown]")
    with store.transaction() as conn:
        row_id = record_tool_call(conn, out, table_sha256=_source(TIPS).sha256, call_id="call_1")
    raw, shown, kind = store.conn.execute(
        "SELECT raw, shown, error_kind FROM tool_calls WHERE id = ?", (row_id,)
    ).fetchone()
    assert unpack(raw) == out.result and len(out.result["rows"]) == 50
    assert zlib.decompress(raw)  # zlib-compressed JSON
    assert shown == out.shown and kind is None


def test_truncation_notes_are_exact_and_deterministic() -> None:
    rows = [[i, "v" * 300] for i in range(5312)]
    result = {"kind": "table", "columns": ["i", "text"], "rows": rows[:1000], "n_rows": 5312}
    text = render_result(result, max_rows=20, max_chars=4000)
    full = render_result(result, max_rows=20, max_chars=10**9)
    assert text.endswith(
        f"\n[truncated: 20 of 5,312 rows shown; 4,000 of {len(full) - len(full.splitlines()[-1]) - 1:,} characters]"
    )
    assert text == render_result(result, max_rows=20, max_chars=4000)
    small = render_result({"kind": "table", "columns": ["a"], "rows": [[1], [2]], "n_rows": 2})
    assert small == "a\n1\n2\n[2 rows]"
    value = render_result({"kind": "text", "text": "x" * 10}, max_chars=4)
    assert value == "xxxx\n[truncated: 4 of 10 characters]"


def test_a_worker_outlives_the_thread_that_started_it() -> None:
    """The jail's parent-death signal follows the forking thread: workers must not die with it."""
    import threading

    with WorkerPool() as pool:
        session = ToolSession(pool, _source(TIPS), "c1")
        thread = threading.Thread(target=session.call, args=("head", {"n": 1}))
        thread.start()
        thread.join()
        time.sleep(0.3)
        worker = pool.workers()[0]
        assert worker.alive
        out = session.call("head", {"n": 2})
        assert out.error_kind is None and worker.generation == 1 and worker.restarts == 0
