"""Scripted tool-calling conversations for the CSV stages, in any provider's wire format.

The responder reads what a real model would see (system text, user text, how many
assistant turns came before) and answers like a tidy teacher or student on tips.csv.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from tests.stub_server import StubServer
from tests.stub_wire import StubReply, StubToolCall, request_text
from workbench.core.csv_agent import import_table
from workbench.core.csv_agent.tables import bundled_tables
from workbench.core.engine import Engine, RetryPolicy
from workbench.core.providers import ProviderRegistry
from workbench.core.settings import ProviderSettings, Settings
from workbench.core.store import Store

TIPS_PATH: Path = bundled_tables()["tips"]
TIPS = pd.read_csv(TIPS_PATH)
SUNDAY_TIP = round(float(TIPS[TIPS["day"] == "Sun"]["tip"].mean()), 2)
DINNER_BILL = round(float(TIPS[TIPS["time"] == "Dinner"]["total_bill"].max()), 2)

SUNDAY: dict[str, Any] = {
    "question": "What is the mean tip on Sundays?",
    "constraints": "Use every Sunday bill.",
    "format": [{"name": "mean_tip", "type": "number", "decimals": 2, "description": "2 decimals"}],
    "hint": "Filter day == Sun and save it as sun, then compute mean(tip) on sun.",
    "dag": [
        {"id": "n1", "tool": "filter", "args": {"conditions": [{"column": "day", "op": "==", "value": "Sun"}]}, "save_as": "sun"},
        {"id": "n2", "tool": "compute", "args": {"expression": "mean(tip)", "frame": "sun"}, "answer": "mean_tip"},
    ],
    "answers": {"mean_tip": SUNDAY_TIP},
    "concepts": ["Summary Statistics"],
    "level": "easy",
}  # fmt: skip
WRONG = {
    **SUNDAY,
    "question": "What is the largest dinner bill?",
    "format": [{"name": "max_bill", "type": "number", "decimals": 2}],
    "dag": [
        {"id": "n1", "tool": "filter", "args": {"conditions": [{"column": "time", "op": "==", "value": "Dinner"}]}, "save_as": "dinner"},
        {"id": "n2", "tool": "compute", "args": {"expression": "max(total_bill)", "frame": "dinner"}},
    ],
    "answers": {"max_bill": DINNER_BILL + 1},
}  # fmt: skip
SINGLE = {
    **SUNDAY,
    "question": "How many bills are there?",
    "format": [{"name": "n", "type": "integer"}],
    "dag": [{"id": "n1", "tool": "compute", "args": {"expression": "count(tip)"}}],
    "answers": {"n": len(TIPS)},
}
DUPLICATE = {**SUNDAY, "question": "What is the mean tip on Sundays ?"}
FIXED = {**WRONG, "answers": {"max_bill": DINNER_BILL}}  # the teacher's answer to feedback
GENERATED = [SUNDAY, WRONG, SINGLE, DUPLICATE]


def assistant_turns(body: dict[str, Any]) -> int:
    return sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")


def call(name: str, **args: Any) -> StubReply:
    return StubReply(tool_calls=(StubToolCall(name, args),))


def csv_responder(path: str, body: dict[str, Any]) -> StubReply:
    text = request_text(body)
    turn = assistant_turns(body)
    if "data-analysis benchmark" in text:  # the teacher
        if turn == 0:
            return call("schema")
        if turn == 1:
            return call("groupby_agg", by=["day"], column="tip", agg="mean")
        if "Some questions were rejected" in text:
            return StubReply(text="Fixed:\n```json\n" + json.dumps([FIXED]) + "\n```")
        return StubReply(text="Here are my questions:\n```json\n" + json.dumps(GENERATED) + "\n```")
    hinted = "Hint:" in text
    if "largest dinner bill" in text:
        day, frame, expression, name, value = (
            "Dinner",
            "dinner",
            "max(total_bill)",
            "max_bill",
            DINNER_BILL,
        )
        column = "time"
    else:
        day, frame, expression, name, value = "Sun", "sun", "mean(tip)", "mean_tip", SUNDAY_TIP
        column = "day"
    script = [
        call("filter", conditions=[{"column": column, "op": "==", "value": day}], save_as=frame),
        call("compute", expression=expression, frame=frame),
    ]
    if not hinted:  # a student slips once before finding its way
        script.insert(0, call("describe", column="Tip"))
    if turn < len(script):
        return script[turn]
    return StubReply(text=f"The answer is @{name}[{value:.2f}].")


KEY_ENV = "WB_CSV_TEST_KEY"

CONFIG: dict[str, Any] = {
    "kind": "csv_agent",
    "name": "csv toy",
    "tables": ["tips"],
    "teacher": "stub:teacher-1",
    "student": "stub:student-1",
    "questions_per_table": 4,
    "explore_turns": 3,
    "samples": 3,
    "max_turns": 6,
}


def setup(
    tmp_path: Path, stub: StubServer, kind: str
) -> tuple[Engine, Store, Settings, ProviderRegistry]:
    stub.responder = csv_responder
    base = {
        "openai-compatible": stub.openai_base_url,
        "openai": stub.openai_base_url,
        "anthropic": stub.anthropic_base_url,
        "cohere": stub.cohere_base_url,
    }[kind]
    settings = Settings(
        providers={
            "stub": ProviderSettings(
                kind=kind, base_url=base, api_key_env=KEY_ENV, max_attempts=2, timeout_s=10.0
            )
        }
    )
    registry = ProviderRegistry(settings)
    store = Store(tmp_path / "wb.db")
    import_table(store, TIPS_PATH)
    engine = Engine(store, registry, settings, retry=RetryPolicy(base_s=0.001, cap_s=0.01))
    return engine, store, settings, registry


def build_csv_run(folder: Path, kind: str = "openai") -> Path:
    """A finished csv_agent run on tips against the stub, in ``folder/wb.db`` (its path)."""
    import asyncio
    import os

    from workbench.core.experiments import load_experiment_config, run_experiment

    async def record() -> None:
        with StubServer() as stub:
            engine, store, settings, registry = setup(folder, stub, kind)
            config = load_experiment_config(CONFIG)
            await run_experiment(store, registry, settings, config, engine=engine)
            await registry.aclose()
            store.close()

    before = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = "sk-csv-test-key-123456"
    try:
        asyncio.run(record())
    finally:
        if before is None:
            del os.environ[KEY_ENV]
        else:
            os.environ[KEY_ENV] = before
    return folder / "wb.db"
