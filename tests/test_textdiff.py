"""Word diff segments used by the prompt playground and the trace stepper."""

from __future__ import annotations

import random

from workbench.core.text.diff import changed_fraction, new_text, old_text, tokenize, word_diff


def test_single_number_change() -> None:
    segs = word_diff("She sells 16 - 7 = 9 eggs.", "She sells 16 - 7 = 8 eggs.")
    assert segs == [
        ("equal", "She sells 16 - 7 = "),
        ("delete", "9"),
        ("insert", "8"),
        ("equal", " eggs."),
    ]


def test_decimal_is_one_token_and_latex_splits_on_symbols() -> None:
    assert tokenize("x = 3.25") == ["x", " ", "=", " ", "3.25"]
    segs = word_diff(r"$\frac{1}{2}$", r"$\frac{1}{3}$")
    assert ("delete", "2") in segs and ("insert", "3") in segs


def test_phrase_replacement_reads_as_one_change() -> None:
    segs = word_diff("the area is pi r squared", "the perimeter equals 2 pi r squared")
    assert segs[0] == ("equal", "the ")
    assert ("delete", "area is") in segs and ("insert", "perimeter equals 2") in segs


def test_identical_and_empty() -> None:
    assert word_diff("same text", "same text") == [("equal", "same text")]
    assert word_diff("", "new") == [("insert", "new")]
    assert word_diff("old", "") == [("delete", "old")]
    assert word_diff("", "") == []
    assert changed_fraction(word_diff("a b", "a b")) == 0.0
    assert changed_fraction(word_diff("a", "b")) == 1.0


def test_roundtrip_on_random_edits() -> None:
    rng = random.Random(0)
    words = ["x", "=", "3", "+", "eggs", "$", r"\frac{1}{2}", " ", "\n", "sells", "9.5"]
    for _ in range(300):
        a = "".join(rng.choice(words) + rng.choice(["", " "]) for _ in range(rng.randint(0, 12)))
        b = "".join(rng.choice(words) + rng.choice(["", " "]) for _ in range(rng.randint(0, 12)))
        segs = word_diff(a, b)
        assert old_text(segs) == a and new_text(segs) == b
        assert all(segs[i][0] != segs[i + 1][0] for i in range(len(segs) - 1))
        assert all(text for _, text in segs)
