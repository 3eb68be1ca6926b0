"""What both experiments read from a labelled trace, and how they grade without a model."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.core.grading.grader import Grade
from workbench.core.grading.tasks import grade_task_answer
from workbench.core.library import Problem
from workbench.core.payloads import StepLabelFields


@dataclass(frozen=True)
class LabelledTrace:
    """A problem whose reference trace is a model's, with its first mistake labelled."""

    problem: Problem
    steps: tuple[str, ...]
    mistake_index: int | None
    task: str | None
    answer_kind: str | None  # None: no gold answer (ProcessBench), so no final-answer grade

    @property
    def fields(self) -> StepLabelFields:
        fields = StepLabelFields(
            task=self.task, mistake_index=self.mistake_index, n_steps=len(self.steps)
        )
        if self.answer_kind is not None:
            fields["answer_kind"] = self.answer_kind
        return fields

    def original_correct(self) -> bool | None:
        """Whether the trace's own final answer is right (None without a gold answer)."""
        if self.answer_kind is None or not self.problem.answer:
            return None
        return grade_task_answer(self.answer_kind, self.steps[-1], self.problem.answer).correct


def labelled(problem: Problem) -> LabelledTrace | None:
    """The problem as a labelled trace, or None when it carries no step label."""
    meta = problem.meta or {}
    if "mistake_index" not in meta or not problem.steps:
        return None
    index = meta.get("mistake_index")
    kind = meta.get("answer_kind")
    return LabelledTrace(
        problem,
        tuple(problem.steps),
        index if isinstance(index, int) else None,
        str(meta["task"]) if meta.get("task") else None,
        str(kind) if kind else None,
    )


def pick_grade(predicted: int | None, readable: bool, label: int | None, how: str) -> Grade:
    """A critic's pick against the label: right when it names the labelled step (or "none"
    for a trace labelled free of mistakes); an unreadable reply counts as no answer."""
    text = "none" if predicted is None else str(predicted)
    if not readable:
        return Grade(None, None, None, "no_answer", how, "the reply names no step and not 'none'")
    correct = predicted == label
    gold = "none" if label is None else f"step {label + 1}"
    reason = "the labelled step" if correct else f"the label says {gold}"
    return Grade(text, text, correct, "graded", how, reason)


def task_grade(kind: str, text: str, target: str) -> Grade:
    """A continued trace's final answer under its task's rule, as a stored grade."""
    g = grade_task_answer(kind, text, target)
    if g.correct is None:
        return Grade(None, None, None, "no_answer", f"task-{kind}", g.reason)
    return Grade(g.extracted, g.extracted, g.correct, "graded", f"task-{kind}", g.reason)
