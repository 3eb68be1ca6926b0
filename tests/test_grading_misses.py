"""The grader misses listed in issue 11: ordered pairs, a choice letter inside
``\\textbf{(C) }12``, and a percent against its fraction (a documented, configurable rule)."""

from __future__ import annotations

import pytest

from workbench.core.grading import grade_many
from workbench.core.grading.equivalence import fast_compare, percent_verdict

CASES = [
    # ordered pairs are ordered: never compared as sets
    (r"So $\boxed{(3,2)}$", "(2,3)", False),
    (r"\boxed{\left( 3, 2 \right)}", r"\left( 2, 3 \right)", False),
    (r"\boxed{(2,\ 3)}", "(2,3)", True),
    # a multiple-choice letter that restates the option's value
    (r"\boxed{\textbf{(C) }12}", "C", True),
    (r"\boxed{\text{(C)} 12}", r"\text{(C)}", True),
    (r"\boxed{(A) 12}", "C", False),
    # ... but a letter inside an expression is not a choice (bench/grading.py's perturbed set)
    (r"\boxed{\text{(C)}+1}", r"\text{(C)}", False),
    (r"\boxed{(C) - 2}", "C", False),
    # a percent against its fraction (rule "either", the default)
    (r"\boxed{25\%}", "0.25", True),
    (r"\boxed{0.25}", r"25\%", True),
    (r"\boxed{25\%}", "25", True),
    (r"\boxed{0.3}", r"25\%", False),
]


def test_listed_misses_are_graded_right() -> None:
    grades = grade_many([(a, g) for a, g, _ in CASES], source="math", timeout_s=10)
    got = [(a, g, gr.correct) for (a, g, _), gr in zip(CASES, grades, strict=True)]
    assert got == CASES


def test_percent_rule_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert fast_compare(r"25\%", "0.25") is not None
    assert percent_verdict(r"25\%", "0.25", "number") is None
    monkeypatch.setenv("WORKBENCH_PERCENT_RULE", "number")
    verdict = fast_compare(r"25\%", "0.25")
    assert verdict is not None and verdict.correct is False
    same = fast_compare(r"25\%", "25")
    assert same is not None and same.correct  # the sign dropped: still the number
