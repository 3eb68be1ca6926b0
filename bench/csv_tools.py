"""CSV tool worker speed: warm and cached calls, cold start and memory, against one-shot runs.

On diamonds.csv (53,940 rows) prints: a one-shot ``run_code`` of the same groupby
(process start, pandas import, CSV parse: the baseline), the cold start of a
persistent worker including the CSV load, warm ``groupby_agg`` p50 / p95, a cached
call, and the worker's peak RSS, each with its ratio to the one-shot call, and the
load average.  Targets (issue 15, a 2-core machine): warm p50 < 20 ms, p95 < 60 ms,
cold start < 1.5 s, cached < 2 ms, RSS < 400 MB.
Run: .venv/bin/python bench/csv_tools.py [n_calls]
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.core.csv_agent.worker import (  # noqa: E402
    TableSource,
    ToolCache,
    ToolSession,
    ToolWorker,
    WorkerPool,
)
from workbench.core.sandbox import Limits, jail_status, run_code  # noqa: E402

DIAMONDS = ROOT.parent / "shared" / "datasets" / "csv" / "diamonds.csv"
ONE_SHOT = (
    "import pandas as pd\n"
    "def solution():\n"
    "    df = pd.read_csv('diamonds.csv')\n"
    "    return df.groupby('cut')['price'].mean().round(2).to_dict()\n"
)
ARGS = [
    {"by": [by], "column": col, "agg": agg}
    for by in ("cut", "color", "clarity")
    for col in ("price", "carat", "depth")
    for agg in ("mean", "median", "max")
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    if not DIAMONDS.is_file():
        print(f"skipped: {DIAMONDS} is absent")
        return
    print(f"jail: {jail_status().isolation}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    source = TableSource(str(DIAMONDS), hashlib.sha256(DIAMONDS.read_bytes()).hexdigest())

    one_shot = []
    for _ in range(5):
        t0 = time.perf_counter()
        result = run_code(
            ONE_SHOT, limits=Limits(wall_s=30), entry="solution", files=[str(DIAMONDS)]
        )
        one_shot.append((time.perf_counter() - t0) * 1000)
        assert result.ok, result.error
    base = statistics.median(one_shot)

    cold = []
    for _ in range(3):
        worker = ToolWorker(source)
        t0 = time.perf_counter()
        worker.start()
        cold.append((time.perf_counter() - t0) * 1000)
        worker.stop()

    with WorkerPool(max_table_workers=1) as pool:
        session = ToolSession(pool, source, "bench")  # no cache: every call runs
        session.call("head", {"n": 1})
        warm = []
        for i in range(n):
            t0 = time.perf_counter()
            out = session.call("groupby_agg", ARGS[i % len(ARGS)])
            warm.append((time.perf_counter() - t0) * 1000)
            assert out.error_kind is None, out.shown
        cached_session = ToolSession(pool, source, "bench-cached", cache=ToolCache())
        cached_session.call("groupby_agg", ARGS[0])
        cached = []
        for _ in range(n):
            t0 = time.perf_counter()
            out = cached_session.call("groupby_agg", ARGS[0])
            cached.append((time.perf_counter() - t0) * 1000)
            assert out.cache_hit
        rss = pool.workers()[0].max_rss_mb()

    rows = [
        ("one-shot run_code groupby (baseline)", base, "ms", None),
        ("cold worker start incl. CSV load", statistics.median(cold), "ms", 1500.0),
        ("warm groupby_agg p50", pct(warm, 0.5), "ms", 20.0),
        ("warm groupby_agg p95", pct(warm, 0.95), "ms", 60.0),
        ("cached call p50", pct(cached, 0.5), "ms", 2.0),
    ]
    print(f"{'measure':<38} {'value':>9}       {'vs one-shot':>11}  target")
    for label, value, unit, target in rows:
        verdict = (
            "" if target is None else f"< {target:g} {unit}: {'ok' if value < target else 'MISSED'}"
        )
        print(f"{label:<38} {value:9.2f} {unit:<5} {value / base:10.3f}x  {verdict}")
    print(
        f"{'worker peak RSS':<38} {rss:9.1f} MB    {'':>11}  < 400 MB: {'ok' if rss < 400 else 'MISSED'}"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
