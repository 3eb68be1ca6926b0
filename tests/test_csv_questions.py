"""Generated questions: schema, static checks, DAG execution against stated answers, flags."""

from __future__ import annotations

import copy
import json
from typing import Any

import pandas as pd
import pytest

from workbench.core.csv_agent import questions as qs
from workbench.core.csv_agent.tables import bundled_tables
from workbench.core.csv_agent.tools import Frames, run_tool

TIPS = pd.read_csv(bundled_tables()["tips"])
SHA = "0" * 64


def in_process() -> qs.ToolRunner:
    spaces: dict[str, Frames] = {}

    def run(conv: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        return run_tool(spaces.setdefault(conv, Frames(TIPS)), tool, args)

    return run


SUNDAY_TIP = round(float(TIPS[TIPS["day"] == "Sun"]["tip"].mean()), 2)
GOOD: dict[str, Any] = {
    "question": "What is the mean tip on Sundays?",
    "constraints": "Use every Sunday bill.",
    "format": [{"name": "mean_tip", "type": "number", "decimals": 2, "description": "2 decimals"}],
    "hint": "Filter to Sunday, then average the tip column.",
    "dag": [
        {"id": "n1", "tool": "filter", "args": {"conditions": [{"column": "day", "op": "==", "value": "Sun"}]}, "save_as": "sun"},
        {"id": "n2", "tool": "compute", "args": {"expression": "mean(tip)", "frame": "sun"}, "answer": "mean_tip"},
    ],
    "answers": {"mean_tip": SUNDAY_TIP},
    "concepts": ["Summary Statistics"],
    "level": "easy",
}  # fmt: skip


def variant(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(GOOD)
    out.update(changes)
    return out


def check(*raws: Any) -> list[qs.QuestionCheck]:
    return qs.validate_questions(list(raws), table_sha256=SHA, runner=in_process())


def test_a_good_question_is_accepted_with_its_recomputed_answer() -> None:
    (c,) = check(GOOD)
    assert c.accepted and c.recomputed == {"mean_tip": SUNDAY_TIP} and c.flags == ()
    assert c.question is not None and "@mean_tip[...]: number" in c.question.format_text()


def test_parse_questions_from_messages() -> None:
    text = "Here they are:\n```json\n" + json.dumps({"questions": [GOOD, GOOD]}) + "\n```"
    assert len(qs.parse_questions(text)) == 2
    assert qs.parse_questions("prefix " + json.dumps([GOOD])) == [GOOD]
    with pytest.raises(ValueError, match="malformed JSON"):
        qs.parse_questions('```json\n[{"question": "x",]\n```')


@pytest.mark.parametrize(
    ("raw", "reason", "message"),
    [
        ({k: v for k, v in GOOD.items() if k != "answers"}, "schema", "answers: Field required"),
        (variant(format=[{"name": "mean tip", "type": "number"}]), "schema", "must match"),
        (variant(answers={"mean_tip": 1, "other": 2}), "schema", "'other' is not in format"),
        (variant(dag=[GOOD["dag"][0], {"id": "n2", "tool": "pivot", "args": {}}]), "unknown_tool", "unknown tool 'pivot'"),
        (variant(dag=[GOOD["dag"][0], {"id": "n2", "tool": "compute", "args": {"expression": "mean(tip)", "frame": "f9"}}]),
         "unknown_frame", "frame 'f9' is not made by an earlier node"),
        (variant(dag=[GOOD["dag"][0], {"id": "n2", "tool": "sort_top", "args": {"column": "tip", "k": 10**9}}]),
         "invalid_args", "k must be between 1 and 1000"),
        (variant(dag=[{"id": "n1", "tool": "compute", "args": {"expression": "round(mean(tip), 2)"}}], answers={"mean_tip": round(float(TIPS["tip"].mean()), 2)}),
         "not_multi_step", "single node"),
        (variant(dag=[GOOD["dag"][0], {"id": "n2", "tool": "compute", "args": {"expression": "mean(Tip)", "frame": "sun"}}]),
         "invalid_args", "column 'Tip' does not exist in frame 'sun'; did you mean 'tip'?"),
        (variant(dag=[GOOD["dag"][0], {"id": "n2", "tool": "compute", "args": {"expression": "day / 2", "frame": "sun"}}]),
         "dag_error", "dag node n2: TypeError"),
    ],
)  # fmt: skip
def test_rejections_keep_a_one_line_reason(raw: dict[str, Any], reason: str, message: str) -> None:
    (c,) = check(raw)
    assert c.reason == reason and message in c.message and "\n" not in c.message, c
    assert c.raw == raw


def test_a_wrong_stated_answer_is_a_mismatch_with_the_recomputed_value_stored() -> None:
    (c,) = check(variant(answers={"mean_tip": SUNDAY_TIP + 0.5}))
    assert c.reason == "dag_answer_mismatch"
    assert c.recomputed == {"mean_tip": SUNDAY_TIP}
    assert f"the DAG gives {SUNDAY_TIP!r}" in c.message


def test_near_duplicates_and_identical_dags_are_rejected() -> None:
    reworded = variant(question="What is the mean tip on Sundays ?")
    same_dag = variant(question="Average gratuity for the last weekend day?")
    first, second, third = check(GOOD, reworded, same_dag)
    assert first.accepted
    assert (second.reason, third.reason) == ("duplicate", "duplicate")


def test_fragile_questions_are_flagged_not_rejected() -> None:
    # a threshold sitting on a value the table holds: moving it by one unit changes the count
    count = int((TIPS["total_bill"] > 20.65).sum())
    fragile = variant(
        question="How many bills are over 20.65?",
        format=[{"name": "n", "type": "integer"}],
        dag=[
            {"id": "n1", "tool": "filter", "args": {"conditions": [{"column": "total_bill", "op": ">", "value": 20.65}]}, "save_as": "big"},
            {"id": "n2", "tool": "compute", "args": {"expression": "count(tip)", "frame": "big"}},
        ],
        answers={"n": count},
    )  # fmt: skip
    (c,) = check(fragile)
    assert c.accepted and c.flags == ("fragile",)
    sturdy = variant(
        question="How many bills are over 100?",
        format=[{"name": "n", "type": "integer"}],
        dag=[
            {"id": "n1", "tool": "filter", "args": {"conditions": [{"column": "total_bill", "op": ">", "value": 100}]}, "save_as": "big"},
            {"id": "n2", "tool": "compute", "args": {"expression": "count(tip)", "frame": "big"}},
        ],
        answers={"n": 0},
    )  # fmt: skip
    (c2,) = check(sturdy)
    assert c2.accepted and c2.flags == ()
