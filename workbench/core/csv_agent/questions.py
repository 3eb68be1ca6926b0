"""Generated questions: the schema a teacher answers in, and validation without a model.

A teacher's final message holds K questions as JSON.  Each must match
``GeneratedQuestion``; its DAG must name real tools with valid arguments and
frames made by earlier nodes, have at least two nodes, and, executed in the
tool worker, reproduce every stated answer under ``verify.compare``.  A
question whose answer moves when a numeric filter value is nudged by one unit
in its last decimal place is flagged ``fragile``; a near-duplicate of an
earlier question on the same table (token Jaccard >= 0.8, or the same DAG) is
rejected.  Every rejection keeps the raw question and one line of reason.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workbench.core.csv_agent import render, tools, verify

NAME = re.compile(r"^\w+$")
DUPLICATE_JACCARD = 0.8
MAX_FRAGILITY_RUNS = 8

Reason = Literal[
    "malformed_json",
    "schema",
    "unknown_tool",
    "invalid_args",
    "unknown_frame",
    "not_multi_step",
    "dag_error",
    "dag_answer_mismatch",
    "duplicate",
]


class FormatEntry(BaseModel):
    """One named answer: its type, what it means, and how it is compared."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    # auto: DABench's rule (equal strings, or numbers within 1e-6), for imported questions
    type: Literal[
        "auto", "number", "integer", "string", "bool", "date", "list[number]", "list[string]"
    ] = "number"
    description: str = ""
    decimals: int | None = Field(default=None, ge=0, le=12)  # the DAG's value is rounded so
    atol: float | None = Field(default=None, ge=0)
    rtol: float | None = Field(default=None, ge=0)
    ordered: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError(f"answer name {v!r} must match ^\\w+$")
        return v

    def spec(self) -> verify.AnswerSpec:
        """The comparator's view, built the way an RL trainer builds it from the export."""
        return verify.AnswerSpec.from_json(self.model_dump(mode="json"))


