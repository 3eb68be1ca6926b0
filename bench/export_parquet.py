"""Parquet speed and memory: ``runs archive`` (samples + calls, with the calls' text, redacted,
row counts verified) and ``export --format parquet``, against a plain sqlite3 -> pyarrow loop.

The baseline reads the archive's sample query and writes it with ``ParquetWriter`` in the
same 2,000-row groups, with no redaction and no derived columns: what any Parquet export
must at least cost.  Each writer runs in a child process, so peak RSS is its own; every
size is measured at N and at N/10 to show memory stays flat in the run's size.

Targets (issue 14): 1,000,000 stored calls archived in <= 60 s, peak RSS <= 300 MB, and
RSS at 1M within 10% of RSS at 100k.
Run: .venv/bin/python bench/export_parquet.py [n_calls]  (or BENCH_SCALE=1000000; default 100,000)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.export_jsonl import BUILD, K  # noqa: E402
from workbench.core.store import Store  # noqa: E402

ARCHIVE = """
import sys
from workbench.core.analysis import archive_run
from workbench.core.store import Store
store = Store(sys.argv[1])
archive_run(store, int(sys.argv[2]), sys.argv[3])
"""

EXPORT = """
import sys
from workbench.core.analysis.export import export_samples
from workbench.core.store import Store
store = Store(sys.argv[1])
export_samples(store, int(sys.argv[2]), "parquet", sys.argv[3] + ".parquet")
"""

PLAIN = """
import sqlite3, sys
import pyarrow as pa, pyarrow.parquet as pq
conn = sqlite3.connect(sys.argv[1])
sql = '''
    SELECT s.run_id, s.id AS sample_id, s.stage, s.item_key, s.problem_id, s.sample_index,
           s.parent_id, s.role, s.model, s.status, p.question, g.gold, s.output,
           g.extracted, g.correct, g.status AS grade_status, g.grader,
           g.method AS grade_method, c.continuation, c.finish_reason, c.input_tokens,
           c.output_tokens, c.cost_usd, c.latency_ms, c.cache_hit,
           (SELECT json_group_array(label) FROM labels l WHERE l.sample_id = s.id) AS labels,
           s.payload, c.request, c.response_text
    FROM samples s
    LEFT JOIN problems p ON p.id = s.problem_id
    LEFT JOIN calls c ON c.id = s.call_id
    LEFT JOIN grades g ON g.id = (
        SELECT id FROM grades WHERE sample_id = s.id ORDER BY id DESC LIMIT 1)
    WHERE s.run_id = ? ORDER BY s.id
'''
cur = conn.execute(sql, (int(sys.argv[2]),))
cols = [c[0] for c in cur.description]
writer = None
while True:
    rows = cur.fetchmany(2000)
    if not rows:
        break
    table = pa.table({c: [r[i] for r in rows] for i, c in enumerate(cols)})
    if writer is None:
        writer = pq.ParquetWriter(sys.argv[3] + ".plain.parquet", table.schema, compression="zstd")
    writer.write_table(table.cast(writer.schema))
writer.close()
"""


def timed(code: str, db: Path, run_id: int, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process running ``code``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(db), str(run_id), str(out)], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"child failed ({status})")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("BENCH_SCALE", 100_000))
    print(f"load average {load()}")
    rss: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in (n // 10, n):
            db = Path(tmp) / f"bench-{size}.db"
            built = subprocess.run(
                [sys.executable, "-c", BUILD, str(db), str(max(1, size // (K + 1))), str(K)],
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                capture_output=True,
                text=True,
                check=True,
            )
            run_id = int(built.stdout.split()[-1])
            store = Store(db)
            calls = store.scalar("SELECT COUNT(*) FROM calls WHERE run_id=?", (run_id,))
            samples = store.scalar("SELECT COUNT(*) FROM samples WHERE run_id=?", (run_id,))
            store.close()
            out = Path(tmp) / f"out-{size}"
            archive_s, archive_rss = timed(ARCHIVE, db, run_id, out)
            export_s, export_rss = timed(EXPORT, db, run_id, out)
            plain_s, plain_rss = timed(PLAIN, db, run_id, out)
            rss[size] = archive_rss
            print(
                f"{calls:>9,} calls / {samples:,} samples: archive {archive_s:6.2f} s "
                f"({archive_rss:.0f} MiB; target <= 60 s at 1M, <= 300 MB) | export parquet "
                f"{export_s:6.2f} s ({export_rss:.0f} MiB) | plain loop {plain_s:6.2f} s "
                f"({plain_rss:.0f} MiB) | archive / plain {archive_s / plain_s:.2f}x | "
                f"load {load()}"
            )
            db.unlink()
    small, large = rss[n // 10], rss[n]
    print(f"archive peak RSS at {n:,} / at {n // 10:,}: {large / small:.2f} (target <= 1.10)")


if __name__ == "__main__":
    main()
