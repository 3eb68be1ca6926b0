"""CSV-agent exports: kept conversations as SFT records, questions as RL prompts.

| format | record |
| --- | --- |
| ``sft-openai`` | ``{messages, tools, parallel_tool_calls: false}``; tool-call arguments as a JSON string |
| ``sft-trl`` | ``{messages, tools}``; arguments as an object; tool turns carry ``name`` |
| ``rl-trl`` | ``{prompt: [system, user], answers, format, dag, table_sha256, table_name}`` |
| ``rl-verl`` | Parquet ``{data_source, prompt, ability, reward_model, extra_info}`` |
| ``rl-openrlhf`` | ``{prompt, answers}`` (``--label_key answers``; answers hold answers + format) |

Hint conversations are exported without the hint by default (the user turn is
rebuilt as the student saw it); ``keep_hint`` keeps it and marks their assistant
turns ``weight: 0`` in ``sft-openai``.  Records stream one conversation at a time
and pass through the one redactor.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from workbench.core.csv_agent import prompts, questions, tools
from workbench.core.csv_agent.pipeline import (
    ANSWER_HINT,
    BEST_OF_N,
    Conversation,
    accepted_questions,
    load_conversations,
    questions_source,
    verified,
)
from workbench.core.csv_agent.tables import TableRecord, get_table
from workbench.core.errors import InputError
from workbench.core.redact import Redactor
from workbench.core.store import Store

SFT_FORMATS = ("sft-openai", "sft-trl")
RL_FORMATS = ("rl-trl", "rl-verl", "rl-openrlhf")
FORMATS = (*SFT_FORMATS, *RL_FORMATS)
DATA_SOURCE = "workbench-csv"
PARQUET_BATCH = 1000


def openai_tools() -> list[dict[str, Any]]:
    return [{"type": "function", "function": {**spec}} for spec in tools.TOOL_SCHEMAS.values()]


def _user_text(table: TableRecord, q: questions.GeneratedQuestion, hint: bool) -> str:
    return prompts.answer_user(
        table, q.question, q.constraints, q.format_text(), q.hint if hint else None
    )


def sft_messages(
    conv: Conversation,
    table: TableRecord,
    q: questions.GeneratedQuestion,
    *,
    style: str,
    keep_hint: bool,
) -> list[dict[str, Any]]:
    """A conversation in OpenAI (``sft-openai``) or TRL (``sft-trl``) message shape."""
    hinted = conv.stage == ANSWER_HINT
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": prompts.ANSWER_SYSTEM},
        {"role": "user", "content": _user_text(table, q, hinted and keep_hint)},
    ]
    for turn in conv.turns:
        message: dict[str, Any] = {"role": "assistant", "content": turn.text or ""}
        if turn.tool_calls:
            message["tool_calls"] = [
                {
                    "id": tc.id,
                    "type": "function",
                    "function": {
                        "name": tc.name,
                        "arguments": (
                            json.dumps(tc.arguments, ensure_ascii=False)
                            if style == "sft-openai"
                            else dict(tc.arguments)
                        ),
                    },
                }
                for tc in turn.tool_calls
            ]
        if style == "sft-openai" and hinted and keep_hint:
            message["weight"] = 0  # the hint made these turns: not the student's own work
        messages.append(message)
        for tc in turn.tool_calls:
            result = turn.results.get(tc.id)
            tool_message: dict[str, Any] = {
                "role": "tool",
                "tool_call_id": tc.id,
                "content": result.shown if result is not None else "",
            }
            if style == "sft-trl":
                tool_message["name"] = tc.name
            messages.append(tool_message)
    return messages


def iter_records(
    store: Store,
    run_id: int,
    fmt: str,
    *,
    keep_hint: bool = False,
    kept_only: bool = True,
) -> Iterator[dict[str, Any]]:
    """One export record at a time, redacted."""
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt}: not a CSV-agent export ({', '.join(FORMATS)})")
    redactor = Redactor.from_env()
    rows = (
        _sft_records(store, run_id, fmt, keep_hint, kept_only)
        if fmt in SFT_FORMATS
        else (_rl_records(store, run_id, fmt))
    )
    for record in rows:
        yield redactor.value(record)


class _Tables:
    """Tables by sha256, read once each."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.known: dict[str, TableRecord] = {}

    def __getitem__(self, sha: str) -> TableRecord:
        table = self.known.get(sha)
        if table is None:
            table = get_table(self.store, sha)
            if table is None:
                raise InputError(f"table {sha[:12]} is not in this workspace")
            self.known[sha] = table
        return table


