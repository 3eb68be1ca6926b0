"""The store: migrations, pragmas, transactions, concurrent writers, run totals."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from workbench.core.errors import StoreError
from workbench.core.schema import LATEST_VERSION
from workbench.core.store import Store, now_iso


def test_new_store_is_migrated_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    assert store.version == LATEST_VERSION
    assert store.scalar("PRAGMA journal_mode") == "wal"
    assert store.scalar("PRAGMA foreign_keys") == 1
    tables = set(store.table_names())
    for name in (
        "datasets",
        "problems",
        "prompts",
        "prompt_versions",
        "runs",
        "calls",
        "samples",
        "grades",
        "labels",
        "difficulty",
        "batches",
        "problem_sets",
    ):
        assert name in tables
    # reopening applies nothing new
    assert Store(tmp_path / "w.db").migrate() == []


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    with store.transaction():
        store.conn.execute(
            "INSERT INTO schema_version VALUES (?, 'future', ?)", (LATEST_VERSION + 5, now_iso())
        )
    store.close()
    with pytest.raises(StoreError, match="newer than this workbench"):
        Store(tmp_path / "w.db")


def test_not_a_database_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_text("this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"bad\.db"):
        Store(bad)


def test_transaction_rolls_back_and_nests(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    with pytest.raises(RuntimeError), store.transaction():
        store.create_run("a", "calibration", {})
        raise RuntimeError("boom")
    assert store.scalar("SELECT COUNT(*) FROM runs") == 0
    with store.transaction():
        store.create_run("b", "calibration", {})  # nested transaction joins the outer one
    assert store.scalar("SELECT COUNT(*) FROM runs") == 1


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    with pytest.raises(sqlite3.IntegrityError), store.transaction():
        store.insert(
            "samples",
            {
                "run_id": 999,
                "stage": "s",
                "item_key": "k",
                "status": "done",
                "created_at": now_iso(),
                "updated_at": now_iso(),
            },
        )


def _call_row(run_id: int, i: int, cost: float | None) -> dict[str, object]:
    return {
        "run_id": run_id,
        "item_key": f"k{i}",
        "provider": "p",
        "model": "m",
        "request_hash": f"h{i}",
        "request": "{}",
        "status": "ok",
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": cost,
        "created_at": now_iso(),
    }


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    """An engine thread and a UI thread writing at once: every row lands."""
    path = tmp_path / "w.db"
    main = Store(path)
    run_id = main.create_run("r", "calibration", {})
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            store = Store(path, migrate=False)
            for batch in range(20):
                with store.transaction():
                    for j in range(25):
                        store.insert("calls", _call_row(run_id, offset + batch * 25 + j, 0.001))
            store.close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k * 10_000,)) for k in range(4)]
    for t in threads:
        t.start()
    for _ in range(50):  # the "UI" keeps labelling and reading meanwhile
        main.create_run("ui", "playground", {})
        main.run_totals(run_id)
    for t in threads:
        t.join()
    assert not errors
    totals = main.run_totals(run_id)
    assert totals.n_calls == 4 * 20 * 25
    assert totals.cost_usd == pytest.approx(2.0)
    assert main.scalar("PRAGMA integrity_check") == "ok"


def test_run_totals_ignore_cache_hits_and_count_unpriced(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    run_id = store.create_run("r", "calibration", {})
    with store.transaction():
        store.insert("calls", _call_row(run_id, 1, 0.5))
        store.insert("calls", _call_row(run_id, 2, None))
        store.insert("calls", {**_call_row(run_id, 3, 0.0), "cache_hit": 1})
    t = store.run_totals(run_id)
    assert (t.n_calls, t.n_cache_hits, t.n_unpriced) == (3, 1, 1)
    assert t.cost_usd == pytest.approx(0.5)
    assert t.input_tokens == 20  # the cache hit's tokens were not paid for


def test_done_item_keys_and_payload_merge(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    run_id = store.create_run("r", "calibration", {})
    with store.transaction():
        for key, status in (("a", "done"), ("b", "error"), ("c", "invalid")):
            store.insert(
                "samples",
                {
                    "run_id": run_id,
                    "stage": "solve",
                    "item_key": key,
                    "status": status,
                    "payload": '{"x": 1}',
                    "created_at": now_iso(),
                    "updated_at": now_iso(),
                },
            )
    assert store.done_item_keys(run_id, "solve") == {"a", "c"}
    sid = store.samples(run_id, "solve", status="done")[0]["id"]
    store.update_sample_payload(sid, {"y": 2})
    assert store.samples(run_id, status="done")[0]["payload"] == {"x": 1, "y": 2}


def test_run_status_timestamps(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    run_id = store.create_run("r", "calibration", {"kind": "calibration"}, budget_usd=1.5)
    store.set_run_status(run_id, "running")
    first_start = store.get_run(run_id)["started_at"]
    store.set_run_status(run_id, "stopped: budget")
    store.set_run_status(run_id, "running")  # resumed: keeps its first start time
    assert store.get_run(run_id)["finished_at"] is None
    store.set_run_status(run_id, "stopped: budget")
    run = store.get_run(run_id)
    assert run["started_at"] == first_start
    assert run["status"] == "stopped: budget" and run["finished_at"] and run["started_at"]
    assert run["config"] == {"kind": "calibration"} and run["budget_usd"] == 1.5
    with pytest.raises(StoreError, match="no run with id 42"):
        store.get_run(42)
