"""Problems screen with 100,000 problems: open time and keystroke latency.

Builds a workspace of 100,000 synthetic problems (two thirds GSM8K-like, one
third MATH-like, some with calibration rows), opens the app headless at
120x40, and measures, each as the median of several rounds:

- open: from pressing ``1`` to the first page of rows in the table (and to the count);
- search: from the last keystroke of a query to its first page on screen;
- scroll: one ``down`` / ``pagedown`` keypress handled and repainted (next to an
  unbound key, which is what the Pilot harness itself costs per keypress);
- load more: ``end`` on the last loaded row to the next page appended;
- filter: choosing a source in the filter bar to its first page.

Run: ``.venv/bin/python bench/problems_screen.py [N]``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.pilot import Pilot
from textual.widgets import Input, Select

from tests.problem_fixtures import fill_library
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import Settings
from workbench.core.store import open_store
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.screens.problems import ProblemsScreen
from workbench.tui.widgets.problem_table import ProblemTable

ROUNDS = 5
SIZE = (120, 40)


async def wait_until(pilot: Pilot[None], ready: Callable[[], bool], limit_s: float = 60) -> float:
    """Seconds until ``ready()`` holds, checking after each pass of the event loop."""
    start = time.perf_counter()
    while not ready():
        if time.perf_counter() - start > limit_s:
            raise TimeoutError("the screen never got there")
        await pilot.pause(0.001)
    return time.perf_counter() - start


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:7.1f} ms  max {max(values) * 1000:7.1f} ms"


async def open_once(app: WorkbenchApp, pilot: Pilot[None]) -> tuple[float, float]:
    """Press ``1``; seconds to the first rows on screen and to the total count."""
    start = time.perf_counter()
    await pilot.press("1")
    screen = app.screen
    assert isinstance(screen, ProblemsScreen)
    table = screen.query_one(ProblemTable)
    await wait_until(pilot, lambda: table.row_count > 0)
    first_rows = time.perf_counter() - start
    await wait_until(pilot, lambda: screen.total is not None)
    return first_rows, time.perf_counter() - start


async def measure(app: WorkbenchApp, n: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    async with app.run_test(size=SIZE) as pilot:
        for round_ in range(ROUNDS):
            # open: a fresh Problems screen each round (drop the mode's screen stack)
            await pilot.press("0")
            await pilot.pause()
            if round_:
                await app.remove_mode("problems")
                app.add_mode("problems", ProblemsScreen)
            first_rows, counted = await open_once(app, pilot)
            results.setdefault("open: first rows visible", []).append(first_rows)
            results.setdefault("open: total counted", []).append(counted)
            await app.workers.wait_for_complete()

        screen = app.screen
        assert isinstance(screen, ProblemsScreen)
        table = screen.query_one(ProblemTable)
        search = screen.query_one("#problems-search", Input)

        for term in ("apples? (problem 4242", "sqrt", "problem 99999", "zz-no-match", "x^2 = 7"):
            await pilot.press("slash")
            search.value = term[:-1]
            await pilot.pause()
            generation = screen.generation
            start = time.perf_counter()
            await pilot.press(term[-1], "enter")
            await wait_until(
                pilot,
                lambda g=generation: (
                    screen.generation > g  # type: ignore[misc]
                    and (table.row_count > 0 or screen.total == 0)
                ),
            )
            results.setdefault("search: keystroke -> first rows", []).append(
                time.perf_counter() - start
            )
            await app.workers.wait_for_complete()
            await pilot.press("escape", "escape")
            await wait_until(pilot, lambda: table.row_count > 0)
            await app.workers.wait_for_complete()

        keys = (
            ("z", "baseline: unbound key (harness cost)"),
            ("down", "scroll: down key"),
            ("pagedown", "scroll: pagedown key"),
        )
        for key, label in keys:
            for _ in range(ROUNDS * 4):
                start = time.perf_counter()
                await pilot.press(key)
                results.setdefault(label, []).append(time.perf_counter() - start)
            await app.workers.wait_for_complete()

        for _ in range(ROUNDS):
            before = table.row_count
            start = time.perf_counter()
            await pilot.press("end")
            await wait_until(pilot, lambda b=before: table.row_count > b)  # type: ignore[misc]
            results.setdefault("scroll: end -> next page appended", []).append(
                time.perf_counter() - start
            )
            await app.workers.wait_for_complete()

        select = screen.query_one("#filter-source", Select)
        for value in ("math", "gsm8k", "math", "gsm8k", "math"):
            generation = screen.generation
            start = time.perf_counter()
            select.value = value
            await wait_until(
                pilot,
                lambda g=generation: screen.generation > g and table.row_count > 0,  # type: ignore[misc]
            )
            results.setdefault("filter: source -> first rows", []).append(
                time.perf_counter() - start
            )
            await app.workers.wait_for_complete()
    return results


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder) / "bench.db")
        start = time.perf_counter()
        fill_library(store, n)
        print(f"library: {n:,} problems written in {time.perf_counter() - start:.1f} s")
        settings = Settings()
        app = make_app(store, ProviderRegistry(settings), settings)
        results = asyncio.run(measure(app, n))
        store.close()
    print(
        f"Problems screen, {n:,} problems, {SIZE[0]}x{SIZE[1]} headless, {ROUNDS} rounds "
        f"(1-min load average at the end: {load_average()})"
    )
    for label, values in results.items():
        print(f"  {label:36s} {ms(values)}")


if __name__ == "__main__":
    main()
