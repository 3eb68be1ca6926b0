"""Schema adapters: map one raw dataset row onto one problem record.

Each adapter raises :class:`RowProblem` naming the field when a row cannot be
used; the importer reports it with the file and line and moves on.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from workbench.core.errors import InputError
from workbench.core.grading.answers import last_boxed

FORMATS = ("gsm8k", "math", "numina", "ocw", "bbmistake", "processbench", "mapped")
MAPPABLE_FIELDS = ("id", "question", "solution", "answer", "subject", "level", "source")


class RowProblem(Exception):
    """A row that cannot be imported; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ProblemRecord:
    native_id: str
    source: str
    question: str
    solution: str
    answer: str
    subject: str | None = None
    level: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: the reference trace's steps as labelled (a model's trace): kept, never re-stepified
    steps: tuple[str, ...] | None = None


def content_id(text: str) -> str:
    """A short stable id from content, for datasets without native ids."""
    return hashlib.sha1(" ".join(text.split()).encode()).hexdigest()[:12]


def _text(row: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = row.get(name)
    if value is None or (isinstance(value, float) and value != value):  # NaN from CSV
        value = ""
    text = str(value).strip()
    if required and not text:
        raise RowProblem(name, "missing or empty")
    return text


def parse_level(value: Any) -> int | None:
    """1-5 from an int, "3" or "Level 3"; None for "Level ?" or nothing."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and value == value:
        return int(value)
    m = re.search(r"\d+", str(value))
    return int(m.group()) if m else None


_CALC = re.compile(r"<<[^<>]*>>")
_FINAL = re.compile(r"^\s*####\s*(.*?)\s*$", re.M)


def gsm8k(row: Mapping[str, Any]) -> ProblemRecord:
    """GSM8K: ``question``; ``answer`` = worked lines with ``<<calc>>`` notes + ``#### N``."""
    question = _text(row, "question")
    raw = _text(row, "answer")
    finals = _FINAL.findall(raw)
    if not finals or not finals[-1]:
        raise RowProblem("answer", "no '#### N' final answer line")
    solution = _CALC.sub("", _FINAL.sub("", raw)).strip()
    return ProblemRecord(content_id(question), "gsm8k", question, solution, finals[-1])


def _boxed_answer(row: Mapping[str, Any], solution: str) -> str:
    answer = _text(row, "answer", required=False)
    if not answer:
        answer = (last_boxed(solution) or "").strip()
    if not answer:
        raise RowProblem("answer", "empty, and no \\boxed{} answer in the solution")
    return answer


def math(row: Mapping[str, Any]) -> ProblemRecord:
    """MATH / MATH-500: ``problem``, ``solution`` (\\boxed), ``answer``, ``subject``/``type``, ``level``."""
    question = _text(row, "problem")
    solution = _text(row, "solution")
    subject = _text(row, "subject", required=False) or _text(row, "type", required=False)
    native = _text(row, "unique_id", required=False) or content_id(question)
    return ProblemRecord(
        native,
        "math",
        question,
        solution,
        _boxed_answer(row, solution),
        subject or None,
        parse_level(row.get("level")),
    )


def numina(row: Mapping[str, Any]) -> ProblemRecord:
    """NuminaMath-CoT: ``source`` (origin competition), ``problem``, ``solution``, ``messages``."""
    question = _text(row, "problem")
    solution = _text(row, "solution")
    origin = _text(row, "source", required=False)
    return ProblemRecord(
        content_id(question),
        "numina",
        question,
        solution,
        _boxed_answer(row, solution),
        origin or None,
        None,
        {"origin": origin} if origin else {},
    )


def ocw(row: Mapping[str, Any]) -> ProblemRecord:
    """OCW / minerva: ``problem``, ``solution``, ``type`` (course), optional ``answer``."""
    question = _text(row, "problem")
    solution = _text(row, "solution")
    subject = _text(row, "type", required=False) or None
    native = _text(row, "idx", required=False) or content_id(question)
    return ProblemRecord(native, "ocw", question, solution, _boxed_answer(row, solution), subject)


# -- labelled model traces: the reference trace is a model's, with its first mistake marked --


class AnswerKind(StrEnum):
    """How a task's final answer is compared with its target."""

    EXACT = "exact"  # word sorting, dyck languages: the same string (spaces collapsed)
    NUMERIC = "numeric"  # multistep arithmetic
    OPTION = "option"  # multiple choice: the option letter


#: BIG-Bench Mistake's five tasks and how each is scored (its README: exact match for word
#: sorting, multistep arithmetic and dyck languages, multiple choice for the other two)
BBMISTAKE_TASKS: dict[str, AnswerKind] = {
    "dyck_languages": AnswerKind.EXACT,
    "logical_deduction": AnswerKind.OPTION,
    "multistep_arithmetic": AnswerKind.NUMERIC,
    "tracking_shuffled_objects": AnswerKind.OPTION,
    "word_sorting": AnswerKind.EXACT,
}
_BRACKETS = re.compile(r"[\s()\[\]{}<>]+")
_ARITHMETIC = re.compile(r"[\s\d()+\-*/]+=\s*")


def bbmistake_task(row: Mapping[str, Any]) -> str:
    """The row's task: its ``task`` field, else recognised from the input's shape."""
    given = _text(row, "task", required=False)
    if given:
        if given not in BBMISTAKE_TASKS:
            raise RowProblem(
                "task", f"unknown task {given!r} (known: {', '.join(BBMISTAKE_TASKS)})"
            )
        return given
    text = _text(row, "input")
    if _BRACKETS.fullmatch(text):
        return "dyck_languages"
    if _ARITHMETIC.fullmatch(text):
        return "multistep_arithmetic"
    if "Options:" in text:
        if "swap" in text or "trade" in text or "switch" in text:
            return "tracking_shuffled_objects"
        return "logical_deduction"
    if re.fullmatch(r"\S+( \S+)*", text):  # one line of words
        return "word_sorting"
    raise RowProblem("input", "cannot tell the task; add a 'task' field")


def _steps(row: Mapping[str, Any]) -> tuple[str, ...]:
    steps = row.get("steps")
    if not isinstance(steps, list | tuple) or not steps:
        raise RowProblem("steps", "missing, or not a non-empty list of strings")
    if not all(isinstance(step, str) for step in steps):
        raise RowProblem("steps", "every step must be text")
    # an empty step stays: the labels count steps by position
    return tuple(step.strip() for step in steps)


def _mistake_index(row: Mapping[str, Any], name: str, n_steps: int, *, none: Any) -> int | None:
    """A 0-based first-mistake index (``none`` means no mistake), checked against the steps."""
    value = row.get(name)
    if value is None or value == none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RowProblem(name, f"not a step index: {value!r}")
    if not 0 <= value < n_steps:
        raise RowProblem(name, f"step {value} is out of range (the trace has {n_steps} steps)")
    return value


def bbmistake(row: Mapping[str, Any]) -> ProblemRecord:
    """BIG-Bench Mistake: ``input``, ``steps`` (PaLM 2's trace), ``answer`` (the trace's),
    ``target`` (gold), ``mistake_index`` (first logical mistake, 0-based; null: none)."""
    task = bbmistake_task(row)
    question = _text(row, "input")
    steps = _steps(row)
    target = _text(row, "target")
    mistake = _mistake_index(row, "mistake_index", len(steps), none=None)
    trace = "\n".join(steps)
    meta = {
        "task": task,
        "answer_kind": str(BBMISTAKE_TASKS[task]),
        "reference": "model trace",  # not a gold solution
        "trace_answer": _text(row, "answer", required=False),
        "mistake_index": mistake,
        "label_source": "bbmistake",
    }
    return ProblemRecord(
        content_id(f"{task}\n{question}\n{trace}"),
        "bbmistake",
        question,
        trace,
        target,
        task,
        None,
        meta,
        steps,
    )


PROCESSBENCH_SPLITS = ("gsm8k", "math", "olympiadbench", "omnimath")


def processbench(row: Mapping[str, Any]) -> ProblemRecord:
    """ProcessBench: ``id`` (``<split>-<n>``), ``problem``, ``steps``, ``final_answer_correct``,
    ``label`` (earliest wrong step, 0-based; -1: none).  It has no gold answer."""
    question = _text(row, "problem")
    steps = _steps(row)
    if row.get("label") is None:
        raise RowProblem("label", "missing (the earliest wrong step, or -1)")
    mistake = _mistake_index(row, "label", len(steps), none=-1)
    native = _text(row, "id", required=False) or content_id(question + "\n".join(steps))
    split = _text(row, "split", required=False) or native.rsplit("-", 1)[0]
    if split not in PROCESSBENCH_SPLITS:
        split = ""
    correct = row.get("final_answer_correct")
    meta = {
        "task": split or None,
        "reference": "model trace",
        "generator": _text(row, "generator", required=False) or None,
        "final_answer_correct": None if correct is None else bool(correct),
        "mistake_index": mistake,
        "label_source": "processbench",
    }
    return ProblemRecord(
        native, "processbench", question, "\n".join(steps), "", split or None, None, meta, steps
    )


def mapped(mapping: Mapping[str, str]) -> Callable[[Mapping[str, Any]], ProblemRecord]:
    """An adapter for any other layout: ``mapping`` is workbench field -> column name."""
    unknown = sorted(set(mapping) - set(MAPPABLE_FIELDS))
    if unknown:
        raise InputError(
            f"--map: unknown field {unknown[0]!r} (fields: {', '.join(MAPPABLE_FIELDS)})"
        )
    if "question" not in mapping:
        raise InputError("--map: 'question=COLUMN' is required")

    def adapt(row: Mapping[str, Any]) -> ProblemRecord:
        def col(name: str, *, required: bool = False) -> str:
            column = mapping.get(name)
            if column is None:
                return ""
            try:
                return _text(row, column, required=required)
            except RowProblem as exc:
                raise RowProblem(f"{column} (mapped to {name})", str(exc)) from None

        question = col("question", required=True)
        solution = col("solution")
        answer = col("answer")
        if not answer:
            finals = _FINAL.findall(solution)
            answer = finals[-1] if finals else (last_boxed(solution) or "").strip()
        if not answer:
            name = f"{mapping['answer']} (mapped to answer)" if "answer" in mapping else "answer"
            raise RowProblem(name, "empty, and no \\boxed{} or '#### N' in the solution")
        return ProblemRecord(
            col("id") or content_id(question),
            col("source") or "custom",
            question,
            solution,
            answer,
            col("subject") or None,
            parse_level(col("level")),
        )

    return adapt


ADAPTERS: dict[str, Callable[[Mapping[str, Any]], ProblemRecord]] = {
    "gsm8k": gsm8k,
    "math": math,
    "numina": numina,
    "ocw": ocw,
    "bbmistake": bbmistake,
    "processbench": processbench,
}


def detect_format(columns: set[str]) -> str | None:
    """Guess the schema from a row's keys; None when it matches no known layout."""
    if {"input", "steps", "mistake_index"} <= columns:
        return "bbmistake"
    if {"problem", "steps", "label"} <= columns:
        return "processbench"
    if {"question", "answer"} <= columns:
        return "gsm8k"
    if {"problem", "solution", "messages"} <= columns:
        return "numina"
    if {"problem", "solution"} <= columns:
        if "level" in columns or "subject" in columns or "unique_id" in columns:
            return "math"
        return "ocw" if "type" in columns else "math"
    return None
