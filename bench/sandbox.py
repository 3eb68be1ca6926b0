"""Sandbox overhead: the jail against the pre-jail path, per program and in batches.

Prints the median wall time of a trivial program and of one importing sympy, and
programs per second through ``run_many``, under the bubblewrap jail (the default)
and under the old path (``jail=False``: ``unshare`` namespace, rlimits, audit hook),
with the ratio jailed / old, and the load average next to the numbers.
Target: a trivial jailed program well under 100 ms on an idle machine and at most
~1.5x the old path, so executing the programs of a 1,000-sample run takes minutes.
Run: .venv/bin/python bench/sandbox.py [n]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.core.sandbox import Limits, isolation_for, jail_status, run_code, run_many  # noqa: E402

TRIVIAL = "def solution():\n    return 6 * 7\n"
SYMPY = "import sympy as sp\ndef solution():\n    return sp.sqrt(8) / 4\n"
JAILED = Limits()
OLD = Limits(jail=False, syscall_filter=False)


def median_ms(code: str, n: int, limits: Limits) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        result = run_code(code, limits=limits, entry="solution")
        times.append((time.perf_counter() - t0) * 1000)
        assert result.ok, result.error
    return statistics.median(times)


def throughput(n: int, limits: Limits) -> float:
    batch = [TRIVIAL] * n
    t0 = time.perf_counter()
    results = run_many(batch, limits=limits, entry="solution")
    elapsed = time.perf_counter() - t0
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    return n / elapsed


def row(label: str, jailed: float, old: float, unit: str) -> None:
    print(f"{label:<34} {jailed:8.1f} {old:8.1f} {unit:<11} jailed/old {jailed / old:5.2f}x")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    status = jail_status()
    print(f"jail: {status.isolation}" + (f" ({status.reason})" if status.reason else ""))
    print(f"isolation jailed / old: {isolation_for(JAILED)} / {isolation_for(OLD)}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'':<34} {'jailed':>8} {'old':>8}")
    median_ms(TRIVIAL, 3, JAILED)  # warm the page cache for both paths
    median_ms(TRIVIAL, 3, OLD)
    row(f"trivial program, median of {n}", *(median_ms(TRIVIAL, n, x) for x in (JAILED, OLD)), "ms")
    m = max(3, n // 4)
    row(
        f"sympy import + sqrt, median of {m}",
        *(median_ms(SYMPY, m, x) for x in (JAILED, OLD)),
        "ms",
    )
    k = 4 * n
    row(f"run_many, {k} trivial programs", *(throughput(k, x) for x in (JAILED, OLD)), "programs/s")
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
