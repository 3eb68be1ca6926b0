"""Vote, selection and parsing logic of the methods experiment, on hand-made cases."""

from __future__ import annotations

from itertools import permutations
from typing import Any

import pytest

from workbench.core.experiments.methods.parse import cot_answer, extract_code, extract_plan
from workbench.core.experiments.methods.post import PostOptions, _resolve
from workbench.core.experiments.methods.vote import (
    cross_method_vote,
    grader_equivalence,
    majority_vote,
    numeric_equivalence,
    parse_selection,
)

SAME = numeric_equivalence()
METHODS = ("cot", "pal", "plan")


# -- self-consistency --------------------------------------------------------------------


def test_majority_wins_and_failures_count_in_the_total() -> None:
    vote = majority_vote(["18", None, "20", "18.0", "$18", None], SAME)
    assert (vote.answer, vote.count, vote.valid, vote.total) == ("18", 3, 4, 6)
    assert not vote.tie
    assert vote.winner_index == 0
    assert [len(c.members) for c in vote.clusters] == [3, 1]


def test_tie_goes_to_the_cluster_seen_first_and_is_reported() -> None:
    vote = majority_vote(["7", "5", "5", "7"], SAME)
    assert (vote.answer, vote.count, vote.tie, vote.winner_index) == ("7", 2, True, 0)
    vote = majority_vote([None, "5", "7", "7", "5"], SAME)
    assert (vote.answer, vote.tie, vote.winner_index) == ("5", True, 1)


def test_tie_break_does_not_depend_on_anything_but_order() -> None:
    answers = ["3", "4", "4", "3", "9"]
    assert {majority_vote(answers, SAME).answer for _ in range(5)} == {"3"}


def test_no_answers_means_no_vote() -> None:
    vote = majority_vote([None, None], SAME)
    assert (vote.answer, vote.count, vote.total, vote.share) == (None, 0, 2, 0.0)
    assert majority_vote([], SAME).answer is None


def test_numeric_tolerance_groups_float_noise_but_not_real_differences() -> None:
    assert SAME("0.30000000000000004", "0.3")
    assert SAME("1,000", "1000")
    assert SAME("$12.50", "12.5")
    assert not SAME("12.5", "12.6")
    assert not SAME("1000", "1001")
    assert SAME("Tuesday", "tuesday")
    loose = numeric_equivalence(rel_tol=0.01, abs_tol=0.01)
    assert loose("99.5", "100")


def test_grader_equivalence_for_math_answers() -> None:
    same = grader_equivalence()
    assert same("\\frac{1}{2}", "0.5")
    assert same("\\dfrac{3}{2}", "\\frac{3}{2}")
    assert not same("\\frac{1}{3}", "0.5")
    vote = majority_vote(["\\frac{1}{2}", "1/2", "2"], same)
    assert (vote.answer, vote.count) == ("\\frac{1}{2}", 2)


# -- across methods -----------------------------------------------------------------------


@pytest.mark.parametrize("pair", [("cot", "pal"), ("cot", "plan"), ("pal", "plan")])
def test_two_of_three_agree_for_every_pair(pair: tuple[str, str]) -> None:
    answers = {m: ("42" if m in pair else "41") for m in METHODS}
    mv = cross_method_vote(answers, SAME)
    assert (mv.status, mv.answer, mv.agreeing) == ("majority", "42", pair)
    assert not mv.needs_resolution
    assert [c.label for c in mv.candidates] == ["A", "B", "C"]


@pytest.mark.parametrize("pair", [("cot", "pal"), ("cot", "plan"), ("pal", "plan")])
def test_two_agree_while_the_third_failed(pair: tuple[str, str]) -> None:
    answers: dict[str, str | None] = {m: ("42" if m in pair else None) for m in METHODS}
    mv = cross_method_vote(answers, SAME)
    assert (mv.status, mv.answer, mv.agreeing) == ("majority", "42", pair)


@pytest.mark.parametrize("order", list(permutations(METHODS)))
def test_all_three_disagree_needs_resolution_in_any_method_order(order: tuple[str, ...]) -> None:
    answers = {m: str(i) for i, m in enumerate(order)}
    mv = cross_method_vote(answers, SAME)
    assert mv.status == "disagree" and mv.answer is None and mv.needs_resolution
    assert [(c.label, c.method) for c in mv.candidates] == list(zip("ABC", order, strict=True))


def test_unanimous_single_and_none() -> None:
    mv = cross_method_vote({"cot": "18", "pal": "18.0", "plan": "18"}, SAME)
    assert (mv.status, mv.answer, mv.agreeing) == ("unanimous", "18", METHODS)
    mv = cross_method_vote({"cot": None, "pal": "5", "plan": None}, SAME)
    assert (mv.status, mv.answer, mv.agreeing) == ("single", "5", ("pal",))
    mv = cross_method_vote({"cot": None, "pal": None, "plan": None}, SAME)
    assert (mv.status, mv.answer, mv.candidates) == ("none", None, ())


