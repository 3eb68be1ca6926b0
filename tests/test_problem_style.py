"""One rule picks a problem's answer style and default solve prompt, for every experiment."""

from __future__ import annotations

import pytest

from workbench.core.library import Problem


def _problem(source: str, answer: str) -> Problem:
    return Problem("d/1", "d", source, "q?", "", answer, None, None, ())


@pytest.mark.parametrize(
    ("source", "answer", "style"),
    [
        ("gsm8k", "18", "gsm8k"),
        ("math", "18", "math"),
        ("numina", r"\frac{1}{2}", "math"),
        ("ocw", "3", "math"),
        ("custom", "1,200", "gsm8k"),  # an unknown source with a plain number: GSM8K style
        ("custom", r"\sqrt{2}", "math"),
    ],
)
def test_answer_style_and_solve_prompt(source: str, answer: str, style: str) -> None:
    p = _problem(source, answer)
    assert p.answer_style == style
    assert p.solve_prompt == f"solve-{style}"