def _sft_records(
    store: Store, run_id: int, fmt: str, keep_hint: bool, kept_only: bool
) -> Iterator[dict[str, Any]]:
    source = questions_source(store, run_id)
    qs = {str(q["question_id"]): q for q in accepted_questions(store, source)}
    tables = _Tables(store)
    tool_list = openai_tools()
    for stage in (ANSWER_HINT, BEST_OF_N):
        for v in verified(store, run_id, stage):
            if kept_only and not v.get("keep"):
                continue
            q = qs.get(str(v.get("question_id")))
            if q is None:
                continue
            found = load_conversations(
                store, run_id, stage, key=str(v["question_id"]), sample=int(v.get("sample", 0))
            )
            if not found:
                continue
            conv = next(iter(found.values()))
            question = questions.GeneratedQuestion.model_validate(q["question"])
            table = tables[str(q["table_sha256"])]
            record: dict[str, Any] = {
                "messages": sft_messages(conv, table, question, style=fmt, keep_hint=keep_hint),
                "tools": tool_list,
            }
            if fmt == "sft-openai":
                record["parallel_tool_calls"] = False
            yield record


def _rl_records(store: Store, run_id: int, fmt: str) -> Iterator[dict[str, Any]]:
    tables = _Tables(store)
    for q in accepted_questions(store, questions_source(store, run_id)):
        question = questions.GeneratedQuestion.model_validate(q["question"])
        table = tables[str(q["table_sha256"])]
        system = prompts.ANSWER_SYSTEM
        user = _user_text(table, question, hint=False)
        format_json = [f.model_dump(mode="json") for f in question.format]
        dag_json = [n.model_dump(mode="json") for n in question.dag]
        if fmt == "rl-trl":
            yield {
                "prompt": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                "answers": question.answers,
                "format": format_json,
                "dag": dag_json,
                "table_sha256": table.sha256,
                "table_name": table.name,
            }
        elif fmt == "rl-verl":
            truth = {"answers": question.answers, "format": format_json, "dag": dag_json}
            yield {
                "data_source": DATA_SOURCE,
                "prompt": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                "ability": "table-qa",
                "reward_model": {"style": "rule", "ground_truth": json.dumps(truth)},
                "extra_info": {"question_id": str(q["question_id"]), "table_sha256": table.sha256},
            }
        else:
            label = {"answers": question.answers, "format": format_json}
            yield {"prompt": f"{system}\n\n{user}", "answers": json.dumps(label)}


def export_run(
    store: Store,
    run_id: int,
    fmt: str,
    out: str | Path,
    *,
    keep_hint: bool = False,
) -> int:
    """Write a CSV-agent export; returns the number of records."""
    records = iter_records(store, run_id, fmt, keep_hint=keep_hint)
    path = Path(out)
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    if fmt == "rl-verl":
        return _write_parquet(records, path)
    n = 0
    try:
        with path.open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                n += 1
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return n


def _write_parquet(records: Iterator[Mapping[str, Any]], path: Path) -> int:
    """Row groups of ``PARQUET_BATCH`` records, so memory stays flat."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
            (
                "extra_info",
                pa.struct([("question_id", pa.string()), ("table_sha256", pa.string())]),
            ),
        ]
    )
    n = 0
    batch: list[Mapping[str, Any]] = []
    with pq.ParquetWriter(str(path), schema) as writer:
        for record in records:
            batch.append(record)
            if len(batch) >= PARQUET_BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                n += len(batch)
                batch = []
        if batch or n == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            n += len(batch)
    return n


def to_dataset(store: Store, run_id: int, fmt: str, *, keep_hint: bool = False) -> Any:
    """A ``datasets.Dataset`` of ``fmt``'s records (``save_to_disk`` / ``push_to_hub``).

    Tool-call arguments and the verl ground truth stay JSON text where a trainer's shape
    has them as text; ``sft-trl`` arguments, whose keys differ per tool, become JSON text
    too, since one Arrow column cannot hold objects of every tool's shape.
    """
    import datasets  # heavy; only for this export

    def rows() -> Iterator[dict[str, Any]]:
        for record in iter_records(store, run_id, fmt, keep_hint=keep_hint):
            if fmt == "sft-trl":
                for m in record["messages"]:
                    for tc in m.get("tool_calls", []):
                        tc["function"]["arguments"] = json.dumps(tc["function"]["arguments"])
            if "tools" in record:  # each tool's parameters differ: JSON text, one schema
                record["tools"] = json.dumps(record["tools"])
            yield record

    return datasets.Dataset.from_list(list(rows()))


def save_dataset(
    store: Store, run_id: int, fmt: str, path: str | Path, *, keep_hint: bool = False
) -> int:
    ds = to_dataset(store, run_id, fmt, keep_hint=keep_hint)
    try:
        ds.save_to_disk(str(path))
    except OSError as exc:
        raise InputError(f"{path}: cannot save dataset: {exc.strerror or exc}") from None
    return len(ds)