def test_two_methods_that_differ_disagree() -> None:
    mv = cross_method_vote({"cot": "1", "pal": None, "plan": "2"}, SAME)
    assert mv.status == "disagree"
    assert [(c.label, c.method, c.answer) for c in mv.candidates] == [
        ("A", "cot", "1"),
        ("B", "plan", "2"),
    ]


def test_two_two_split_with_four_voters_is_a_recorded_tie() -> None:
    mv = cross_method_vote({"a": "1", "b": "2", "c": "2", "d": "1"}, SAME)
    assert (mv.status, mv.answer, mv.agreeing, mv.tie) == ("majority", "1", ("a", "d"), True)


# -- selection ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "choice"),
    [
        ("(B)", "B"),
        ("The best solution is (C).", "C"),
        ("A", "A"),
        ("**(A)**", "A"),
        ("(A) drops a term. (C) misreads the rate. The best solution is (B).", "B"),
        ("Solution (A) is wrong, (C) is right.", "C"),
        ("I choose B", "B"),
        ("(D)", None),  # only three candidates
        ("The answer is a bit unclear.", None),  # lowercase words are not letters
        ("", None),
    ],
)
def test_parse_selection(text: str, choice: str | None) -> None:
    assert parse_selection(text, 3) == choice


def _resolution_row(output: str | None, status: str = "done") -> dict[str, Any]:
    candidates = [
        {"label": "A", "method": "cot", "answer": "1", "sample_id": 1},
        {"label": "B", "method": "pal", "answer": "2", "sample_id": 2},
        {"label": "C", "method": "plan", "answer": "3", "sample_id": 3},
    ]
    return {"id": 9, "status": status, "output": output, "payload": {"candidates": candidates}}


def test_resolution_of_a_disagreement() -> None:
    mv = cross_method_vote({"cot": "1", "pal": "2", "plan": "3"}, SAME)
    select = PostOptions(methods=METHODS, disagreement="select")
    assert _resolve(mv, _resolution_row("The best solution is (B)."), select, "gsm8k") == (
        "2",
        {"how": "select", "choice": "B", "method": "pal", "sample_id": 9},
    )
    answer, how = _resolve(mv, _resolution_row("none of them"), select, "gsm8k")
    assert (answer, how["how"], how["method"]) == ("1", "fallback", "cot")
    answer, how = _resolve(mv, _resolution_row(None, status="error"), select, "gsm8k")
    assert (answer, how["how"]) == ("1", "fallback")
    assert _resolve(mv, None, select, "gsm8k") == (None, {"how": "pending"})
    reflect = PostOptions(methods=METHODS, disagreement="reflect")
    answer, how = _resolve(
        mv, _resolution_row("Redo: 2 + 2 = 4.\nThe answer is 4."), reflect, "gsm8k"
    )
    assert (answer, how["how"]) == ("4", "reflect")
    first = PostOptions(methods=METHODS, disagreement="first")
    assert _resolve(mv, None, first, "gsm8k") == ("1", {"how": "first-method", "method": "cot"})


# -- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "style", "answer", "how"),
    [
        ("3 + 4 = 7\nThe answer is 7.", "gsm8k", "7", "answer-line"),
        ("The answer is $1,250.", "gsm8k", "1250", "answer-line"),
        ("So 18 eggs.\n#### 18", "gsm8k", "18", "gsm8k-marker"),
        (
            "Final Answer: The final answer is $\\frac{14}{3}$. I hope it is correct.",
            "math",
            "\\frac{14}{3}",
            "final-answer-line",
        ),
        (
            "Final Answer: The final answer is 3.5. I hope it is correct.",
            "math",
            "3.5",
            "final-answer-line",
        ),
        ("so $x = \\boxed{3\\sqrt{13}}$", "math", "3\\sqrt{13}", "boxed"),
        ("I do not know.", "gsm8k", None, "none"),
    ],
)
def test_cot_answer(text: str, style: str, answer: str | None, how: str) -> None:
    parsed = cot_answer(text, style)
    assert (parsed.answer, parsed.how) == (answer, how)


def test_extract_code() -> None:
    fenced = "Here:\n```python\nimport math\n```\n```python\ndef solution():\n    return 1\n```\n"
    assert extract_code(fenced) == "def solution():\n    return 1"
    assert extract_code("```\nx = 1\n```") == "x = 1"
    assert extract_code("Sure.\ndef solution():\n    return 2\n") == "def solution():\n    return 2"
    assert (
        extract_code("```python\ndef solution():\n    return 3") == "def solution():\n    return 3"
    )
    assert extract_code("The answer is 4.") is None


def test_extract_plan() -> None:
    text = "Plan:\n1. Add the cups.\n2) Subtract.\nDone."
    assert extract_plan(text) == "1. Add the cups.\n2) Subtract."
    assert extract_plan("Just add them.") == "Just add them."
    assert extract_plan("   ") is None
