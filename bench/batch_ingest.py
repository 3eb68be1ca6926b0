"""Batch results in: ``ingest_files`` on an OpenAI batch output file (stub bodies).

Exports N items, answers every line in the ``vllm run-batch`` output shape
(``tests/stub_batch.py``, the stub's chat.completion bodies), then ingests the
file in a child process (its own peak RSS), at N and at N/10 to show memory is
flat in the file size.  Baseline, in the same run: a child that only reads and
``json.loads`` every line of the same file.

Target (issue 14): >= 5,000 lines/s for 50,000 lines, peak RSS < 300 MB, flat in size.
Run: .venv/bin/python bench/batch_ingest.py [n_lines]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.batch_write import items  # noqa: E402
from tests.stub_batch import ReplySource, run_batch_file  # noqa: E402
from workbench.core.batch import export_stage  # noqa: E402
from workbench.core.engine import Engine  # noqa: E402
from workbench.core.providers import ProviderRegistry  # noqa: E402
from workbench.core.settings import Price, ProviderSettings, Settings  # noqa: E402
from workbench.core.store import Store  # noqa: E402

SETTINGS = Settings(
    providers={"gpu": ProviderSettings(kind="openai-compatible", base_url="http://x/v1")},
    pricing={"gpu:m": Price(input=0.1, output=0.2)},
)

INGEST = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[4])
from pathlib import Path
from bench.batch_ingest import SETTINGS
from workbench.core.batch import ingest_files
from workbench.core.engine import Engine
from workbench.core.providers import ProviderRegistry
from workbench.core.store import Store
store = Store(sys.argv[1])
engine = Engine(store, ProviderRegistry(SETTINGS), SETTINGS)
started = time.perf_counter()
report = ingest_files(engine, store, int(sys.argv[2]), [Path(sys.argv[3])])
took = time.perf_counter() - started
assert report.bad == 0, report.problems[:3]
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
print(json.dumps({"lines": report.lines, "recorded": report.recorded, "s": took, "rss": rss}))
"""

PLAIN = """
import json, resource, sys, time
started = time.perf_counter()
n = 0
with open(sys.argv[1]) as f:
    for line in f:
        json.loads(line)
        n += 1
took = time.perf_counter() - started
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
print(json.dumps({"lines": n, "recorded": 0, "s": took, "rss": rss}))
"""


def child(code: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def prepare(tmp: Path, n: int) -> tuple[Path, int, Path]:
    db = tmp / f"wb{n}.db"
    store = Store(db)
    run_id = store.create_run("bench", "bench", {})
    engine = Engine(store, ProviderRegistry(SETTINGS), SETTINGS)
    report = export_stage(engine, store, run_id, "solve", items(n), tmp / f"out{n}")
    [shard] = report.shards
    out = tmp / f"out{n}" / "results.jsonl"
    run_batch_file(ReplySource(), tmp / f"out{n}" / shard.file, out)
    store.close()
    return db, run_id, out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        small_db, small_run, small_out = prepare(tmp, n // 10)
        db, run_id, out = prepare(tmp, n)
        base = child(PLAIN, str(out))
        small = child(INGEST, str(small_db), str(small_run), str(small_out), str(ROOT))
        full = child(INGEST, str(db), str(run_id), str(out), str(ROOT))
        size_mb = out.stat().st_size / 1e6
    assert full["recorded"] == n, full
    load = os.getloadavg()[0]
    print(f"batch_ingest: {n} lines ({size_mb:.0f} MB), load average {load:.2f}")
    print(f"  plain json.loads loop: {n / base['s']:9,.0f} lines/s  rss {base['rss']:.0f} MB")
    print(
        f"  ingest_files:          {n / full['s']:9,.0f} lines/s  rss {full['rss']:.0f} MB  "
        f"({full['s']:.1f} s, {full['s'] / base['s']:.0f}x plain)"
    )
    print(
        f"  ingest_files at n/10:  {small['lines'] / small['s']:9,.0f} lines/s  "
        f"rss {small['rss']:.0f} MB  (rss ratio n : n/10 = {full['rss'] / small['rss']:.2f})"
    )
    ok = n / full["s"] >= 5000 and full["rss"] < 300
    print(f"  target >= 5,000 lines/s and < 300 MB: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
