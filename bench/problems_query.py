"""Paged problem queries on 100,000 synthetic problems (no UI).

Builds a temporary workspace (two thirds GSM8K-like, one third MATH-like rows,
30% with a solve rate for one model, some graded samples) and prints the median
time of the queries the Problems screen makes: first page, count, a search
keystroke, sorts, filters, distinct values and sampling.

Searches are timed through the trigram index and, as the baseline in the same run, by the
scan the index replaced (``use_index=False``), for a common and a rare term; a keystroke is
the debounce plus the page and the (capped) count the screen asks for.

Run: ``.venv/bin/python bench/problems_query.py [N]`` (or ``BENCH_SCALE=1000000``).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.core.library.problems import (
    ProblemFilter,
    count_matches,
    count_problems,
    distinct_values,
    query_problems,
    sample_ids,
)
from workbench.core.store import Store, dumps, now_iso
from workbench.tui.widgets.problem_filters import SEARCH_DEBOUNCE_S

WORDS = [
    "apples",
    "oranges",
    "train",
    "speed",
    "garden",
    "triangle",
    "circle",
    "prime",
    "integer",
    "ducks",
    "eggs",
    "market",
    "painter",
    "fence",
    "ratio",
    "percent",
    "discount",
    "marbles",
    "cookies",
    "tickets",
    "hours",
    "minutes",
]
SUBJECTS = ["Algebra", "Geometry", "Number Theory", "Prealgebra", "Precalculus"]


def build(store: Store, n: int) -> None:
    rng = random.Random(0)
    now = now_iso()
    rows: list[tuple[Any, ...]] = []
    for i in range(n):
        math = i % 3 == 0
        words = " ".join(rng.choice(WORDS) for _ in range(40))
        steps = [f"Step about {rng.choice(WORDS)} {k}." for k in range(rng.randint(2, 9))]
        rows.append(
            (
                f"{'math' if math else 'gsm8k'}-synth/{i:06d}",
                "math-synth" if math else "gsm8k-synth",
                "math" if math else "gsm8k",
                f"Problem {i}: {words}?",
                " ".join(steps),
                str(rng.randint(1, 999)),
                rng.choice(SUBJECTS) if math else None,
                rng.randint(1, 5) if math else None,
                dumps(steps),
                len(steps),
                "{}",
                now,
            )
        )
    with store.transaction() as conn:
        for ds in ("math-synth", "gsm8k-synth"):
            conn.execute(
                "INSERT INTO datasets (id, name, origin, format, imported_at) VALUES (?,?,?,?,?)",
                (ds, ds, "synthetic", ds.split("-")[0], now),
            )
        conn.executemany(f"INSERT INTO problems VALUES ({','.join('?' * 12)})", rows)
        rated = rng.sample([r[0] for r in rows], n * 3 // 10)
        conn.executemany(
            "INSERT INTO difficulty VALUES (?,?,?,?,?,?,NULL,?)",
            [
                (pid, "m1", 8, k, k / 8, "hard" if k < 3 else "medium" if k < 6 else "easy", now)
                for pid in rated
                for k in [rng.randint(0, 8)]
            ],
        )
        run_id = store.insert(
            "runs", {"name": "r", "kind": "k", "config": "{}", "status": "done", "created_at": now}
        )
        for j, pid in enumerate(rated[:2000]):
            sid = store.insert(
                "samples",
                {"run_id": run_id, "stage": "solve", "item_key": str(j), "problem_id": pid,
                 "status": "done", "created_at": now, "updated_at": now},
            )  # fmt: skip
            store.insert(
                "grades",
                {"sample_id": sid, "grader": "g", "status": "graded", "correct": 1,
                 "created_at": now},
            )  # fmt: skip
    store.conn.execute("ANALYZE")


def median_ms(fn: Callable[[], object], rounds: int = 7) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def keystroke(store: Store, label: str, term: str) -> None:
    """A search keystroke through the index, and by scanning as before it, in the same run."""
    flt = ProblemFilter(text=term)
    page = median_ms(lambda: query_problems(store, flt), rounds=5)
    count = median_ms(lambda: count_matches(store, flt), rounds=5)
    scan_page = median_ms(lambda: query_problems(store, flt, use_index=False), rounds=3)
    scan_count = median_ms(lambda: count_problems(store, flt, use_index=False), rounds=3)
    key = SEARCH_DEBOUNCE_S * 1000 + page + count
    scan_key = SEARCH_DEBOUNCE_S * 1000 + scan_page + scan_count
    print(
        f"{label:<6} {term!r:<18} index: page {page:7.1f} ms count {count:7.1f} ms "
        f"({count_matches(store, flt)}) keystroke {key:7.1f} ms | scan: page "
        f"{scan_page:7.1f} count {scan_count:7.1f} keystroke {scan_key:7.1f} ms | "
        f"{scan_key / key:5.1f}x (target < 100 ms)"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("BENCH_SCALE", 100_000))
    print(f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        start = time.perf_counter()
        build(store, n)
        print(f"built {n:,} problems in {time.perf_counter() - start:.1f}s")
        everything = ProblemFilter()
        math = ProblemFilter(source="math")
        cases: list[tuple[str, Callable[[], object]]] = [
            ("first page (100 rows, id order)", lambda: query_problems(store, everything)),
            ("count all", lambda: count_problems(store, everything)),
            ("page 500 (offset 50,000)", lambda: query_problems(store, everything, offset=50_000)),
            ("search keystroke 'duc' (page)", lambda: query_problems(store, ProblemFilter(text="duc"))),
            ("search keystroke 'duc' (count)", lambda: count_problems(store, ProblemFilter(text="duc"))),
            ("search rare 'Problem 99999' (page)",
             lambda: query_problems(store, ProblemFilter(text="Problem 99999"))),
            ("search rare 'Problem 99999' (count)",
             lambda: count_problems(store, ProblemFilter(text="Problem 99999"))),
            ("filter source=math level=3 (page)",
             lambda: query_problems(store, ProblemFilter(source="math", level=3))),
            ("filter source=math level=3 (count)",
             lambda: count_problems(store, ProblemFilter(source="math", level=3))),
            ("sort by level (page)", lambda: query_problems(store, math, order_by="level")),
            ("sort by solve rate, model m1 (page)",
             lambda: query_problems(store, ProblemFilter(model="m1"), order_by="solve_rate")),
            ("filter bin=hard, model m1 (page)",
             lambda: query_problems(store, ProblemFilter(bin="hard", model="m1"))),
            ("filter bin=hard, model m1 (count)",
             lambda: count_problems(store, ProblemFilter(bin="hard", model="m1"))),
            ("filter has_grade (count)", lambda: count_problems(store, ProblemFilter(has_grade=True))),
            ("distinct subjects", lambda: distinct_values(store, "subject")),
            ("sample 50 ids (seeded)", lambda: sample_ids(store, everything, 50, seed=1)),
        ]  # fmt: skip
        width = max(len(name) for name, _ in cases)
        for name, fn in cases:
            print(f"{name:<{width}}  {median_ms(fn):8.1f} ms")
        print(f"\nsearch keystroke = debounce {SEARCH_DEBOUNCE_S * 1000:.0f} ms + page + count")
        for label, term in (("common", "duck"), ("rare", f"Problem {n - 1}:"), ("rare", "zzz")):
            keystroke(store, label, term)
        store.close()


if __name__ == "__main__":
    main()
