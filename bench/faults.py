"""Run time with faulty providers: a fault-free run vs one with 20% mixed faults.

    .venv/bin/python bench/faults.py [--items 1200] [--latency 0.05] [--rate 0.2]

Both runs go through the real engine (journal, cache, budget off, the adaptive
limiter on) to the loopback stub (OpenAI wire format, 50 ms latency) with fresh
prompts.  The faulty run injects, per request: 8% 429s (Retry-After: 1), 6% 500s,
3% malformed 200s and 3% dropped connections (seeded).  Retries use the default
policy (exponential backoff with full jitter from 1 s, Retry-After honoured).
Prints each run's time, the ratio, how often the limiter backed off, and what the
stub saw: items lost (no finished sample) and items paid twice (two 200s for one
prompt).  Target: ratio <= 3x, 0 lost, 0 paid twice.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.stub_server import StubServer  # noqa: E402
from workbench.core.engine import Engine, LimitChanged, WorkItem, item_key  # noqa: E402
from workbench.core.providers import Message, ModelRequest, ProviderRegistry  # noqa: E402
from workbench.core.settings import Price, ProviderSettings, Settings  # noqa: E402
from workbench.core.store import Store  # noqa: E402

#: fault kind -> share of all requests (20% in all)
MIX = {"rate_limit": 0.08, "status": 0.06, "malformed": 0.03, "drop": 0.03}


class Dice:
    """One seeded draw per request, shared by every fault's predicate."""

    def __init__(self, seed: int, scale: float) -> None:
        self.rng = random.Random(seed)
        self.scale = scale
        self.lock = threading.Lock()
        self.draws: dict[int, float] = {}

    def band(self, low: float, high: float) -> Any:
        def hit(path: str, body: dict[str, Any]) -> bool:
            with self.lock:
                key = id(body)
                if key not in self.draws:
                    if len(self.draws) > 10_000:
                        self.draws.clear()
                    self.draws[key] = self.rng.random()
                r = self.draws[key] / self.scale
            return low <= r < high

        return hit


def install_faults(stub: StubServer, rate: float, seed: int) -> None:
    dice = Dice(seed, rate / sum(MIX.values()))
    low = 0.0
    for kind, share in MIX.items():
        extra: dict[str, Any] = {"retry_after": 1} if kind == "rate_limit" else {}
        stub.fail_when(dice.band(low, low + share), kind, **extra)
        low += share


async def one_run(stub: StubServer, n: int, tag: str) -> tuple[float, int, int, int]:
    """(seconds, items lost, items paid twice, 429 back-offs)."""
    settings = Settings(
        providers={
            "stub": ProviderSettings(
                kind="openai-compatible",
                base_url=stub.openai_base_url,
                max_concurrency=64,
                timeout_s=10,
                adaptive=os.environ.get("BENCH_ADAPTIVE", "1") == "1",
            )
        },
        pricing={"stub:m": Price(input=1.0, output=2.0)},
    )
    backoffs = 0

    t0 = time.perf_counter()

    def on_event(event: object) -> None:
        nonlocal backoffs
        if isinstance(event, LimitChanged) and event.reason == "429 backoff":
            backoffs += 1
        if os.environ.get("BENCH_TRACE") and isinstance(event, LimitChanged):
            print(f"  {time.perf_counter() - t0:6.2f}s limit {event.limit} ({event.reason})")

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "wb.db")
        registry = ProviderRegistry(settings)
        engine = Engine(store, registry, settings, on_event)
        items = [
            WorkItem(
                key=item_key("solve", f"p{i}"),
                stage="solve",
                role="solver",
                model_ref="stub:m",
                request=ModelRequest(
                    model="m", messages=(Message("user", f"{tag} question {i}"),), max_tokens=64
                ),
            )
            for i in range(n)
        ]
        run_id = store.create_run(tag, "bench", {})
        start = time.perf_counter()
        await engine.run_items(run_id, items)
        took = time.perf_counter() - start
        lost = n - len(store.samples(run_id, status="done"))
        await registry.aclose()
        store.close()
    paid = Counter(
        str(r.body.get("messages"))
        for r in stub.requests
        if r.outcome == "ok" and tag in str(r.body.get("messages"))
    )
    return took, lost, sum(1 for c in paid.values() if c > 1), backoffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1200)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with StubServer(latency=args.latency) as stub:
        clean = asyncio.run(one_run(stub, args.items, "clean"))
        install_faults(stub, args.rate, args.seed)
        faulty = asyncio.run(one_run(stub, args.items, "faulty"))
        faults = Counter(r.outcome for r in stub.requests if "faulty" in str(r.body))
    print(f"fault-free: {clean[0]:6.2f} s  lost {clean[1]}  paid twice {clean[2]}")
    print(
        f"{args.rate:.0%} faults: {faulty[0]:6.2f} s  lost {faulty[1]}  paid twice {faulty[2]}"
        f"  429 back-offs {faulty[3]}  outcomes {dict(faults)}"
    )
    ratio = faulty[0] / clean[0]
    ok = ratio <= 3.0 and faulty[1] == 0 and faulty[2] == 0
    print(f"ratio: {ratio:.2f}x (target <= 3x, 0 lost, 0 paid twice): {'ok' if ok else 'MISSED'}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
