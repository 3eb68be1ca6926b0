"""CSV agent speed: the tool worker, whole conversations against the stub, and export.

worker: on diamonds.csv (53,940 rows) a one-shot ``run_code`` of the same groupby
(process start, pandas import, CSV parse: the baseline), the cold start of a
persistent worker including the CSV load, warm ``groupby_agg`` p50 / p95, a cached
call, and the worker's peak RSS, each with its ratio to the one-shot call.
Targets (issue 15, a 2-core machine): warm p50 < 20 ms, p95 < 60 ms, cold start
< 1.5 s, cached < 2 ms, RSS < 400 MB.

conversations: a csv_agent run on tips.csv against the loopback stub (its own
process, 50 ms latency): 10-turn conversations (9 tool calls, then the answer),
concurrency 200.  Target >= 15 conversations/s.

export: 10,000 stored 4-turn conversations written as sft-openai, in a fresh
process so its peak RSS is the export's own.  Target < 20 s, peak RSS < 300 MB.

Every section prints the load average.
Run: .venv/bin/python bench/csv_tools.py [--only worker|conversations|export] [--calls N]
     [--conversations N] [--export-n N]
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


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_worker(n: int) -> None:
    if not DIAMONDS.is_file():
        print(f"skipped: {DIAMONDS} is absent")
        return
    print(f"== tool worker (jail: {jail_status().isolation}; load average {load()})")
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
    print(f"load average after: {load()}")


# -- conversations against the stub ----------------------------------------------------------

STUB = r"""
import json, sys
from tests.csv_stub import csv_responder, SUNDAY, SUNDAY_TIP, call
from tests.stub_server import StubServer
from tests.stub_wire import StubReply, request_text

def responder(path, body):
    text = request_text(body)
    if "data-analysis benchmark" in text:
        turn = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
        if turn == 0:
            return call("schema")
        return StubReply(text="```json\n" + json.dumps([SUNDAY]) + "\n```")
    turn = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
    if turn < 9:
        return call("head", n=1 + turn % 5)
    return StubReply(text=f"@mean_tip[{SUNDAY_TIP:.2f}]")

