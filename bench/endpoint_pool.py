"""Endpoint pool vs one endpoint at equal total concurrency, and a replica killed mid-run.

    .venv/bin/python bench/endpoint_pool.py [--requests 20000] [--replicas 4] [--per-replica 64]

Each stub replica runs in its own process (50 ms latency).  Rounds, in the same run:

1. single: one stub, one endpoint, max_concurrency = replicas x per-replica (the baseline);
2. pool: ``base_urls`` over the replicas, max_concurrency = per-replica;
3. pool, one replica SIGKILLed once a third of the items are done.

Every round journals to a real store; afterwards it checks 0 lost (every item has a
finished sample) and one ok call per item.  Targets (issue 14): pool >= 0.9x single;
the killed round completes, loses nothing, and takes <= 1.5x the pool round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine_throughput import start_stub  # noqa: E402
from workbench.core.engine import Engine, Event, ItemFinished, WorkItem, item_key  # noqa: E402
from workbench.core.providers import Message, ModelRequest, ProviderRegistry  # noqa: E402
from workbench.core.settings import ProviderSettings, Settings  # noqa: E402
from workbench.core.store import Store  # noqa: E402


def items(n: int, tag: str) -> list[WorkItem]:
    return [
        WorkItem(
            key=item_key("solve", f"p{i}"),
            stage="solve",
            role="solver",
            model_ref="bench:bench-model",
            request=ModelRequest(
                model="bench-model", messages=(Message("user", f"{tag} {i}"),), max_tokens=64
            ),
        )
        for i in range(n)
    ]


async def run_round(
    ps: ProviderSettings,
    n: int,
    tag: str,
    workdir: Path,
    kill: subprocess.Popen[str] | None = None,
) -> tuple[float, int, int]:
    """(seconds, items lost, items with more than one ok call)."""
    settings = Settings(providers={"bench": ps})
    registry = ProviderRegistry(settings)
    store = Store(workdir / f"{tag}.db")
    done = [0]

    def listener(event: Event) -> None:
        if isinstance(event, ItemFinished):
            done[0] += 1
            if kill is not None and done[0] == n // 3:
                os.kill(kill.pid, signal.SIGKILL)

    engine = Engine(store, registry, settings, listener)
    run_id = store.create_run(tag, "bench", {})
    start = time.perf_counter()
    end = await engine.run_items(run_id, items(n, tag))
    took = time.perf_counter() - start
    assert end.status == "done", end
    finished = store.conn.execute(
        "SELECT COUNT(*) FROM samples WHERE run_id=? AND status='done'", (run_id,)
    ).fetchone()[0]
    twice = store.conn.execute(
        "SELECT COUNT(*) FROM (SELECT item_key FROM calls WHERE run_id=? AND status='ok' "
        "GROUP BY item_key HAVING COUNT(*) > 1)",
        (run_id,),
    ).fetchone()[0]
    await registry.aclose()
    store.close()
    return took, n - finished, twice


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=int(os.environ.get("BENCH_SCALE", 20_000)))
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--per-replica", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    n, k, per = args.requests, args.replicas, args.per_replica
    common = {"kind": "openai-compatible", "timeout_s": 60.0}
    stubs = [start_stub(args.latency) for _ in range(k + k)]  # a fresh set for the kill round
    urls = [url for _, url in stubs]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            single = ProviderSettings(**common, base_url=urls[0], max_concurrency=k * per)
            pool = ProviderSettings(**common, base_urls=tuple(urls[:k]), max_concurrency=per)
            killed_pool = ProviderSettings(**common, base_urls=tuple(urls[k:]), max_concurrency=per)
            asyncio.run(run_round(single, 500, "warm", work))
            print(f"load average before: {load()}")
            t_single, lost, twice = asyncio.run(run_round(single, n, "single", work))
            print(f"single endpoint ({k * per} concurrent): {n / t_single:8.1f} req/s "
                  f"({t_single:.1f} s, lost {lost}, paid twice {twice})  load {load()}")  # fmt: skip
            t_pool, lost, twice = asyncio.run(run_round(pool, n, "pool", work))
            print(f"pool of {k} x {per}:               {n / t_pool:8.1f} req/s "
                  f"({t_pool:.1f} s, lost {lost}, paid twice {twice})  load {load()}")  # fmt: skip
            victim = stubs[k + 1][0]
            t_kill, lost_k, twice_k = asyncio.run(
                run_round(killed_pool, n, "killed", work, kill=victim)
            )
            print(f"pool, 1 replica killed:         {n / t_kill:8.1f} req/s "
                  f"({t_kill:.1f} s, lost {lost_k}, paid twice {twice_k})  load {load()}")  # fmt: skip
    finally:
        for proc, _ in stubs:
            if proc.poll() is None:
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(10)
    print(f"\n{n} requests, stub latency {args.latency * 1000:.0f} ms, load average {load()}")
    print(f"ratio pool / single endpoint: {t_single / t_pool:.2f}x (target >= 0.9x)")
    print(
        f"ratio killed / no-failure pool time: {t_kill / t_pool:.2f}x (target <= 1.5x), "
        f"lost {lost_k}, items with two ok calls {twice_k} (target 0, 0)"
    )


if __name__ == "__main__":
    main()
