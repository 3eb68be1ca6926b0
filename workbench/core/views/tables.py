"""Read models for the Tables screen: stored tables, a page of a table's rows, the
questions generated on a table with their pass rates, and CSV-agent conversations as turns
with their tool calls (shown and raw output).

Pass rates and their Wilson intervals come from ``csv_agent.verify`` (the one place they are
defined); the screen only renders what is returned here.
"""

from __future__ import annotations

import json
import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from workbench.core.csv_agent import TableRecord, get_table, list_tables
from workbench.core.csv_agent import verify as verify_mod
from workbench.core.csv_agent.pipeline import (
    ANSWER_HINT,
    BEST_OF_N,
    GENERATE,
    QUESTION,
    VERIFY,
    load_conversations,
)
from workbench.core.csv_agent.recorded import RECORDED_SUFFIX
from workbench.core.status import SampleStatus
from workbench.core.store import Store, loads

#: how a conversation stage reads in a list
STAGE_LABELS = {GENERATE: "generate", ANSWER_HINT: "hint", BEST_OF_N: "attempt"}


@dataclass(frozen=True)
class TableSummary:
    """One stored table and how many questions were generated on it."""

    table: TableRecord
    questions: int  # accepted
    rejected: int


@dataclass(frozen=True)
class FramePage:
    """Rows ``offset`` to ``offset + len(rows)`` of a table, as text cells."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    offset: int
    total: int
    error: str | None = None  # the file could not be read (moved, deleted)


@dataclass(frozen=True)
class DagStep:
    id: str
    tool: str
    args: str  # key=value, ...
    save_as: str | None
    answer: str | None
    depth: int  # how many earlier nodes feed it (for indenting)


@dataclass(frozen=True)
class QuestionView:
    """A generated question, its validation, and how often attempts answered it."""

    run_id: int
    question_id: str
    status: str  # accepted / the rejection reason code
    reason: str | None
    flags: tuple[str, ...]
    question: str
    hint: str
    constraints: str
    format: tuple[str, ...]  # name (type, decimals)
    answers: tuple[tuple[str, str], ...]
    recomputed: tuple[tuple[str, str], ...]
    dag: tuple[DagStep, ...]
    raw: str  # the teacher's text for a question that did not parse
    pass_rate: verify_mod.PassRate | None  # over best-of-n attempts, None before any
    recorded: bool = False  # from a recorded run (the demo), not one made here

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


@dataclass(frozen=True)
class ConversationRef:
    """One conversation about a question (or a table's generation), with its verdicts."""

    run_id: int
    stage: str
    key: str
    sample: int
    stop_reason: str
    turns: int
    correct: bool | None  # None: not verified (generation, unfinished)
    subs: tuple[tuple[str, str], ...]  # (sub-answer name, correct / wrong / no_answer)
    recorded: bool = False  # from a recorded run (the demo), not one made here

    @property
    def label(self) -> str:
        return f"{STAGE_LABELS.get(self.stage, self.stage)} {self.sample}"


@dataclass(frozen=True)
class ToolCallView:
    call_id: str
    tool: str
    args: dict[str, Any]
    folded: str  # groupby_agg(by=cut, column=price, agg=mean) -> 5 rows
    shown: str  # what the model saw
    raw: str  # the whole stored result, as indented JSON
    error_kind: str | None


@dataclass(frozen=True)
class TurnView:
    turn: int
    text: str
    calls: tuple[ToolCallView, ...]
    feedback: str | None  # the rejections sent back to the teacher after this turn


@dataclass(frozen=True)
class ConversationView:
    ref: ConversationRef
    prompt_hint: str
    turns: tuple[TurnView, ...]


def recorded_runs(store: Store) -> set[int]:
    """Runs loaded from a recording (``workbench demo``): the screens say so."""
    rows = store.query("SELECT id FROM runs WHERE name LIKE ?", (f"%{RECORDED_SUFFIX}",))
    return {int(r["id"]) for r in rows}


# -- tables ----------------------------------------------------------------------------------


def table_summaries(store: Store) -> list[TableSummary]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in store.query(
        "SELECT json_extract(payload, '$.table_sha256') AS sha, status, COUNT(*) AS n"
        " FROM samples WHERE stage = ? GROUP BY sha, status",
        (QUESTION,),
    ):
        counts[str(r["sha"])][0 if r["status"] == SampleStatus.DONE else 1] += int(r["n"])
    return [
        TableSummary(t, *counts.get(t.sha256, [0, 0]))  # type: ignore[arg-type]
        for t in list_tables(store)
    ]


def frame_page(store: Store, table_id: int, offset: int, limit: int) -> FramePage:
    """A page of the table's rows, read from its file with the stored encoding and delimiter."""
    import pandas as pd  # loaded when a table is first previewed, not at start-up

    table = get_table(store, table_id)
    if table is None:
        return FramePage((), (), 0, 0, f"table {table_id} is not stored")
    offset = max(0, min(offset, max(table.n_rows - 1, 0)))
    try:
        frame = pd.read_csv(
            table.path,
            encoding=table.encoding,
            sep=table.delimiter,
            skiprows=range(1, offset + 1),
            nrows=limit,
            dtype=str,
            keep_default_na=False,
        )
    except (OSError, ValueError) as exc:
        return FramePage(table.columns, (), offset, table.n_rows, f"{table.path}: {exc}")
    rows = tuple(tuple(str(v) for v in row) for row in frame.itertuples(index=False))
    return FramePage(table.columns, rows, offset, table.n_rows)


# -- questions -------------------------------------------------------------------------------


def _arg_text(args: dict[str, Any]) -> str:
    parts = []
    for k, v in args.items():
        if isinstance(v, list) and all(isinstance(x, str | int | float) for x in v):
            text = ",".join(str(x) for x in v)
        elif isinstance(v, dict | list):
            text = json.dumps(v, ensure_ascii=False, separators=(",", ":"))
        else:
            text = str(v)
        parts.append(f"{k}={text}")
    return ", ".join(parts)


def _dag(nodes: list[dict[str, Any]]) -> tuple[DagStep, ...]:
    """Each node indented one deeper than the deepest node whose frame it reads."""
    depth_of_frame: dict[str, int] = {}
    out = []
    for node in nodes:
        args = dict(node.get("args") or {})
        frame = args.get("frame")
        depth = (
            depth_of_frame[frame] + 1 if isinstance(frame, str) and frame in depth_of_frame else 0
        )
        save_as = node.get("save_as")
        if isinstance(save_as, str):
            depth_of_frame[save_as] = depth
        out.append(
            DagStep(
                str(node.get("id", "")),
                str(node.get("tool", "")),
                _arg_text(args),
                save_as if isinstance(save_as, str) else None,
                node.get("answer"),
                depth,
            )
        )
    return tuple(out)


def _pairs(values: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(values, dict):
        return ()
    return tuple((str(k), json.dumps(v, ensure_ascii=False)) for k, v in values.items())


def _verified(store: Store, question_ids: set[str]) -> list[tuple[int, dict[str, Any]]]:
    """(run id, payload) of every verified conversation about ``question_ids``, in order."""
    if not question_ids:
        return []
    marks = ",".join("?" * len(question_ids))
    rows = store.query(
        "SELECT run_id, payload FROM samples WHERE stage = ?"
        f" AND json_extract(payload, '$.question_id') IN ({marks}) ORDER BY id",
        (VERIFY, *sorted(question_ids)),
    )
    return [(int(r["run_id"]), loads(r["payload"], {})) for r in rows]


def _attempt_outcomes(store: Store, question_ids: set[str]) -> dict[str, list[bool]]:
    """Every best-of-n attempt's all-correct, per question, over every run that answered it."""
    outcomes: dict[str, list[bool]] = defaultdict(list)
    for _, p in _verified(store, question_ids):
        if p.get("stage") == BEST_OF_N:
            outcomes[str(p.get("question_id"))].append(bool(p.get("correct")))
    return outcomes


def table_questions(store: Store, table_sha256: str) -> list[QuestionView]:
    """Every question generated on a table (accepted first), with its pass rate."""
    rows = store.query(
        "SELECT run_id, status, output, payload FROM samples WHERE stage = ?"
        " AND json_extract(payload, '$.table_sha256') = ? ORDER BY id",
        (QUESTION, table_sha256),
    )
    ids = {str(loads(r["payload"], {}).get("question_id")) for r in rows}
    outcomes = _attempt_outcomes(store, ids)
    recorded = recorded_runs(store)
    out = []
    for r in rows:
        p = loads(r["payload"], {})
        q = p.get("question") or {}
        qid = str(p.get("question_id"))
        out.append(
            QuestionView(
                run_id=int(r["run_id"]),
                question_id=qid,
                status=str(p.get("status") or r["status"]),
                reason=p.get("reason"),
                flags=tuple(p.get("flags") or ()),
                question=str(q.get("question") or ""),
                hint=str(q.get("hint") or ""),
                constraints=str(q.get("constraints") or ""),
                format=tuple(
                    f"{f.get('name')} ({f.get('type')}"
                    + (f", {f['decimals']} decimals" if f.get("decimals") is not None else "")
                    + ")"
                    for f in q.get("format") or ()
                ),
                answers=_pairs(q.get("answers")),
                recomputed=_pairs(p.get("recomputed")),
                dag=_dag(list(q.get("dag") or ())),
                raw=str(r["output"] or ""),
                pass_rate=verify_mod.pass_rate(outcomes[qid]) if outcomes.get(qid) else None,
                recorded=int(r["run_id"]) in recorded,
            )
        )
    out.sort(key=lambda v: not v.accepted)
    return out


# -- conversations ---------------------------------------------------------------------------


def question_conversations(store: Store, question_id: str) -> list[ConversationRef]:
    """The hinted answer and every attempt at a question, in every run, verified or not."""
    verified = {
        (run_id, str(p.get("stage")), int(p.get("sample", 0))): p
        for run_id, p in _verified(store, {question_id})
    }
    started = store.query(
        "SELECT run_id, stage, sample_index, COUNT(*) AS turns FROM samples"
        " WHERE stage IN (?, ?) AND json_extract(payload, '$.conversation') = ?"
        " GROUP BY run_id, stage, sample_index"
        " ORDER BY run_id, stage = ? DESC, sample_index",
        (ANSWER_HINT, BEST_OF_N, question_id, ANSWER_HINT),
    )
    recorded = recorded_runs(store)
    out = []
    for r in started:
        key = (int(r["run_id"]), str(r["stage"]), int(r["sample_index"]))
        p = verified.get(key)
        subs = tuple((str(s["name"]), str(s["status"])) for s in (p or {}).get("subs", []))
        out.append(
            ConversationRef(
                run_id=key[0],
                stage=key[1],
                key=question_id,
                sample=key[2],
                stop_reason=str(p.get("stop_reason")) if p else "unfinished",
                turns=int(p.get("turns", 0)) if p else int(r["turns"]),
                correct=bool(p.get("correct")) if p else None,
                subs=subs,
                recorded=key[0] in recorded,
            )
        )
    return out


def generation_conversations(store: Store, table_sha256: str) -> list[ConversationRef]:
    """The teacher's exploring conversations on a table (the questions' source)."""
    rows = store.query(
        "SELECT run_id, sample_index, json_extract(payload, '$.conversation') AS conv,"
        " COUNT(*) AS turns FROM samples WHERE stage = ?"
        " AND json_extract(payload, '$.table_sha256') = ?"
        " GROUP BY run_id, conv, sample_index ORDER BY run_id, sample_index",
        (GENERATE, table_sha256),
    )
    recorded = recorded_runs(store)
    return [
        ConversationRef(
            int(r["run_id"]),
            GENERATE,
            str(r["conv"]),
            int(r["sample_index"]),
            "generated",
            int(r["turns"]),
            None,
            (),
            recorded=int(r["run_id"]) in recorded,
        )
        for r in rows
    ]


def _summary(result: dict[str, Any]) -> str:
    kind = result.get("kind")
    if kind == "error" or result.get("is_error"):
        return f"error ({result.get('error_kind', 'error')})"
    if kind == "table":
        n = int(result.get("n_rows", len(result.get("rows", []))))
        return f"{n:,} row{'s' if n != 1 else ''}"
    if kind == "value":
        value = result.get("value")
        if isinstance(value, dict):
            return f"{len(value)} values"
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 24 else text[:23] + "…"
    return "text"


def _raw_text(raw: dict[str, Any]) -> str:
    """The stored result whole: one line per key, a table's rows one per line."""
    lines = []
    for k, v in raw.items():
        if k == "rows" and isinstance(v, list):
            lines.append(f"rows: {len(v):,}")
            lines += [json.dumps(row, ensure_ascii=False) for row in v]
        else:
            lines.append(f"{k}: {json.dumps(v, ensure_ascii=False)}")
    return "\n".join(lines)


def conversation(store: Store, ref: ConversationRef) -> ConversationView:
    """A conversation's turns with each tool call folded, its shown and its raw result."""
    convs = load_conversations(store, ref.run_id, ref.stage, key=ref.key, sample=ref.sample)
    conv = convs.get((ref.key, ref.sample))
    if conv is None:
        return ConversationView(ref, "", ())
    sample_ids = [t.sample_id for t in conv.turns]
    raws: dict[tuple[int, str], dict[str, Any]] = {}
    if sample_ids:
        marks = ",".join("?" * len(sample_ids))
        for r in store.query(
            f"SELECT sample_id, call_id, raw FROM tool_calls WHERE sample_id IN ({marks})",
            sample_ids,
        ):
            try:
                raws[(int(r["sample_id"]), str(r["call_id"]))] = json.loads(
                    zlib.decompress(r["raw"])
                )
            except (zlib.error, ValueError):
                raws[(int(r["sample_id"]), str(r["call_id"]))] = {"kind": "text", "text": "?"}
    hint = ""
    if ref.stage == ANSWER_HINT:
        q = store.query_one(
            "SELECT payload FROM samples WHERE stage = ? AND item_key = ?",
            (QUESTION, f"{QUESTION}/{ref.key}/0"),
        )
        hint = str(((loads(q["payload"], {}) if q else {}).get("question") or {}).get("hint", ""))
    turns = []
    for t in conv.turns:
        calls = []
        for tc in t.tool_calls:
            stored = t.results.get(tc.id)
            raw = raws.get((t.sample_id, tc.id))
            args = dict(tc.arguments)
            outcome = _summary(raw) if raw is not None else "not run"
            calls.append(
                ToolCallView(
                    call_id=tc.id,
                    tool=tc.name,
                    args=args,
                    folded=f"{tc.name}({_arg_text(args)}) -> {outcome}",
                    shown=stored.shown if stored else "",
                    raw=_raw_text(raw) if raw is not None else "",
                    error_kind=stored.error_kind if stored else None,
                )
            )
        turns.append(TurnView(t.turn, t.text, tuple(calls), conv.feedback.get(t.sample_id)))
    return ConversationView(ref, hint, tuple(turns))
