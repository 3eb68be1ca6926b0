"""Sandbox overhead: what one program run costs, and throughput with ``run_many``.

Prints the median wall time of a trivial program (with and without the network
namespace), of a program importing sympy, and programs per second over a batch.
Target: a trivial program well under 100 ms on an idle machine, so executing the
programs of a 1,000-sample run takes minutes at most.
Run: .venv/bin/python bench/sandbox.py [n]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.core.sandbox.supervisor import Limits, _unshare_prefix, run_code, run_many  # noqa: E402

TRIVIAL = "def solution():\n    return 6 * 7\n"
SYMPY = "import sympy as sp\ndef solution():\n    return sp.sqrt(8) / 4\n"


def median_ms(code: str, n: int, limits: Limits) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        result = run_code(code, limits=limits, entry="solution")
        times.append((time.perf_counter() - t0) * 1000)
        assert result.ok, result.error
    return statistics.median(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    plain = Limits(network_namespace=False)
    print(f"network namespace available: {bool(_unshare_prefix())}")
    print(f"trivial program, median of {n}:          {median_ms(TRIVIAL, n, Limits()):7.1f} ms")
    print(f"trivial program, no namespace:          {median_ms(TRIVIAL, n, plain):7.1f} ms")
    m = max(1, n // 4)
    print(f"sympy import + sqrt, median of {m}:      {median_ms(SYMPY, m, Limits()):7.1f} ms")
    batch = [TRIVIAL] * (4 * n)
    t0 = time.perf_counter()
    results = run_many(batch, entry="solution")
    elapsed = time.perf_counter() - t0
    assert all(r.ok for r in results)
    print(f"run_many, {len(batch)} programs:             {len(batch) / elapsed:7.1f} programs/s")


if __name__ == "__main__":
    main()
