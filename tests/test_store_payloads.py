"""One copy of each payload in the store: request JSON over 1 KB in ``blobs`` (shared by the
samples of one prompt and by cache hits), an answered call's text in its sample only, and
every reader (cache, explain, retries, archives) gets the full text back."""

from __future__ import annotations

import json
from pathlib import Path

from tests.engine_fakes import FakeProvider, make_engine
from workbench.core.analysis import archive_run
from workbench.core.engine import WorkItem, item_key, request_sql, response_text_sql
from workbench.core.engine.cache import explain, find_cached
from workbench.core.engine.journal import BLOB_MIN_CHARS
from workbench.core.providers import Message, ModelRequest
from workbench.core.store import Store

SHOTS = "".join(f"Question {i}: what is {i} + {i}?\nAnswer: {2 * i}\n\n" for i in range(60))


def work(n: int, samples: int, *, long: bool = True, stage: str = "solve") -> list[WorkItem]:
    prefix = SHOTS if long else ""
    return [
        WorkItem(
            key=item_key(stage, f"p{i}", s),
            stage=stage,
            role="solver",
            model_ref="fake:m",
            sample_index=s,
            request=ModelRequest(
                model="m", messages=(Message("user", f"{prefix}Question: {i} + 1?"),)
            ),
        )
        for i in range(n)
        for s in range(samples)
    ]


def request_text(store: Store, call_id: int) -> str:
    return str(store.scalar(f"SELECT {request_sql()} FROM calls WHERE id=?", (call_id,)))


async def test_a_long_request_is_stored_once_and_read_back_whole(tmp_path: Path) -> None:
    engine, store = make_engine(tmp_path, FakeProvider())
    run_id = store.create_run("t", "test", {})
    items = work(3, samples=4)
    assert len(json.dumps(items[0].request.to_json())) > BLOB_MIN_CHARS
    assert (await engine.run_items(run_id, items)).status == "done"
    rows = store.query("SELECT id, request, request_blob FROM calls ORDER BY id")
    assert len(rows) == 12 and all(r["request"] == "" and r["request_blob"] for r in rows)
    assert store.scalar("SELECT COUNT(*) FROM blobs") == 3  # one per prompt, not per sample
    for r in rows:  # every reader's SQL gives the exact request JSON back
        assert json.loads(request_text(store, r["id"]))["messages"][0]["content"].startswith(
            "Question 0:"
        )
    # a cache hit in another run refers to the same blob
    again = store.create_run("again", "test", {})
    assert (await engine.run_items(again, items)).status == "done"
    assert store.scalar("SELECT SUM(cache_hit) FROM calls WHERE run_id=?", (again,)) == 12
    assert store.scalar("SELECT COUNT(*) FROM blobs") == 3
    # explain (the cache's own diagnosis) reads the request through the blob
    lines = explain(store, again, items[0].key)
    assert lines[-1].startswith("HIT") and any("request.messages" in line for line in lines)


async def test_short_requests_stay_inline(tmp_path: Path) -> None:
    engine, store = make_engine(tmp_path, FakeProvider())
    run_id = store.create_run("t", "test", {})
    assert (await engine.run_items(run_id, work(2, samples=1, long=False))).status == "done"
    rows = store.query("SELECT request, request_blob FROM calls")
    assert all(r["request_blob"] is None and json.loads(r["request"])["model"] == "m" for r in rows)
    assert store.scalar("SELECT COUNT(*) FROM blobs") == 0


async def test_the_answer_is_stored_in_the_sample_and_the_cache_still_returns_it(
    tmp_path: Path,
) -> None:
    engine, store = make_engine(tmp_path, FakeProvider())
    run_id = store.create_run("t", "test", {})
    assert (await engine.run_items(run_id, work(2, samples=1))).status == "done"
    calls = store.query(
        f"SELECT c.id, c.response_text AS raw, c.response, {response_text_sql('c')} AS text, "
        "c.request_hash, s.output FROM calls c JOIN samples s ON s.call_id = c.id"
    )
    for c in calls:
        assert c["raw"] is None  # not a second copy
        assert c["text"] == c["output"] and c["output"].startswith("answer to")
        assert "answer to" not in c["response"]  # nor a third, in the response JSON
    hits = find_cached(store, [c["request_hash"] for c in calls])
    assert {h.response_text for h in hits.values()} == {c["output"] for c in calls}
    response = next(iter(hits.values())).to_response()
    assert response.text.startswith("answer to") and response.finish_reason == "stop"
    # a call with no sample (a preview, a judge) keeps its own text
    result = await engine.call("fake:m", ModelRequest(model="m", messages=(Message("user", "x"),)))
    assert store.scalar("SELECT response_text FROM calls WHERE id=?", (result.call_id,)) == (
        "answer to x"
    )
    engine.close()


async def test_pruning_a_run_drops_only_the_blobs_nobody_else_uses(tmp_path: Path) -> None:
    engine, store = make_engine(tmp_path, FakeProvider())
    first = store.create_run("a", "test", {})
    assert (await engine.run_items(first, work(2, samples=2))).status == "done"
    second = store.create_run("b", "test", {})
    shared = work(1, samples=1)  # the request of first's p0, served from the cache
    assert (await engine.run_items(second, shared)).status == "done"
    store.set_run_status(first, "done")  # type: ignore[arg-type]
    report = archive_run(store, first, tmp_path / "archive", prune=True)
    import pyarrow.parquet as pq

    archived = pq.read_table(Path(report.dir) / "calls").to_pylist()
    assert all(r["request"].startswith("{") and r["response_text"] for r in archived)
    assert store.scalar("SELECT COUNT(*) FROM blobs") == 1  # p1's went with the run
    (hit,) = store.query(f"SELECT {request_sql()} AS request FROM calls WHERE run_id=?", (second,))
    assert json.loads(hit["request"])["model"] == "m"
