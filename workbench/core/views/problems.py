"""Read models for the screens that show problems: question heads, problem sets by
name, problems with steps for the prompt preview (light rows and pages are
``library.problems``' ``problem_rows`` / ``query_problems``).

The Problems screen's view query can be interrupted from the UI thread while a worker
runs it (``InterruptibleQuery``), so typing a search never queues full-table scans.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from workbench.core.store import Store, loads


@dataclass(frozen=True)
class QuestionHead:
    """The start of a problem's question (raw text: LaTeX and all), for a one-line preview."""

    id: str
    source: str
    text: str


@dataclass(frozen=True)
class StepProblem:
    """A problem with reference steps, as the prompt preview and Try use it."""

    id: str
    question: str
    answer: str
    steps: tuple[str, ...]


def question_heads(store: Store, ids: Sequence[str], chars: int) -> list[QuestionHead]:
    """The first ``chars`` characters of each question in ``ids`` (any order)."""
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    sql = f"SELECT id, source, substr(question, 1, ?) FROM problems WHERE id IN ({marks})"
    return [QuestionHead(*row) for row in store.conn.execute(sql, [chars, *ids])]


def problem_set_exists(store: Store, name: str) -> bool:
    return store.scalar("SELECT 1 FROM problem_sets WHERE name=?", (name,)) is not None


def step_problems(store: Store, problem_set: str = "", *, limit: int) -> list[StepProblem]:
    """Problems with at least two steps: those of a named set in set order, or the
    library's by id."""
    if problem_set:
        rows = store.query(
            "SELECT p.id, p.question, p.answer, p.steps FROM problem_set_members m "
            "JOIN problem_sets s ON s.id = m.set_id JOIN problems p ON p.id = m.problem_id "
            "WHERE s.name=? AND p.n_steps >= 2 ORDER BY m.position LIMIT ?",
            (problem_set, limit),
        )
    else:
        rows = store.query(
            "SELECT id, question, answer, steps FROM problems WHERE n_steps >= 2 "
            "ORDER BY id LIMIT ?",
            (limit,),
        )
    return [
        StepProblem(r["id"], r["question"], r["answer"], tuple(loads(r["steps"], []))) for r in rows
    ]


class InterruptibleQuery:
    """The one running view query, which a newer request may interrupt from another thread."""

    def __init__(self) -> None:
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @contextmanager
    def running(self, store: Store) -> Iterator[Store]:
        """Register ``store``'s connection as the running view query while the block runs."""
        conn = store.conn
        with self._lock:
            self._conn = conn
        try:
            yield store
        finally:
            with self._lock:  # unregister before the connection closes
                if self._conn is conn:
                    self._conn = None

    def interrupt(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.interrupt()  # sqlite3 allows this from another thread


def latest_calibrated_model(store: Store) -> str | None:
    """The model whose difficulty was written last (the Problems screen's default)."""
    row = store.conn.execute(
        "SELECT model FROM difficulty ORDER BY updated_at DESC, rowid DESC LIMIT 1"
    ).fetchone()
    return None if row is None else str(row[0])


def difficulty_stamp(store: Store) -> tuple[int, str | None]:
    """Changes whenever a calibration writes difficulty (rows, newest write)."""
    n, stamp = store.conn.execute("SELECT COUNT(*), MAX(updated_at) FROM difficulty").fetchone()
    return int(n), stamp


@dataclass(frozen=True)
class ProblemSample:
    """One sample of a problem in some run, for "every sample of this problem"."""

    run_id: int
    run_name: str
    run_kind: str
    sample_id: int
    stage: str
    sample_index: int
    model: str | None
    status: str
    correct: bool | None  # the latest grade's verdict; None: ungraded

    @property
    def verdict(self) -> str:
        if self.status == "error":
            return "error"
        return "ungraded" if self.correct is None else "correct" if self.correct else "wrong"


def problem_samples(store: Store, problem_id: str, *, limit: int = 1000) -> list[ProblemSample]:
    """Every sample of ``problem_id`` across runs, newest run first (at most ``limit``)."""
    rows = store.query(
        "SELECT s.run_id, r.name, r.kind, s.id, s.stage, s.sample_index, s.model, s.status,"
        " (SELECT g.correct FROM grades g WHERE g.sample_id=s.id ORDER BY g.id DESC LIMIT 1)"
        " AS correct FROM samples s JOIN runs r ON r.id=s.run_id WHERE s.problem_id=?"
        " ORDER BY s.run_id DESC, s.stage, s.sample_index, s.id LIMIT ?",
        (problem_id, limit),
    )
    return [
        ProblemSample(
            run_id=r["run_id"],
            run_name=r["name"],
            run_kind=r["kind"],
            sample_id=r["id"],
            stage=r["stage"],
            sample_index=r["sample_index"],
            model=r["model"],
            status=r["status"],
            correct=None if r["correct"] is None else bool(r["correct"]),
        )
        for r in rows
    ]
