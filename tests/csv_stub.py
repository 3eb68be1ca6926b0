"""Scripted tool-calling conversations for the CSV stages, in any provider's wire format.

The responder reads what a real model would see (system text, user text, how many
assistant turns came before) and answers like a tidy teacher or student on tips.csv.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from tests.stub_wire import StubReply, StubToolCall, request_text
from workbench.core.csv_agent.tables import bundled_tables

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
        return StubReply(text="Here are my questions:\n```json\n" + json.dumps(GENERATED) + "\n```")
    hinted = "Hint:" in text
    script = [
        call("filter", conditions=[{"column": "day", "op": "==", "value": "Sun"}], save_as="sun"),
        call("compute", expression="mean(tip)", frame="sun"),
    ]
    if not hinted:  # a student slips once before finding its way
        script.insert(0, call("describe", column="Tip"))
    if turn < len(script):
        return script[turn]
    return StubReply(text=f"The mean Sunday tip is @mean_tip[{SUNDAY_TIP:.2f}].")
