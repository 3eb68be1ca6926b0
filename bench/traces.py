"""Trace stepper speed on a 100,000-sample run.

Targets: open a run (ids + first sample) in < 1 s; move between samples in < 50 ms.
Measures the core queries the stepper uses and the stepper screen itself (Pilot).
Run: .venv/bin/python bench/traces.py [n_samples]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.trace_data import build_recovery_run  # noqa: E402
from workbench.core.store import Store  # noqa: E402
from workbench.core.views.traces import TraceFilter, load_trace, trace_index  # noqa: E402

K = 10


def core_numbers(store: Store, run_id: int) -> None:
    t0 = time.perf_counter()
    idx = trace_index(store, run_id)
    load_trace(store, idx.ids[0])
    open_s = time.perf_counter() - t0
    moves = []
    for pos in range(0, len(idx), max(1, len(idx) // 500)):
        t = time.perf_counter()
        load_trace(store, idx.ids[pos])
        moves.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    n_rec = len(trace_index(store, run_id, TraceFilter(outcome="recovered")))
    filt_s = time.perf_counter() - t
    t = time.perf_counter()
    n_txt = len(trace_index(store, run_id, TraceFilter(text="Question 4242:")))
    search_s = time.perf_counter() - t
    print(
        f"core: {len(idx):,} traces listed + first loaded in {open_s * 1000:.0f} ms (target < 1000)"
    )
    print(
        f"core: load one sample p50 {statistics.median(moves):.2f} ms, "
        f"max {max(moves):.2f} ms over {len(moves)} (target < 50)"
    )
    print(f"core: outcome filter ({n_rec:,} hits) {filt_s * 1000:.0f} ms")
    print(f"core: text search ({n_txt} hits) {search_s * 1000:.0f} ms")
    drill_numbers(store, run_id, open_s)


def drill_numbers(store: Store, run_id: int, open_s: float) -> None:
    """A plot's bars with the samples behind each, and the biggest bar's traces listed
    (Plots -> t): against listing the whole run, measured above in the same process."""
    from workbench.core.views.plots import recovery_by_error_type

    t = time.perf_counter()
    data = recovery_by_error_type(store, run_id)
    plot_s = time.perf_counter() - t
    ids = max(data.drill, key=len)
    t = time.perf_counter()
    n = len(trace_index(store, run_id, TraceFilter(samples=ids, scope="bench")))
    drill_s = time.perf_counter() - t
    print(
        f"core: drill-down: error-type plot with each bar's samples {plot_s * 1000:.0f} ms; "
        f"its largest bar's {n:,} traces listed in {drill_s * 1000:.0f} ms "
        f"({drill_s / open_s:.2f}x opening the whole run)"
    )


async def screen_numbers(db: Path, run_id: int) -> None:
    from workbench.core.providers import ProviderRegistry
    from workbench.core.settings import Settings
    from workbench.tui.app import make_app
    from workbench.tui.screens.traces import TracesScreen

    settings = Settings()
    store = Store(db)
    app = make_app(store, ProviderRegistry(settings), settings)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.switch_mode("traces")
        screen = app.screen
        assert isinstance(screen, TracesScreen)
        await app.workers.wait_for_complete()  # the latest run opened on mount
        screen.view = None  # the latest run opened on mount; time a fresh open
        t = time.perf_counter()
        screen.open_run(run_id)
        while screen.view is None or screen.view.run_id != run_id:
            await asyncio.sleep(0.002)  # until the first sample is on screen
        first_s = time.perf_counter() - t
        cpu_first = time.process_time()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        open_s = time.perf_counter() - t
        after_cpu = time.process_time() - cpu_first
        handler, round_trip, idle = [], [], []
        for _ in range(50):
            t = time.perf_counter()
            screen.action_step(1)  # what j runs: load one sample + update the widgets
            t1 = time.perf_counter()
            await pilot.pause()  # layout + render of the new sample
            round_trip.append((time.perf_counter() - t) * 1000)
            handler.append((t1 - t) * 1000)
        for _ in range(20):
            t = time.perf_counter()
            await pilot.pause()
            idle.append((time.perf_counter() - t) * 1000)
        base = statistics.median(idle)
        print(f"screen: open run to the first sample shown {first_s * 1000:.0f} ms (target < 500)")
        print(
            f"screen: whole index listed {open_s * 1000:.0f} ms after opening; CPU after the "
            f"first sample {after_cpu:.2f} s (target < 1 s)"
        )
        print(
            f"screen: next sample: load + update p50 {statistics.median(handler):.1f} ms; "
            f"with layout + render p50 {statistics.median(round_trip) - base:.1f} ms, max "
            f"{max(round_trip) - base:.1f} ms (target < 50; Pilot's own idle wait of "
            f"{base:.0f} ms subtracted)"
        )
        assert screen.position == 50


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("BENCH_SCALE", 100_000))
    print(f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        store = Store(db)
        t = time.perf_counter()
        run_id = build_recovery_run(store, n_problems=n // K, k=K)
        total = store.scalar("SELECT COUNT(*) FROM samples WHERE run_id=?", (run_id,))
        print(f"built {total:,} samples in {time.perf_counter() - t:.1f} s")
        store.close()
        store = Store(db)  # cold connection, as when the app opens
        core_numbers(store, run_id)
        asyncio.run(screen_numbers(db, run_id))


if __name__ == "__main__":
    main()
