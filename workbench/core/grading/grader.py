"""Grade model answers against gold answers.

A grade says what was extracted, its normalised form, which method decided and
why.  Plain numbers, letters and short text are decided in-process; anything that
needs sympy (via math-verify) goes to a reused pool of worker processes with a
hard per-item time limit, so grading is safe from any thread.  A timeout is
recorded as status ``timeout`` (ungraded), never as wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from workbench.core.grading.answers import extract_answer, find_answer
from workbench.core.grading.equivalence import Verdict, fast_compare
from workbench.core.grading.pool import PoolResult, shared_pool
from workbench.core.store import Store, now_iso

__all__ = [
    "GRADER_NAME",
    "Grade",
    "extract_answer",
    "grade",
    "grade_answer",
    "grade_many",
    "store_grades",
    "verdict",
]

GRADER_NAME = "wb-grader/1"

GradeStatus = Literal["graded", "no_answer", "timeout", "error"]


@dataclass(frozen=True)
class Grade:
    extracted: str | None
    normalised: str | None
    correct: bool | None  # None unless status is "graded"
    status: GradeStatus
    method: str
    reason: str

    @property
    def verdict(self) -> bool | None:
        """Right / wrong / undecided: see ``verdict``."""
        return verdict(self.correct, self.status)


def verdict(correct: bool | int | None, status: str | None) -> bool | None:
    """What a grade means for rates: its ``correct`` when graded; a response with no
    answer counts as wrong; a timeout, an error or no grade yet is undecided (None)."""
    if correct is not None:
        return bool(correct)
    return False if status == "no_answer" else None


def _style(source: str) -> str:
    return "program" if source == "program" else "auto"


def grade(text: str, gold: str, *, source: str = "auto", timeout_s: float = 5.0) -> Grade:
    """Grade a full model response against a gold answer."""
    return grade_many([(text, gold)], source=source, timeout_s=timeout_s)[0]


def grade_answer(
    answer: str | None, gold: str, *, source: str = "auto", timeout_s: float = 5.0
) -> Grade:
    """Grade an already-extracted answer against a gold answer."""
    return _grade_extracted([(answer, "given")], [gold], timeout_s)[0]


def grade_many(
    pairs: Sequence[tuple[str, str]], *, source: str = "auto", timeout_s: float = 5.0
) -> list[Grade]:
    """Grade (response text, gold) pairs; slow comparisons run in parallel in the pool."""
    style = _style(source)
    extracted = [find_answer(text or "", style=style) for text, _ in pairs]
    return _grade_extracted(
        [(e.answer, e.how) for e in extracted], [gold for _, gold in pairs], timeout_s
    )


def _grade_extracted(
    answers: Sequence[tuple[str | None, str]], golds: Sequence[str], timeout_s: float
) -> list[Grade]:
    grades: list[Grade | None] = []
    slow: list[int] = []
    for i, ((answer, how), gold) in enumerate(zip(answers, golds, strict=True)):
        if answer is None or not answer.strip():
            grades.append(Grade(None, None, None, "no_answer", how, "no final answer found"))
            continue
        try:
            verdict = fast_compare(answer, gold)
        except Exception as exc:  # a grader bug is an error grade, not a crash
            grades.append(Grade(answer, None, None, "error", how, f"{type(exc).__name__}: {exc}"))
            continue
        if verdict is None:
            grades.append(None)
            slow.append(i)
        else:
            grades.append(_from_verdict(answer, how, verdict))
    if slow:
        tasks = [(str(answers[i][0]), golds[i]) for i in slow]
        for i, outcome in zip(slow, shared_pool().run(tasks, timeout_s), strict=True):
            grades[i] = _from_outcome(answers[i], outcome, timeout_s)
    return [g for g in grades if g is not None]


def _from_verdict(answer: str, how: str, v: Verdict) -> Grade:
    method = v.method if how == "given" else f"{how}+{v.method}"
    return Grade(answer, v.normalised, bool(v.correct), "graded", method, v.reason)


def _from_outcome(answer: tuple[str | None, str], outcome: PoolResult, timeout_s: float) -> Grade:
    text, how = answer
    if outcome.status == "ok":
        return _from_verdict(str(text), how, outcome.value)
    if outcome.status == "timeout":
        return Grade(text, None, None, "timeout", how, f"ungraded: timeout after {timeout_s:g}s")
    return Grade(text, None, None, "error", how, str(outcome.value))


def store_grades(store: Store, rows: Sequence[tuple[int, str | None, Grade]]) -> None:
    """Upsert (sample_id, gold, grade) rows into ``grades`` under GRADER_NAME."""
    now = now_iso()
    values = [
        (
            sample_id,
            GRADER_NAME,
            gold,
            g.extracted,
            g.normalised,
            None if g.correct is None else int(g.correct),
            g.status,
            g.method,
            g.reason,
            now,
        )
        for sample_id, gold, g in rows
    ]
    with store.transaction() as conn:
        conn.executemany(
            """
            INSERT INTO grades (sample_id, grader, gold, extracted, normalised, correct,
                                status, method, reason, created_at)
            VALUES (?,?,?,?,?,?,?,?,?,?)
            ON CONFLICT (sample_id, grader) DO UPDATE SET
                gold=excluded.gold, extracted=excluded.extracted,
                normalised=excluded.normalised, correct=excluded.correct,
                status=excluded.status, method=excluded.method, reason=excluded.reason,
                created_at=excluded.created_at
            """,
            values,
        )
