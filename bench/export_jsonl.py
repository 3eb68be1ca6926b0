"""Export speed: a run's samples to JSONL, against a plain streaming sqlite3 + json loop.

The baseline reads the same rows with the same query and writes each as one JSON line,
with no parsing of nested JSON and no redaction: what any export must at least cost.
The export runs in a child process each, so peak RSS is its own; it is measured at the
full size and at a tenth of it to show memory stays flat.

Targets (issue "instant at a million"): <= 1.3x the plain loop, RSS flat in run size.
Run: .venv/bin/python bench/export_jsonl.py [n_samples]  (or BENCH_SCALE=1100000)
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

from workbench.core.store import Store  # noqa: E402

K = 10

EXPORT = """
import sys
from workbench.core.analysis.export import export_samples
from workbench.core.store import Store
store = Store(sys.argv[1])
export_samples(store, int(sys.argv[2]), "jsonl", sys.argv[3])
"""

BUILD = """
import sys
from tests.trace_data import build_recovery_run
from workbench.core.store import Store
store = Store(sys.argv[1])
print(build_recovery_run(store, n_problems=int(sys.argv[2]), k=int(sys.argv[3])))
"""

PLAIN = """
import json, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
sql = '''
    SELECT s.run_id, s.id AS sample_id, s.stage, s.item_key, s.problem_id, s.sample_index,
           s.parent_id, s.role, s.model, s.status, p.question, g.gold, s.output,
           g.extracted, g.correct, g.status AS grade_status, g.grader,
           g.method AS grade_method, c.continuation, c.finish_reason, c.input_tokens,
           c.output_tokens, c.cost_usd, c.latency_ms, c.cache_hit,
           (SELECT json_group_array(label) FROM labels l WHERE l.sample_id = s.id) AS labels,
           s.payload
    FROM samples s
    LEFT JOIN problems p ON p.id = s.problem_id
    LEFT JOIN calls c ON c.id = s.call_id
    LEFT JOIN grades g ON g.id = (
        SELECT id FROM grades WHERE sample_id = s.id ORDER BY id DESC LIMIT 1)
    WHERE s.run_id = ? ORDER BY s.id
'''
cur = conn.execute(sql, (int(sys.argv[2]),))
cols = [c[0] for c in cur.description]
with open(sys.argv[3], "w", encoding="utf-8") as fh:
    for raw in cur:
        fh.write(json.dumps(dict(zip(cols, raw)), ensure_ascii=False) + "\\n")
"""


def timed(code: str, db: Path, run_id: int, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process running ``code``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(db), str(run_id), str(out)], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"export child failed ({status})")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("BENCH_SCALE", 100_000))
    print(f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for size in (n // 10, n):
            db = Path(tmp) / f"bench-{size}.db"
            # built in a child: a forked child's peak RSS counts its parent's pages, so the
            # parent stays small
            built = subprocess.run(
                [sys.executable, "-c", BUILD, str(db), str(max(1, size // (K + 1))), str(K)],
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                capture_output=True,
                text=True,
                check=True,
            )
            run_id = int(built.stdout.split()[-1])
            store = Store(db)
            rows = store.scalar("SELECT COUNT(*) FROM samples WHERE run_id=?", (run_id,))
            store.close()
            export_s, export_rss = timed(EXPORT, db, run_id, Path(tmp) / "out.jsonl")
            plain_s, plain_rss = timed(PLAIN, db, run_id, Path(tmp) / "plain.jsonl")
            results[size] = export_rss
            print(
                f"{rows:>9,} samples: export {export_s:6.2f} s ({rows / export_s:,.0f} rows/s, "
                f"{export_rss:.0f} MiB) | plain loop {plain_s:6.2f} s ({plain_rss:.0f} MiB) | "
                f"{export_s / plain_s:.2f}x (target <= 1.3x)"
            )
            db.unlink()
        small, large = results[n // 10], results[n]
        print(f"peak RSS at {n:,} / at {n // 10:,}: {large / small:.2f} (target: flat, ~1.0)")


if __name__ == "__main__":
    main()
