"""Endpoint pools (``base_urls``): dispatch, affinity, health and failover over real HTTP.

Several loopback stub replicas serve one logical openai-compatible provider; the
engine, the adapters and the store are the real ones.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stub_server import StubServer
from workbench.core.engine import (
    Engine,
    Event,
    PoolStalled,
    PoolTiming,
    ReplicaHealth,
    RetryPolicy,
    RunStats,
    WorkItem,
    item_key,
)
from workbench.core.errors import ConfigError
from workbench.core.providers import Message, ModelRequest, ProviderRegistry
from workbench.core.settings import ProviderSettings, Settings, parse_settings
from workbench.core.store import Store

FAST_PROBES = PoolTiming(probe_first_s=0.05, probe_cap_s=0.2, probe_timeout_s=2.0)


@pytest.fixture
def replicas(request: pytest.FixtureRequest) -> Iterator[list[StubServer]]:
    n = getattr(request, "param", 3)
    servers = [StubServer(latency=0.01).start() for _ in range(n)]
    yield servers
    for s in servers:
        s.stop()


def make(
    tmp_path: Path, servers: list[StubServer], events: list[Event] | None = None, **ps: Any
) -> tuple[Engine, Store, ProviderRegistry]:
    options: dict[str, Any] = {
        "kind": "openai-compatible",
        "base_urls": tuple(s.openai_base_url for s in servers),
        "max_concurrency": 4,
        "max_attempts": 6,
        "timeout_s": 5.0,
    }
    options.update(ps)
    settings = Settings(providers={"pool": ProviderSettings(**options)})
    registry = ProviderRegistry(settings)
    store = Store(tmp_path / "wb.db")
    engine = Engine(
        store,
        registry,
        settings,
        events.append if events is not None else None,
        retry=RetryPolicy(base_s=0.001, cap_s=0.01),
        pool_timing=FAST_PROBES,
    )
    return engine, store, registry


def work(n: int, samples: int = 1, tag: str = "q") -> list[WorkItem]:
    return [
        WorkItem(
            key=item_key("solve", f"p{i}", s),
            stage="solve",
            role="solver",
            model_ref="pool:stub-model",
            sample_index=s,
            request=ModelRequest(
                model="stub-model",
                messages=(Message("user", f"{tag} {i}"),),
                temperature=1.0,
            ),
        )
        for i in range(n)
        for s in range(samples)
    ]


def endpoints(store: Store, run_id: int) -> dict[str, str]:
    """item key -> the replica that served its ok call."""
    rows = store.conn.execute(
        "SELECT item_key, endpoint FROM calls WHERE run_id=? AND status='ok'", (run_id,)
    )
    return {r[0]: r[1] for r in rows}


def paid_per_question(servers: list[StubServer]) -> Counter[str]:
    """What each replica billed, by the question it answered."""
    paid: Counter[str] = Counter()
    for s in servers:
        for r in s.requests:
            if r.outcome == "ok":
                paid[r.body["messages"][-1]["content"]] += 1
    return paid


def test_rendezvous_moves_only_the_keys_of_a_removed_replica() -> None:
    from workbench.core.engine.pool import rendezvous

    urls = [f"http://gpu{i}:8000/v1" for i in range(4)]
    keys = [f"gsm8k/{i}" for i in range(400)]
    before = {k: urls[rendezvous(k, urls)] for k in keys}
    assert min(list(before.values()).count(u) for u in urls) > 60  # spread over all four
    fewer = urls[:2] + urls[3:]
    after = {k: fewer[rendezvous(k, fewer)] for k in keys}
    moved = {k for k in keys if before[k] != after[k]}
    assert moved == {k for k in keys if before[k] == urls[2]}


def test_base_url_and_base_urls_together_is_one_line_error() -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings(
            {
                "providers": {
                    "vllm": {
                        "kind": "openai-compatible",
                        "base_url": "http://gpu1:8000/v1",
                        "base_urls": ["http://gpu2:8000/v1"],
                    }
                }
            }
        )
    assert "\n" not in str(err.value)
    assert "providers.vllm" in str(err.value) and "not both" in str(err.value)


async def test_least_outstanding_spreads_evenly_and_records_the_replica(
    tmp_path: Path, replicas: list[StubServer]
) -> None:
    events: list[Event] = []
    engine, store, registry = make(tmp_path, replicas, events)
    run_id = store.create_run("t", "test", {})
    assert (await engine.run_items(run_id, work(90))).status == "done"
    served = endpoints(store, run_id)
    assert len(served) == 90
    by_replica = Counter(served.values())
    assert set(by_replica) == {s.openai_base_url for s in replicas}
    for s in replicas:  # fair: each within a third of its share
        assert 20 <= by_replica[s.openai_base_url] <= 40, by_replica
        assert s.paid == by_replica[s.openai_base_url]  # the row names who really served
    # the monitor's numbers: per replica, from the last snapshot
    last = [e for e in events if isinstance(e, RunStats)][-1]
    assert {(r.endpoint, r.served, r.up, r.in_flight) for r in last.replicas} == {
        (s.openai_base_url, by_replica[s.openai_base_url], True, 0) for s in replicas
    }
    assert all(r.limit == 4 and r.latency_p50_ms for r in last.replicas)
    base_urls = {r[0] for r in store.conn.execute("SELECT base_url FROM calls")}
    assert base_urls == {""}  # the logical provider: no replica in the cache key
    await registry.aclose()


@pytest.mark.parametrize("replicas", [4], indirect=True)
async def test_affinity_keeps_a_problem_on_one_replica(
    tmp_path: Path, replicas: list[StubServer]
) -> None:
    engine, store, registry = make(tmp_path, replicas, affinity="problem", max_concurrency=64)
    run_id = store.create_run("t", "test", {})
    assert (await engine.run_items(run_id, work(24, samples=4))).status == "done"
    served = endpoints(store, run_id)
    per_problem: dict[str, set[str]] = {}
    for key, endpoint in served.items():
        per_problem.setdefault(key.split("/")[1], set()).add(endpoint)
    assert len(per_problem) == 24
    assert all(len(e) == 1 for e in per_problem.values()), per_problem
    assert len({next(iter(e)) for e in per_problem.values()}) >= 3  # problems spread out
    await registry.aclose()


async def test_a_failing_replica_goes_down_is_probed_and_comes_back(
    tmp_path: Path, replicas: list[StubServer]
) -> None:
    sick = replicas[2]
    sick.healthy = False
    sick.fail_when(lambda path, body: True, "status", status=503)
    events: list[Event] = []
    engine, store, registry = make(tmp_path, replicas, events, max_concurrency=2)

    def heal() -> None:
        sick.wait_for(lambda s: s.probes >= 2, timeout=20)
        sick.clear_faults()
        sick.healthy = True

    healer = threading.Thread(target=heal)
    healer.start()
    run_id = store.create_run("t", "test", {})
    end = await engine.run_items(run_id, work(300))
    healer.join()
    assert end.status == "done", end
    served = endpoints(store, run_id)
    assert len(served) == 300
    health = [(e.endpoint, e.up) for e in events if isinstance(e, ReplicaHealth)]
    assert health[:2] == [(sick.openai_base_url, False), (sick.openai_base_url, True)]
    failed = [r for r in sick.requests if r.outcome != "ok"]
    # down after five in a row; only the one other request already in flight (limit 2) also
    # failed: nothing more was sent while it was down
    assert 5 <= len(failed) <= 6
    assert sick.paid > 0  # back in rotation after the probe answered
    assert Counter(served.values())[sick.openai_base_url] == sick.paid
    errors = store.conn.execute(
        "SELECT COUNT(*) FROM calls WHERE run_id=? AND status!='ok'", (run_id,)
    ).fetchone()[0]
    assert errors == 0  # the five failed attempts were retried on others
    await registry.aclose()


async def test_a_replica_killed_mid_run_loses_nothing_and_pays_nothing_twice(
    tmp_path: Path, replicas: list[StubServer]
) -> None:
    victim = replicas[1]
    events: list[Event] = []
    engine, store, registry = make(tmp_path, replicas, events, max_concurrency=4)

    def kill() -> None:
        victim.wait_for(lambda s: s.paid >= 15, timeout=20)
        victim.healthy = False
        victim.fail_when(lambda path, body: True, "drop")  # in flight: hung up, unanswered
        victim.stop()  # then nothing listens at all

    killer = threading.Thread(target=kill)
    killer.start()
    run_id = store.create_run("t", "test", {})
    end = await engine.run_items(run_id, work(240))
    killer.join()
    assert end.status == "done", end
    assert len(endpoints(store, run_id)) == 240  # 0 lost
    paid = paid_per_question(replicas)
    assert len(paid) == 240 and set(paid.values()) == {1}  # 0 paid twice
    ok_calls = store.conn.execute(
        "SELECT COUNT(*) FROM calls WHERE run_id=? AND status='ok'", (run_id,)
    ).fetchone()[0]
    assert ok_calls == 240
    assert (victim.openai_base_url, False) in [
        (e.endpoint, e.up) for e in events if isinstance(e, ReplicaHealth)
    ]
    await registry.aclose()


async def test_cache_hits_across_replicas(tmp_path: Path, replicas: list[StubServer]) -> None:
    engine, store, registry = make(tmp_path, replicas)
    first = store.create_run("a", "test", {})
    assert (await engine.run_items(first, work(30))).status == "done"
    sent = sum(s.total for s in replicas)
    # a second workspace config listing the replicas in another order: same logical provider
    engine2, _, registry2 = make(tmp_path, list(reversed(replicas)))
    second = store.create_run("b", "test", {})
    assert (await engine2.run_items(second, work(30))).status == "done"
    assert sum(s.total for s in replicas) == sent
    hits = store.conn.execute(
        "SELECT COUNT(*) FROM calls WHERE run_id=? AND cache_hit=1", (second,)
    ).fetchone()[0]
    assert hits == 30
    await registry.aclose()
    await registry2.aclose()


@pytest.mark.parametrize("replicas", [2], indirect=True)
async def test_every_replica_down_pauses_the_run_until_one_returns(
    tmp_path: Path, replicas: list[StubServer]
) -> None:
    for s in replicas:
        s.healthy = False
        s.fail_when(lambda path, body: True, "status", status=502)
    events: list[Event] = []
    engine, store, registry = make(
        tmp_path, replicas, events, max_attempts=20, pool_down_timeout_s=0.2
    )
    back = replicas[0]

    def heal() -> None:
        import time

        deadline = time.monotonic() + 20
        while not any(isinstance(e, PoolStalled) for e in events):
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        assert engine.paused is False  # the user's pause flag is untouched
        back.clear_faults()
        back.healthy = True

    healer = threading.Thread(target=heal)
    healer.start()
    run_id = store.create_run("t", "test", {})
    end = await engine.run_items(run_id, work(6))
    healer.join()
    assert end.status == "done", end
    stalls = [(e.stalled, e.provider) for e in events if isinstance(e, PoolStalled)]
    assert stalls == [(True, "pool"), (False, "pool")]
    assert "every replica has been down" in next(
        e.message for e in events if isinstance(e, PoolStalled)
    )
    assert set(endpoints(store, run_id).values()) == {back.openai_base_url}
    await registry.aclose()
