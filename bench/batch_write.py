"""Batch files out: ``export_stage`` writing N pending items as OpenAI-batch JSONL shards.

Baseline, in the same run: a plain loop that json-encodes the same number of
OpenAI-batch lines (custom_id, method, url, body) to a file, with no store,
no request hashing and no batch rows: what any writer must at least cost.

Target (issue 14): >= 10,000 lines/s for 50,000 items.
Run: .venv/bin/python bench/batch_write.py [n_items]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.core.batch import export_stage  # noqa: E402
from workbench.core.engine import Engine, WorkItem, item_key  # noqa: E402
from workbench.core.providers import Message, ModelRequest, ProviderRegistry  # noqa: E402
from workbench.core.settings import ProviderSettings, Settings  # noqa: E402
from workbench.core.store import Store  # noqa: E402

QUESTION = "Natalia sold clips to 48 of her friends in April, and then she sold half as many " * 4


def items(n: int) -> list[WorkItem]:
    return [
        WorkItem(
            key=item_key("solve", f"gsm8k/{i // 4}", i % 4),
            stage="solve",
            role="solver",
            model_ref="gpu:m",
            request=ModelRequest(
                model="m",
                system="Solve the problem step by step.",
                messages=(Message("user", f"{QUESTION} ({i})"),),
                temperature=0.7,
                max_tokens=512,
            ),
            problem_id=None,
            sample_index=i % 4,
        )
        for i in range(n)
    ]


def plain(path: Path, work: list[WorkItem]) -> None:
    with path.open("w") as f:
        for i, item in enumerate(work):
            body = {
                "model": "m",
                "messages": [{"role": "system", "content": item.request.system}]
                + [{"role": m.role, "content": m.content} for m in item.request.messages],
                "max_tokens": 512,
                "temperature": 0.7,
            }
            line = {"custom_id": f"wb{i:030d}", "method": "POST", "url": "/v1/chat/completions"}
            f.write(json.dumps({**line, "body": body}) + "\n")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    settings = Settings(
        providers={"gpu": ProviderSettings(kind="openai-compatible", base_url="http://x/v1")}
    )
    work = items(n)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        plain(Path(tmp) / "plain.jsonl", work)
        base_s = time.perf_counter() - started
        store = Store(Path(tmp) / "wb.db")
        run_id = store.create_run("bench", "bench", {})
        engine = Engine(store, ProviderRegistry(settings), settings)
        started = time.perf_counter()
        report = export_stage(engine, store, run_id, "solve", work, Path(tmp) / "out")
        took = time.perf_counter() - started
        lines = sum(s.lines for s in report.shards)
        assert lines == n, lines
    load = os.getloadavg()[0]
    print(f"batch_write: {n} items, load average {load:.2f}")
    print(f"  plain json loop:  {n / base_s:10,.0f} lines/s  ({base_s:.2f} s)")
    print(
        f"  export_stage:     {n / took:10,.0f} lines/s  ({took:.2f} s)  {took / base_s:.1f}x plain"
    )
    print(f"  target >= 10,000 lines/s: {'met' if n / took >= 10_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
