"""Engine throughput vs a bare AsyncOpenAI loop, against the loopback stub (50 ms latency).

    .venv/bin/python bench/engine_throughput.py [--requests 5000] [--concurrency 200]

The stub runs in its own process (so its CPU does not share our GIL).  Rounds
alternate: bare loop (asyncio + semaphore, no storage, the SDK's default httpx
transport), then the engine (journal and cache on, a real store file in a tmp
dir, the adapters' aiohttp transport, a listener receiving every event).
Every engine round uses fresh prompts, so nothing is served from the cache.  The engine
runs twice: with the OpenAI-compatible adapter's direct transport (the default), and
through the openai SDK as before (``USE_SDK``), which pays the same per-request SDK work
as the bare loop, so that ratio is the engine's own overhead.
Prints each round, the best of each, the ratio, and peak RSS.
Targets: engine >= 0.9x the bare default loop (>= 1.5x with aiohttp), >= 0.95x the bare
aiohttp loop (issue 17), peak RSS < 300 MB; print the load average beside the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STUB = """
import sys
from tests.stub_server import StubServer
server = StubServer(latency=float(sys.argv[1]), log_requests=False).start()
print(server.port, flush=True)
sys.stdin.read()
"""


def start_stub(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", STUB, str(latency)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    port = proc.stdout.readline().strip()
    return proc, f"http://127.0.0.1:{port}/v1"


Result = tuple[float, float]  # (requests per second, client CPU microseconds per request)


def _result(n: int, wall: float, cpu: float) -> Result:
    return n / wall, cpu / n * 1e6


async def bare_loop(
    base_url: str, n: int, concurrency: int, tag: str, *, aiohttp: bool = False
) -> Result:
    import openai

    http_client = openai.DefaultAioHttpClient() if aiohttp else None
    client = openai.AsyncOpenAI(
        api_key="bench",
        base_url=base_url,
        http_client=http_client,
        timeout=60.0,  # the default 5 s connect timeout trips on a loaded 2-core box
    )
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await client.chat.completions.create(
                model="bench-model",
                messages=[{"role": "user", "content": f"{tag} question {i}"}],
                max_tokens=64,
            )

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(i) for i in range(n)))
    result = _result(n, time.perf_counter() - start, time.process_time() - cpu)
    await client.close()
    return result


async def engine_run(
    base_url: str, n: int, concurrency: int, tag: str, workdir: Path, *, sdk: bool = False
) -> Result:
    from workbench.core.engine import Engine, Event, WorkItem, item_key
    from workbench.core.providers import Message, ModelRequest, ProviderRegistry, openai_compatible
    from workbench.core.settings import ProviderSettings, Settings
    from workbench.core.store import Store

    settings = Settings(
        providers={
            "bench": ProviderSettings(
                kind="openai-compatible",
                base_url=base_url,
                max_concurrency=concurrency,
                timeout_s=60,
            )
        }
    )
    openai_compatible.USE_SDK = sdk  # the adapter's transport: direct aiohttp, or the SDK
    registry = ProviderRegistry(settings)
    store = Store(workdir / f"{tag}.db")
    events = [0]

    def listener(event: Event) -> None:
        events[0] += 1

    engine = Engine(store, registry, settings, listener)
    run_id = store.create_run(tag, "bench", {})
    items = [
        WorkItem(
            key=item_key("solve", f"p{i}"),
            stage="solve",
            role="solver",
            model_ref="bench:bench-model",
            request=ModelRequest(
                model="bench-model",
                messages=(Message("user", f"{tag} question {i}"),),
                max_tokens=64,
            ),
        )
        for i in range(n)
    ]
    start, cpu = time.perf_counter(), time.process_time()
    end = await engine.run_items(run_id, items)
    result = _result(n, time.perf_counter() - start, time.process_time() - cpu)
    assert end.status == "done", end
    totals = store.run_totals(run_id)
    assert totals.n_ok == n and totals.n_cache_hits == 0, totals
    await registry.aclose()
    store.close()
    return result


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    stub, base_url = start_stub(args.latency)
    names = (
        "bare AsyncOpenAI, httpx (default)",
        "bare AsyncOpenAI, aiohttp",
        "engine",
        "engine, openai SDK transport",
    )
    results: dict[str, list[Result]] = {name: [] for name in names}
    n, conc = args.requests, args.concurrency
    try:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(bare_loop(base_url, 200, conc, "warm"))  # imports, connections, stub
            for r in range(args.rounds):
                runs = (
                    bare_loop(base_url, n, conc, f"b{r}"),
                    bare_loop(base_url, n, conc, f"a{r}", aiohttp=True),
                    engine_run(base_url, n, conc, f"e{r}", Path(tmp)),
                    engine_run(base_url, n, conc, f"s{r}", Path(tmp), sdk=True),
                )
                for name, run in zip(names, runs, strict=True):
                    rate, cpu_us = asyncio.run(run)
                    results[name].append((rate, cpu_us))
                    print(f"round {r + 1}: {name:<34} {rate:8.1f} req/s  {cpu_us:6.0f} us CPU/req")
    finally:
        assert stub.stdin is not None
        stub.stdin.close()
        stub.wait(10)
    print(
        f"\n{n} requests, concurrency {conc}, stub latency {args.latency * 1000:.0f} ms (best of {args.rounds})"
    )
    best = {name: max(results[name]) for name in names}
    cpu = {name: min(c for _, c in results[name]) for name in names}
    for name in names:
        print(f"{name:<34} {best[name][0]:8.1f} req/s  {cpu[name]:6.0f} us client CPU/req")
    bare, fast, eng, eng_sdk = (best[name][0] for name in names)
    print(
        f"ratio engine / bare default loop: {eng / bare:.2f}x (target >= 0.9x; >= 1.5x w/ aiohttp)"
    )
    print(f"ratio engine / bare aiohttp loop: {eng / fast:.2f}x (target >= 0.95x)")
    print(
        f"ratio engine through the SDK / bare aiohttp loop: {eng_sdk / fast:.2f}x "
        "(the engine's own overhead, both paying the SDK's per-request work)"
    )
    print(f"client CPU per request, engine / bare default: {cpu[names[2]] / cpu[names[0]]:.2f}x")
    print(f"peak RSS: {peak_rss_mb():.0f} MB (target < 300 MB)")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
