"""Store footprint: bytes per journaled call with an 8-shot GSM8K prompt.

    .venv/bin/python bench/store_size.py [n_calls]   (or BENCH_SCALE; default 100,000)

Journals N calls through the real engine (phase 1, session, journal) against an
in-process stub model that answers each question with a GSM8K-style solution: N/4
problems x 4 samples, every prompt the same 8 worked examples (from
../shared/datasets/gsm8k when present, else synthetic ones of the same size) and then
its question.  Prints the file's bytes per call (after a WAL checkpoint and VACUUM)
and the bytes per call of each text column, for the store's layout before the
duplication fix (every copy inline: ``WORKBENCH_STORE_LAYOUT=inline``) and after it,
measured in the same run.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.core.engine import Engine, WorkItem, item_key  # noqa: E402
from workbench.core.engine import records as engine_records  # noqa: E402
from workbench.core.providers import (  # noqa: E402
    Completion,
    Continuation,
    Message,
    ModelRequest,
    ModelResponse,
    Provider,
    ProviderRegistry,
    Usage,
)
from workbench.core.settings import Settings  # noqa: E402
from workbench.core.store import Store  # noqa: E402

GSM8K = ROOT.parent / "shared" / "datasets" / "gsm8k" / "test.jsonl"
SAMPLES = 4


def gsm8k_rows(n: int) -> list[dict[str, str]]:
    if GSM8K.exists():
        rows = []
        with GSM8K.open(encoding="utf-8") as fh:
            for line in fh:
                rows.append(json.loads(line))
                if len(rows) >= n:
                    break
        if rows:
            return [rows[i % len(rows)] for i in range(n)]
    return [
        {
            "question": f"Natalia sold clips to {i} of her friends in April, and then she sold "
            f"half as many clips in May. How many clips did Natalia sell altogether in April "
            f"and May? Each clip costs {i % 7 + 2} dollars; what did she earn?",
            "answer": f"Natalia sold {i}/2 = <<{i}/2={i / 2}>>{i / 2} clips in May.\n"
            f"Natalia sold {i}+{i / 2} = <<{i}+{i / 2}={i * 1.5}>>{i * 1.5} clips altogether.\n"
            f"She earned {i * 1.5} * {i % 7 + 2} dollars.\n#### {i * 1.5 * (i % 7 + 2)}",
        }
        for i in range(n)
    ]


class StubModel(Provider):
    """Answers with the problem's reference solution: realistic response sizes, no HTTP."""

    kind = "stub"

    def __init__(self, answers: dict[str, str]) -> None:
        super().__init__("stub", "http://stub.invalid/v1")
        self.answers = answers

    def continuation_methods(self, model: str) -> tuple[Continuation, ...]:
        return (Continuation.EMULATE,)

    async def complete(self, request: ModelRequest, *, timeout: float) -> ModelResponse:
        question = request.messages[-1].content.rsplit("Question: ", 1)[-1]
        text = self.answers.get(question, "#### 0")
        return ModelResponse(
            completions=(Completion(text=text, finish_reason="stop"),),
            usage=Usage(input_tokens=900, output_tokens=120),
            model="stub-model",
        )


def prompt_prefix(shots: list[dict[str, str]]) -> str:
    parts = [f"Question: {s['question']}\nAnswer: {s['answer']}" for s in shots]
    return "\n\n".join(parts) + "\n\n"


def journal(path: Path, n: int) -> tuple[int, float]:
    rows = gsm8k_rows(n // SAMPLES + 8)
    shots, problems = rows[:8], rows[8:]
    prefix = prompt_prefix(shots)
    # GSM8K's test split has 1,319 problems: number them so every prompt is distinct
    problems = [
        {"question": f"{p['question']} (problem {i})", "answer": p["answer"]}
        for i, p in enumerate(problems)
    ]
    answers = {p["question"]: p["answer"] for p in problems}
    store = Store(path)
    settings = Settings()
    engine = Engine(store, ProviderRegistry(settings, {"stub": StubModel(answers)}), settings)
    run_id = store.create_run("size", "bench", {})
    items = [
        WorkItem(
            key=item_key("solve", f"p{i}", s),
            stage="solve",
            role="solver",
            model_ref="stub:stub-model",
            sample_index=s,
            request=ModelRequest(
                model="stub-model",
                system="Solve grade-school math problems step by step.",
                messages=(Message("user", f"{prefix}Question: {p['question']}"),),
                temperature=0.7,
                max_tokens=512,
            ),
        )
        for i, p in enumerate(problems[: n // SAMPLES])
        for s in range(SAMPLES)
    ]
    started = time.perf_counter()
    end = asyncio.run(engine.run_items(run_id, items))
    took = time.perf_counter() - started
    assert end.status == "done", end
    calls = int(store.scalar("SELECT COUNT(*) FROM calls"))
    store.close()
    return calls, took


def columns(path: Path, calls: int) -> dict[str, float]:
    store = Store(path)
    out: dict[str, float] = {}
    for table, cols in (
        ("calls", ("request", "response", "response_text", "sent_params")),
        ("samples", ("output", "payload")),
    ):
        for col in cols:
            total = store.scalar(
                f"SELECT COALESCE(SUM(LENGTH(CAST({col} AS BLOB))), 0) FROM {table}"
            )
            out[f"{table}.{col}"] = total / calls
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "blobs" in tables:
        out["blobs.data"] = store.scalar("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM blobs") / calls
    store.close()
    return out


def file_bytes(path: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")
    conn.close()
    return path.stat().st_size


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("BENCH_SCALE", 100_000))
    print(f"load average {load()}; {n:,} calls, {SAMPLES} samples per 8-shot prompt")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for layout in ("inline", "deduplicated"):
            engine_records.INLINE_STORE = layout == "inline"
            path = Path(tmp) / f"{layout}.db"
            calls, took = journal(path, n)
            size = file_bytes(path)
            results[layout] = size / calls
            cols = columns(path, calls)
            print(
                f"{layout:>12}: {size / calls:7.0f} bytes/call ({size / 1e6:.1f} MB, "
                f"journaled at {calls / took:,.0f} calls/s) load {load()}"
            )
            print("              " + ", ".join(f"{k} {v:.0f}" for k, v in cols.items() if v))
    before, after = results["inline"], results["deduplicated"]
    print(f"bytes per call before / after: {before:.0f} / {after:.0f} ({after / before:.2f}x)")


if __name__ == "__main__":
    main()
