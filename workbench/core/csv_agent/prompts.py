"""The fixed instructions of the CSV stages, and the table profile as text."""

from __future__ import annotations

import json
from typing import Any

from workbench.core.csv_agent.render import table_text
from workbench.core.csv_agent.tables import TableRecord

TEACHER_SYSTEM = """\
You are building a data-analysis benchmark. Explore the table with the tools (at most \
{explore_turns} turns of tool calls), then reply with no tool call and exactly {k} questions as \
one JSON array in a ```json block. Each question needs several tool steps and has this shape:
{{"question": "...", "constraints": "...",
 "format": [{{"name": "mean_price", "type": "number", "decimals": 2, "description": "..."}}],
 "hint": "how to solve it, step by step",
 "dag": [{{"id": "n1", "tool": "filter", "args": {{...}}, "save_as": "f1"}},
         {{"id": "n2", "tool": "compute", "args": {{"frame": "f1", ...}}, "answer": "mean_price"}}],
 "answers": {{"mean_price": 3932.8}}, "concepts": ["Summary Statistics"], "level": "medium"}}
Types: number, integer, string, bool, date, list[number], list[string]. The DAG, run with the \
tools, must give every answer exactly (after rounding to "decimals")."""

ANSWER_SYSTEM = """\
You answer a question about a table by calling the tools; frames you save with save_as live \
for this conversation. When you know the answer, reply with no tool call and give one \
@name[value] for every entry of the answer format, e.g. @mean_price[3932.80]."""


def profile_text(table: TableRecord) -> str:
    """What a model is told about a table before it explores."""
    lines = [
        f"Table {table.name!r} (frame 'df'): {table.n_rows:,} rows x {table.n_columns} columns.",
        "Columns:",
    ]
    for name, col in table.profile["columns"].items():
        if col["min"] is not None:
            extra = f"min {col['min']}, max {col['max']}"
        else:
            extra = "top " + ", ".join(f"{json.dumps(v)} ({n})" for v, n in col["top"])
        lines.append(
            f"- {name} ({col['dtype']}): {col['nulls']} null, {col['distinct']} distinct; {extra}"
        )
    head: list[dict[str, Any]] = table.profile["head"]
    if head:
        columns = list(head[0])
        lines += ["First rows:", table_text(columns, [[r.get(c) for c in columns] for r in head])]
    return "\n".join(lines)


def teacher_user(table: TableRecord, k: int) -> str:
    return f"{profile_text(table)}\n\nExplore this table, then write {k} questions."


def answer_user(
    table: TableRecord, question: str, constraints: str, format_text: str, hint: str | None
) -> str:
    parts = [profile_text(table), "", f"Question: {question}"]
    if constraints:
        parts.append(f"Constraints: {constraints}")
    parts.append(f"Answer format:\n{format_text}")
    if hint:
        parts.append(f"Hint: {hint}")
    return "\n".join(parts)