class DagNode(BaseModel):
    """One tool call of a question's solution."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    save_as: str | None = None
    answer: str | None = None  # the format entry this node's result answers
    column: str | None = None  # which column of a table result (or key of a value) it is

    def call_args(self) -> dict[str, Any]:
        args = dict(self.args)
        if self.save_as is not None:
            args["save_as"] = self.save_as
        return args


class GeneratedQuestion(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    question: str = Field(min_length=1)
    constraints: str = ""
    format: list[FormatEntry] = Field(min_length=1)
    hint: str = ""
    dag: list[DagNode] = Field(default_factory=list)  # empty only for imported questions
    answers: dict[str, Any]
    concepts: list[str] = Field(default_factory=list)
    level: Literal["easy", "medium", "hard"] = "medium"

    def specs(self) -> list[verify.AnswerSpec]:
        return [f.spec() for f in self.format]

    def format_text(self) -> str:
        """The answer convention shown to answering models: one ``@name[...]`` per entry."""
        lines = [
            f"@{f.name}[...]: {f.type}" + (f", {f.description}" if f.description else "")
            for f in self.format
        ]
        return "\n".join(lines)


@dataclass(frozen=True)
class QuestionCheck:
    """The outcome of validating one proposed question."""

    question_id: str
    raw: Any  # the question as the teacher wrote it
    question: GeneratedQuestion | None
    reason: Reason | None = None  # None: accepted
    message: str = ""  # one line
    flags: tuple[str, ...] = ()  # e.g. fragile
    recomputed: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.reason is None


def question_id(table_sha256: str, raw: Any) -> str:
    text = json.dumps(raw, sort_keys=True, ensure_ascii=False)
    return "q-" + hashlib.sha256(f"{table_sha256}\n{text}".encode()).hexdigest()[:12]


# -- parsing ---------------------------------------------------------------------------------


def parse_questions(text: str) -> list[Any]:
    """The list of question objects in a final message (a JSON array, or {"questions": [...]})."""
    candidates = re.findall(r"```(?:json)?\s*(.*?)```", text, re.DOTALL) or [text]
    last_error = "no JSON found"
    for chunk in reversed(candidates):
        chunk = chunk.strip()
        start = min((i for i in (chunk.find("["), chunk.find("{")) if i >= 0), default=-1)
        if start < 0:
            continue
        try:
            value, _ = json.JSONDecoder().raw_decode(chunk[start:])
        except json.JSONDecodeError as exc:
            last_error = f"line {exc.lineno} column {exc.colno}: {exc.msg}"
            continue
        if isinstance(value, dict) and isinstance(value.get("questions"), list):
            return list(value["questions"])
        if isinstance(value, list):
            return value
        if isinstance(value, dict):
            return [value]
    raise ValueError(f"malformed JSON ({last_error})")


def _schema_line(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "question"
    return f"{where}: {first.get('msg', 'invalid')}"


# -- static checks ---------------------------------------------------------------------------


def static_check(q: GeneratedQuestion) -> tuple[Reason, str] | None:
    """Schema-level problems that need no table: names, tools, arguments, frames, size."""
    names = [f.name for f in q.format]
    if len(set(names)) != len(names):
        return "schema", "format names an answer twice"
    for name in names:
        if name not in q.answers:
            return "schema", f"answers: missing {name!r}"
    for name in q.answers:
        if name not in names:
            return "schema", f"answers: {name!r} is not in format"
    seen_ids: set[str] = set()
    frames = {"df"}
    for node in q.dag:
        if node.id in seen_ids:
            return "schema", f"dag: node id {node.id!r} is used twice"
        seen_ids.add(node.id)
        if node.tool not in tools.TOOLS:
            return "unknown_tool", f"dag node {node.id}: unknown tool {node.tool!r}"
        try:
            args = tools.check_args(node.tool, node.call_args())
        except tools.ToolArgError as exc:
            return "invalid_args", f"dag node {node.id}: {exc}"
        frame = tools.input_frame(args)
        if frame not in frames:
            return "unknown_frame", (
                f"dag node {node.id}: frame {frame!r} is not made by an earlier node"
            )
        if node.answer is not None and node.answer not in names:
            return "schema", f"dag node {node.id}: answer {node.answer!r} is not in format"
        saved = tools.output_frame(node.tool, args)
        if saved:
            frames.add(saved)
    if len(q.dag) < 2:
        return "not_multi_step", "the DAG has a single node; questions must take several steps"
    return None


# -- execution -------------------------------------------------------------------------------

ToolRunner = Callable[[str, str, dict[str, Any]], dict[str, Any]]
"""(conversation id, tool, args) -> JSON result: a worker session, or tools in process."""


def _answer_nodes(q: GeneratedQuestion) -> dict[str, DagNode]:
    out = {n.answer: n for n in q.dag if n.answer is not None}
    for entry in q.format:
        if entry.name not in out:
            out[entry.name] = q.dag[-1]  # unnamed answers come from the last node
    return out


def _value_of(result: dict[str, Any], column: str | None) -> Any:
    if result.get("kind") == "value":
        value = result.get("value")
        if isinstance(value, dict) and column is not None:
            return value.get(column)
        return value
    if result.get("kind") == "table":
        columns = list(result.get("columns", []))
        rows = list(result.get("rows", []))
        index = columns.index(column) if column in columns else len(columns) - 1
        values = [row[index] for row in rows]
        return values[0] if len(values) == 1 else values
    return result.get("text")


@dataclass(frozen=True)
class DagFailure:
    kind: str  # the tool error's kind: invalid_args, exception, timeout, memory, ...
    message: str


def execute_dag(
    q: GeneratedQuestion, run: Callable[[str, dict[str, Any]], dict[str, Any]]
) -> tuple[dict[str, Any], DagFailure | None]:
    """Each answer's recomputed value, or the first failing node's one-line error."""
    results: dict[str, dict[str, Any]] = {}
    for node in q.dag:
        result = run(node.tool, node.call_args())
        if render.is_error(result):
            kind = str(result.get("error_kind") or "exception")
            return {}, DagFailure(kind, f"dag node {node.id}: {result.get('error')}")
        results[node.id] = result
    values: dict[str, Any] = {}
    decimals = {f.name: f.decimals for f in q.format}
    for name, node in _answer_nodes(q).items():
        value = _value_of(results[node.id], node.column)
        values[name] = _rounded(value, decimals.get(name))
    return values, None


def _rounded(value: Any, decimals: int | None) -> Any:
    if decimals is None:
        return value
    if isinstance(value, float):
        return round(value, decimals)
    if isinstance(value, list):
        return [round(v, decimals) if isinstance(v, float) else v for v in value]
    return value


def _as_text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list) else str(value)


def mismatches(q: GeneratedQuestion, recomputed: dict[str, Any]) -> list[str]:
    """Names whose stated answer the recomputed value does not match."""
    out = []
    for spec in q.specs():
        if not verify.compare(_as_text(q.answers[spec.name]), recomputed.get(spec.name), spec):
            out.append(spec.name)
    return out


def _nudges(q: GeneratedQuestion) -> Iterator[GeneratedQuestion]:
    """Copies of ``q`` with one numeric filter value moved one unit in its last decimal place."""
    for i, node in enumerate(q.dag):
        conditions = node.args.get("conditions")
        if node.tool != "filter" or not isinstance(conditions, list):
            continue
        for j, cond in enumerate(conditions):
            value = cond.get("value") if isinstance(cond, dict) else None
            values = value if isinstance(value, list) else [value]
            for k, number in enumerate(values):
                if isinstance(number, bool) or not isinstance(number, int | float):
                    continue
                exponent = Decimal(str(number)).as_tuple().exponent
                unit = 10.0 ** (exponent if isinstance(exponent, int) else 0)
                for delta in (-unit, unit):
                    moved = [*values]
                    moved[k] = round(number + delta, 12)
                    new_cond = {**cond, "value": moved if isinstance(value, list) else moved[0]}
                    new_conditions = [*conditions[:j], new_cond, *conditions[j + 1 :]]
                    new_node = node.model_copy(
                        update={"args": {**node.args, "conditions": new_conditions}}
                    )
                    yield q.model_copy(update={"dag": [*q.dag[:i], new_node, *q.dag[i + 1 :]]})


def is_fragile(
    q: GeneratedQuestion,
    recomputed: dict[str, Any],
    run_for: Callable[[int], Callable[[str, dict[str, Any]], dict[str, Any]]],
) -> bool:
    """Whether nudging a numeric input changes an answer (``run_for(i)``: a fresh frame space)."""
    for i, nudged in enumerate(_nudges(q)):
        if i >= MAX_FRAGILITY_RUNS:
            break
        values, error = execute_dag(nudged, run_for(i))
        if error is not None:
            continue
        specs = {s.name: s for s in q.specs()}
        for name, value in values.items():
            if not verify.compare(_as_text(value), recomputed.get(name), specs[name]):
                return True
    return False


# -- duplicates ------------------------------------------------------------------------------


def tokens(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))


def dag_signature(q: GeneratedQuestion) -> str:
    return json.dumps([(n.tool, n.call_args()) for n in q.dag], sort_keys=True)


def duplicate_of(q: GeneratedQuestion, accepted: Sequence[GeneratedQuestion]) -> int | None:
    """Index of an accepted question ``q`` nearly repeats, if any."""
    mine = tokens(q.question)
    signature = dag_signature(q)
    for i, other in enumerate(accepted):
        theirs = tokens(other.question)
        union = mine | theirs
        if union and len(mine & theirs) / len(union) >= DUPLICATE_JACCARD:
            return i
        if dag_signature(other) == signature:
            return i
    return None


# -- everything together ---------------------------------------------------------------------


def _bound(runner: ToolRunner, conv: str) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """The runner in one frame space (a DAG run, or one nudged copy of it)."""
    return lambda tool, args: runner(conv, tool, args)


def _nudge(runner: ToolRunner, qid: str, i: int) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    return _bound(runner, f"{qid}/nudge{i}")


def validate_questions(
    raws: Sequence[Any],
    *,
    table_sha256: str,
    runner: ToolRunner,
    accepted: Sequence[GeneratedQuestion] = (),
    check_fragile: bool = True,
) -> list[QuestionCheck]:
    """Validate proposed questions in order; ``accepted`` are earlier ones on the same table."""
    kept = list(accepted)
    checks = []
    for raw in raws:
        qid = question_id(table_sha256, raw)
        try:
            q = GeneratedQuestion.model_validate(raw)
        except ValidationError as exc:
            checks.append(QuestionCheck(qid, raw, None, "schema", _schema_line(exc)))
            continue
        problem = static_check(q)
        if problem is not None:
            checks.append(QuestionCheck(qid, raw, q, problem[0], problem[1]))
            continue
        recomputed, failure = execute_dag(q, _bound(runner, f"{qid}/dag"))
        if failure is not None:
            reason: Reason = "invalid_args" if failure.kind == "invalid_args" else "dag_error"
            checks.append(QuestionCheck(qid, raw, q, reason, failure.message))
            continue
        wrong = mismatches(q, recomputed)
        if wrong:
            detail = "; ".join(
                f"{n}: stated {q.answers[n]!r}, the DAG gives {recomputed.get(n)!r}" for n in wrong
            )
            checks.append(
                QuestionCheck(qid, raw, q, "dag_answer_mismatch", detail, recomputed=recomputed)
            )
            continue
        twin = duplicate_of(q, kept)
        if twin is not None:
            message = f"near-duplicate of {kept[twin].question[:80]!r}"
            checks.append(QuestionCheck(qid, raw, q, "duplicate", message, recomputed=recomputed))
            continue
        flags: tuple[str, ...] = ()
        if check_fragile and is_fragile(q, recomputed, functools.partial(_nudge, runner, qid)):
            flags = ("fragile",)
        kept.append(q)
        checks.append(QuestionCheck(qid, raw, q, flags=flags, recomputed=recomputed))
    return checks
