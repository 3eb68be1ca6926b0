"""Methods view: for one problem of a methods run, each method's answer and the vote.

Read from the problem's ``vote`` row, which post-processing writes (each method's
self-consistency answer, its stored grade and its representative sample; the cross-method
vote and how it was resolved), so the screen shows what the metrics count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workbench.core.experiments.methods.post import METHOD_NAMES, VOTE
from workbench.core.store import Store, loads

#: short names for the methods, as a table header reads them
METHOD_LABELS = {"cot": "CoT", "pal": "PAL", "plan": "plan-then-code"}


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def method_title(method: str) -> str:
    """E.g. ``PAL (a program (program-aided))``: the label and what it means."""
    name = METHOD_NAMES.get(method)
    label = method_label(method)
    return f"{label} ({name})" if name and name.lower() != label.lower() else label


@dataclass(frozen=True)
class MethodAnswer:
    method: str
    answer: str | None
    count: int  # samples agreeing with the answer
    total: int  # samples of this method for the problem
    correct: bool | None  # the stored grade of the method's answer
    sample_id: int | None  # the representative sample (opens its trace)
    errors: tuple[str, ...]  # e.g. "exception 1", "timeout 2"

    @property
    def label(self) -> str:
        return method_label(self.method)


@dataclass(frozen=True)
class MethodsRow:
    """One problem of a methods run: CoT | PAL | plan-then-code | the vote."""

    problem_id: str
    vote_sample_id: int
    methods: tuple[MethodAnswer, ...]
    vote_answer: str | None
    vote_correct: bool | None
    vote_status: str  # unanimous / majority / disagree / single / none
    how: str  # how the final answer was reached (vote, select, reflect, ...)


def _answer(method: str, record: Mapping[str, Any]) -> MethodAnswer:
    errors = record.get("errors") or {}
    correct = record.get("correct")
    sample = record.get("sample_id")
    return MethodAnswer(
        method=method,
        answer=None if record.get("answer") is None else str(record.get("answer")),
        count=int(record.get("count") or 0),
        total=int(record.get("total") or 0),
        correct=correct if isinstance(correct, bool) else None,
        sample_id=int(sample) if isinstance(sample, int) else None,
        errors=tuple(f"{k} {v}" for k, v in sorted(errors.items())),
    )


def methods_row(store: Store, run_id: int, problem_id: str) -> MethodsRow | None:
    """The problem's methods and vote in run ``run_id`` (None: no vote row yet)."""
    row = store.query_one(
        "SELECT id, payload FROM samples WHERE run_id=? AND stage=? AND problem_id=?"
        " ORDER BY id DESC LIMIT 1",
        (run_id, VOTE, problem_id),
    )
    if row is None:
        return None
    payload = loads(row["payload"], {}) or {}
    per_method = payload.get("methods") or {}
    resolution = payload.get("resolution") or {}
    correct = payload.get("correct")
    return MethodsRow(
        problem_id=problem_id,
        vote_sample_id=int(row["id"]),
        methods=tuple(_answer(str(m), r) for m, r in per_method.items() if isinstance(r, Mapping)),
        vote_answer=None if payload.get("answer") is None else str(payload["answer"]),
        vote_correct=correct if isinstance(correct, bool) else None,
        vote_status=str(payload.get("status") or "-"),
        how=str(resolution.get("how") or "-") if isinstance(resolution, Mapping) else "-",
    )