server = StubServer(latency=float(sys.argv[1]), responder=responder, log_requests=False).start()
print(server.port, flush=True)
sys.stdin.read()
"""


def bench_conversations(n: int, concurrency: int = 200, latency: float = 0.05) -> None:
    import asyncio
    import subprocess
    import tempfile

    from workbench.core.csv_agent import import_table
    from workbench.core.csv_agent.pipeline import BEST_OF_N, verified
    from workbench.core.csv_agent.tables import bundled_tables
    from workbench.core.engine import Engine
    from workbench.core.experiments import load_experiment_config, run_experiment
    from workbench.core.providers import ProviderRegistry
    from workbench.core.settings import ProviderSettings, Settings
    from workbench.core.store import Store

    print(f"== conversations (load average {load()})")
    stub = subprocess.Popen(
        [sys.executable, "-c", STUB, str(latency)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert stub.stdout is not None
    base_url = f"http://127.0.0.1:{stub.stdout.readline().strip()}/v1"
    os.environ["WB_BENCH_KEY"] = "sk-bench"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                providers={
                    "stub": ProviderSettings(
                        kind="openai",
                        base_url=base_url,
                        api_key_env="WB_BENCH_KEY",
                        max_concurrency=concurrency,
                        timeout_s=60,
                    )
                }
            )
            registry = ProviderRegistry(settings)
            store = Store(Path(tmp) / "wb.db")
            import_table(store, bundled_tables()["tips"])
            config = load_experiment_config(
                {
                    "kind": "csv_agent",
                    "tables": ["tips"],
                    "teacher": "stub:t",
                    "student": "stub:s",
                    "questions_per_table": 1,
                    "explore_turns": 2,
                    "run_stages": ["csv_generate", "csv_best_of_n"],
                    "samples": n,
                    "max_turns": 10,
                    "check_fragile": False,
                    "concurrency": concurrency,
                }
            )
            engine = Engine(store, registry, settings)

            async def run() -> int:
                try:
                    return await run_experiment(store, registry, settings, config, engine=engine)
                finally:
                    await registry.aclose()

            t0 = time.perf_counter()
            run_id = asyncio.run(run())
            wall = time.perf_counter() - t0
            attempts = verified(store, run_id, BEST_OF_N)
            turns = sum(int(a.get("turns", 0)) for a in attempts)
            if len(attempts) != n or not all(a.get("correct") for a in attempts):
                stops = [a.get("stop_reason") for a in attempts][:5]
                print(f"run {store.get_run(run_id)['status']}: {len(attempts)} verified, {stops}")
                print(store.query("SELECT stage, status, COUNT(*) n FROM samples GROUP BY 1, 2"))
            print(
                f"{n} conversations x {turns / n:.0f} turns, concurrency {concurrency}, "
                f"stub latency {latency * 1000:.0f} ms: {wall:.1f} s, {n / wall:.1f} conversations/s "
                f"({turns / wall:.0f} turns/s); target >= 15/s: "
                f"{'ok' if n / wall >= 15 else 'MISSED'}"
            )
    finally:
        stub.kill()
        stub.wait()
    print(f"load average after: {load()}")


# -- export ----------------------------------------------------------------------------------


def fill_store(path: Path, n: int) -> int:
    """A run with one question and ``n`` verified 4-turn conversations, written directly."""
    import json

    from tests.csv_stub import SUNDAY, SUNDAY_TIP
    from workbench.core.csv_agent import import_table
    from workbench.core.csv_agent.pipeline import BEST_OF_N, QUESTION, VERIFY
    from workbench.core.csv_agent.tables import bundled_tables
    from workbench.core.csv_agent.worker import pack
    from workbench.core.store import Store, dumps, now_iso

    store = Store(path)
    table = import_table(store, bundled_tables()["tips"]).table
    run_id = store.create_run("export-bench", "csv_agent", {})
    now = now_iso()
    qid = "q-bench"
    question = {"question_id": qid, "table_sha256": table.sha256, "table_name": table.name,
                "status": "accepted", "question": SUNDAY}  # fmt: skip
    shown = "total_bill  tip  sex\n" * 6
    raw = pack({"kind": "table", "columns": ["a"], "rows": [[1]] * 5, "n_rows": 5})
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO samples(run_id, stage, item_key, status, payload, created_at, updated_at)"
            " VALUES (?, ?, ?, 'done', ?, ?, ?)",
            (run_id, QUESTION, f"{QUESTION}/{qid}/0", dumps(question), now, now),
        )
        for i in range(n):
            for turn in range(1, 5):
                calls = (
                    []
                    if turn == 4
                    else [{"id": f"c{i}-{turn}", "name": "head", "arguments": {"n": turn}}]
                )
                text = f"@mean_tip[{SUNDAY_TIP:.2f}]" if turn == 4 else ""
                response = {
                    "completions": [{"text": text, "finish_reason": "stop", "tool_calls": calls}]
                }
                call_id = conn.execute(
                    "INSERT INTO calls(run_id, item_key, provider, model, request_hash, request,"
                    " response_text, response, status, created_at) VALUES"
                    " (?, ?, 'stub', 's', ?, '{}', ?, ?, 'ok', ?)",
                    (run_id, f"{BEST_OF_N}/{qid}/{i}/{turn}", f"h{i}-{turn}", text,
                     json.dumps(response), now),
                ).lastrowid  # fmt: skip
                sample_id = conn.execute(
                    "INSERT INTO samples(run_id, stage, item_key, sample_index, call_id, status,"
                    " output, payload, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'done', ?, ?, ?, ?)",
                    (run_id, BEST_OF_N, f"{BEST_OF_N}/{qid}/{i}/{turn}", i, call_id, text,
                     dumps({"conversation": qid, "turn": turn}), now, now),
                ).lastrowid  # fmt: skip
                for c in calls:
                    conn.execute(
                        "INSERT INTO tool_calls(run_id, sample_id, call_id, table_sha256, tool, args,"
                        " raw, shown, duration_ms, created_at) VALUES (?, ?, ?, ?, 'head', ?, ?, ?, 1.0, ?)",
                        (run_id, sample_id, c["id"], table.sha256, dumps(c["arguments"]), raw,
                         shown, now),
                    )  # fmt: skip
            verdict = {"stage": BEST_OF_N, "question_id": qid, "sample": i, "keep": True,
                       "correct": True, "stop_reason": "answered"}  # fmt: skip
            conn.execute(
                "INSERT INTO samples(run_id, stage, item_key, sample_index, status, payload,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, 'done', ?, ?, ?)",
                (run_id, VERIFY, f"{VERIFY}/{BEST_OF_N}/{qid}/{i}", i, dumps(verdict), now, now),
            )
    store.close()
    return run_id


EXPORT_CHILD = """
import resource, sys, time
sys.path.insert(0, sys.argv[1])
from workbench.core.csv_agent.export import export_run
from workbench.core.store import Store
store = Store(sys.argv[2])
t0 = time.perf_counter()
n = export_run(store, int(sys.argv[3]), "sft-openai", sys.argv[4])
print(n, time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def bench_export(n: int) -> None:
    import subprocess
    import tempfile

    print(f"== export (load average {load()})")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "wb.db"
        run_id = fill_store(db, n)
        out = subprocess.run(
            [sys.executable, "-c", EXPORT_CHILD, str(ROOT), str(db), str(run_id), str(Path(tmp) / "sft.jsonl")],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        written, seconds, rss = out.stdout.split()
        size = (Path(tmp) / "sft.jsonl").stat().st_size / 2**20
    print(
        f"sft-openai, {int(written):,} conversations ({size:.0f} MB): {float(seconds):.1f} s "
        f"(target < 20 s: {'ok' if float(seconds) < 20 else 'MISSED'}), peak RSS {float(rss):.0f} MB "
        f"(target < 300 MB: {'ok' if float(rss) < 300 else 'MISSED'})"
    )
    print(f"load average after: {load()}")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=("worker", "conversations", "export"))
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--export-n", type=int, default=10_000)
    args = parser.parse_args()
    if args.only in (None, "worker"):
        bench_worker(args.calls)
    if args.only in (None, "conversations"):
        bench_conversations(args.conversations)
    if args.only in (None, "export"):
        bench_export(args.export_n)


if __name__ == "__main__":
    main()
