"""Answer extraction and equivalence, the process pool's timeouts, and storing grades."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from workbench.core.grading.grader import (
    GRADER_NAME,
    Grade,
    extract_answer,
    grade,
    grade_answer,
    grade_many,
    store_grades,
)
from workbench.core.grading.pool import shared_pool
from workbench.core.store import Store, now_iso

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="../shared/datasets not present")


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


# -- extraction --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so $\\boxed{\\frac{1}{2}}$ and then \\boxed{\\sqrt{x^{2}}}.", "\\sqrt{x^{2}}"),
        ("Janet makes 18.\n#### 18", "18"),
        ("Thus the final answer is $42$.", "42"),
        ("The answer is: **73**.", "73"),
        ("Final Answer: 1,000 dollars", "1,000 dollars"),
        ("Reasoning...\nA: 26", "26"),
        ("She has 3 apples and buys 4 more, total 7 apples", "7"),
        ("I do not know.", None),
        ("", None),
        ("\\boxed 5 is it", "5"),
    ],
)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_extract_styles() -> None:
    assert extract_answer("no marker here, 12 and 13", style="strict") is None
    assert extract_answer("step one\n42\n\n", style="program") == "42"
    assert extract_answer("", style="program") is None


# -- equivalence ------------------------------------------------------------------------

EQUAL = [
    ("1,000", "1000"),
    ("1000.0", "1000"),
    ("$1000", "1000"),
    ("\\$1,000.00", "1000"),
    ("50\\%", "50"),
    ("90^\\circ", "90"),
    ("5 \\text{ cm}", "5"),
    ("12 dollars", "12"),
    ("\\frac{1}{2}", "0.5"),
    ("\\dfrac{3}{4}", "3/4"),
    ("2\\frac{1}{2}", "5/2"),
    ("2 1/2", "2.5"),
    ("0.\\overline{3}", "\\frac{1}{3}"),
    ("0.1\\overline{6}", "1/6"),
    ("0.333", "\\frac13"),
    ("1.5e3", "1500"),
    ("1.5 \\times 10^{3}", "1500"),
    ("-\\frac{1}{2}", "-0.5"),
    ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}"),
    ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}"),
    ("10\\sqrt{2}", "\\sqrt{200}"),
    ("2x+1", "1+2x"),
    ("x^2-1", "(x-1)(x+1)"),
    ("x = 5", "5"),
    ("(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("\\{2, 1\\}", "1, 2"),
    ("3, 1, 2", "1,2,3"),
    ("[0, 1)", "[0,1)"),
    ("(-\\infty, 0) \\cup (1, \\infty)", "(1,\\infty)\\cup(-\\infty,0)"),
    (
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
    ),
    (
        "\\begin{pmatrix} 0.5 \\\\ 1 \\end{pmatrix}",
        "\\begin{pmatrix} \\frac12 \\\\ 1 \\end{pmatrix}",
    ),
    ("(C)", "C"),
    ("\\text{(C)}", "C"),
    ("Option C", "(C)"),
    ("Monday", "\\text{monday}"),
]
UNEQUAL = [
    ("1000", "100"),
    ("0.33", "\\frac{1}{3}"),
    ("1/3", "0.3"),
    ("2.5", "2.6"),
    ("-5", "5"),
    ("1.5e3", "150"),
    ("(1,2)", "(2,1)"),  # ordered pairs
    ("[0,1)", "[0,1]"),  # interval ends differ
    ("1, 2", "1, 2, 3"),
    ("\\{1,2\\}", "\\{1,3\\}"),  # math-verify alone can accept a partial set match
    ("B", "C"),
    ("Tuesday", "Monday"),
    ("x^2+1", "x^2-1"),
    ("\\sqrt{2}", "\\sqrt{3}"),
    ("2\\pi", "\\pi"),
    ("5", "(5,6)"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}"),
]


def test_known_tricky_pairs() -> None:
    pairs = [(f"The answer is $\\boxed{{{a}}}$.", g) for a, g in EQUAL + UNEQUAL]
    grades = grade_many(pairs)
    expected = [True] * len(EQUAL) + [False] * len(UNEQUAL)
    wrong = [
        (pair, g.method, g.reason)
        for pair, g, want in zip(EQUAL + UNEQUAL, grades, expected, strict=True)
        if g.status != "graded" or g.correct is not want
    ]
    assert not wrong


def test_markdown_bold_answer() -> None:
    g = grade("Adding up, the total is **73**", "73")
    assert g.correct is True and g.extracted == "73" and g.method.startswith("bold")


@needs_data
def test_math500_extracted_answers_all_grade_equal() -> None:
    rows = _rows("math500/test.jsonl")
    grades = grade_many([(r["solution"], r["answer"]) for r in rows])
    failures = [
        (r["unique_id"], g.extracted, r["answer"])
        for r, g in zip(rows, grades, strict=True)
        if not g.correct
    ]
    assert not failures
    assert all(g.method.startswith("boxed") for g in grades)
    # and the same 500 pairs through the worker processes (the full path), in parallel
    from workbench.core.grading.answers import last_boxed

    outcomes = shared_pool().run([(last_boxed(r["solution"]) or "", r["answer"]) for r in rows], 30)
    assert [o.status for o in outcomes] == ["ok"] * len(rows)
    assert all(o.value.correct for o in outcomes)


@needs_data
def test_gsm8k_answers_equal_their_other_spellings() -> None:
    for row in _rows("gsm8k/test.jsonl"):
        gold = row["answer"].split("####")[-1].strip()
        value = int(gold.replace(",", ""))
        for spelling in (f"{value:,}", f"{value}.0", f"${value}", f"#### {value:,}"):
            g = grade_answer(spelling, gold) if "#" not in spelling else grade(spelling, gold)
            assert g.correct is True, (gold, spelling, g)
        assert grade_answer(str(value + 1), gold).correct is False


def test_no_answer_is_explicit() -> None:
    g = grade("I am not sure.", "5")
    assert g.status == "no_answer" and g.correct is None and g.extracted is None


def test_timeout_is_ungraded_not_wrong_and_pool_recovers() -> None:
    slow = "9^{9^{9^{9^{9}}}}"  # sympy tries to evaluate a tower of powers
    g = grade_answer(slow, "1", timeout_s=1.0)
    assert g.status == "timeout" and g.correct is None
    assert "timeout" in g.reason
    # the killed worker was replaced: the pool still grades
    assert grade_answer("\\sqrt{4}", "2", timeout_s=30).correct is True


def test_grading_works_off_the_main_thread() -> None:
    results: list[Grade] = []

    def work() -> None:
        results.extend(grade_many([("\\boxed{\\frac{\\sqrt{8}}{2}}", "\\sqrt{2}")], timeout_s=30))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert results and results[0].correct is True and results[0].method.endswith("math-verify")


def test_store_grades_upserts(tmp_path: Path) -> None:
    with Store(tmp_path / "w.db") as store:
        run_id = store.create_run("r", "straight", {})
        with store.transaction():
            sample_id = store.insert(
                "samples",
                {"run_id": run_id, "stage": "solve", "item_key": "k", "status": "done",
                 "created_at": now_iso(), "updated_at": now_iso()},
            )  # fmt: skip
        store_grades(store, [(sample_id, "5", grade("\\boxed{4}", "5"))])
        store_grades(store, [(sample_id, "5", grade("\\boxed{5}", "5"))])
        rows = store.query("SELECT * FROM grades")
        assert len(rows) == 1
        assert rows[0]["grader"] == GRADER_NAME
        assert rows[0]["correct"] == 1 and rows[0]["extracted"] == "5"
        store_grades(store, [(sample_id, "5", grade("nothing", "5"))])
        row = store.query_one("SELECT correct, status FROM grades")
        assert row == {"correct": None, "status": "no_answer"}
