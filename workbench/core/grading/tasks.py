"""Answers of BIG-Bench Hard style tasks: "So the answer is X", scored per task.

BIG-Bench Mistake scores word sorting, multistep arithmetic and dyck languages by exact
match and its two multiple-choice tasks by option; the same rules grade a continued trace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workbench.core.grading.answers import numbers_equal, parse_number

#: kinds of comparison (the values ``AnswerKind`` in ``library.formats`` stores)
EXACT, NUMERIC, OPTION = "exact", "numeric", "option"
KINDS = (EXACT, NUMERIC, OPTION)

ANSWER_IS = "the answer is"
_OPTION = re.compile(r"\(([A-Z])\)|^\s*([A-Z])\s*[).:]?\s*$")


@dataclass(frozen=True)
class TaskGrade:
    extracted: str | None
    correct: bool | None  # None: no answer found
    reason: str


def extract_task_answer(text: str) -> str | None:
    """The rest of the line after the last "the answer is" (a final full stop dropped)."""
    at = text.lower().rfind(ANSWER_IS)
    if at < 0:
        return None
    rest = text[at + len(ANSWER_IS) :].lstrip(" :")
    line = rest.splitlines()[0].strip() if rest.strip() else ""
    answer = line[:-1].rstrip() if line.endswith(".") else line
    return answer or None


def option_letter(text: str) -> str | None:
    """The single option named in ``text``: ``(C)``, ``C`` or ``C)``; None when it names
    none or several (a hedge like "(A), (B), or (C)" is not an answer)."""
    letters = {a or b for a, b in _OPTION.findall(text.strip())}
    return letters.pop() if len(letters) == 1 else None


def _collapse(text: str) -> str:
    return " ".join(text.split())


def grade_task_answer(kind: str, text: str, target: str) -> TaskGrade:
    """Grade a response (or a trace's last step) against ``target`` under ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown answer kind {kind!r} (known: {', '.join(KINDS)})")
    answer = extract_task_answer(text)
    if answer is None:
        return TaskGrade(None, None, "no 'the answer is' found")
    if kind == EXACT:
        ok = _collapse(answer) == _collapse(target)
        return TaskGrade(answer, ok, "same text" if ok else "different text")
    if kind == NUMERIC:
        got, want = parse_number(answer), parse_number(target)
        if got is None or want is None:
            return TaskGrade(answer, False, "not a number")
        ok = numbers_equal(got, want)
        return TaskGrade(answer, ok, "equal numbers" if ok else "different numbers")
    got_letter, want_letter = option_letter(answer), option_letter(target)
    if got_letter is None:
        return TaskGrade(answer, False, "no single option named")
    ok = got_letter == want_letter
    return TaskGrade(answer, ok, f"option {got_letter}" + ("" if ok else f" != {want_letter}"))
