"""The error-type reading of a perturbed step: what it recognises, and when it stays quiet."""

from __future__ import annotations

import pytest

from workbench.core.perturb import apparent_error_types, type_mismatch


@pytest.mark.parametrize(
    ("original", "perturbed", "expected"),
    [
        ("She sells 16 - 7 = 9 eggs.", "She sells 16 - 7 = 8 eggs.", {"arithmetic-slip"}),
        ("16 - 7 = 9", "16 + 7 = 9", {"sign-error"}),
        ("x = 5", "x = -5", {"sign-error"}),
        ("He reads 12 * 5 = 60 pages.", "He reads 17 * 5 = 60 pages.", {"misread-quantity"}),
        ("Total is 2 + 1 = 3 bolts.", "Total is 2 * 1 = 3 bolts.", {"wrong-formula"}),
        ("Total is 2 + 1 + 4 = 7.", "Total is 2 + 4 = 7.", {"dropped-term"}),
        ("Total is 2 + 1 = 3 bolts.", "Total is 2 + 1 = 4 bolts.", {"off-by-one"}),
    ],
)
def test_it_reads_the_shape_of_a_change(original: str, perturbed: str, expected: set[str]) -> None:
    assert expected <= apparent_error_types(original, perturbed)


def test_it_flags_only_what_it_can_read() -> None:
    slip = ("She sells 16 - 7 = 9 eggs.", "She sells 16 - 7 = 8 eggs.")
    assert type_mismatch("sign-error", *slip) == (
        "asked for sign-error, looks like arithmetic-slip or off-by-one"
    )
    assert type_mismatch("arithmetic-slip", *slip) is None  # what was asked for
    assert type_mismatch("invalid-inference", *slip) is None  # a type it cannot check
    words = ("So the answer is 5 apples.", "So the total is 5 pears.")
    assert apparent_error_types(*words) == frozenset()
    assert type_mismatch("sign-error", *words) is None  # a change it cannot read
    assert type_mismatch("sign-error", None, "x") is None
    assert type_mismatch(None, *slip) is None
