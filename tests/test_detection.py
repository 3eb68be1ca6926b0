"""Recovery detection: marker phrases, recomputation of the perturbed quantity, judge parsing."""

from __future__ import annotations

import pytest

from workbench.core.grading.detection import (
    Detection,
    changed_quantities,
    detect_recovery,
    find_markers,
    normalise_number,
    parse_judge,
    summarise_kinds,
)

ORIGINAL = "She sells 16 - 3 - 4 = 9 eggs a day."
PERTURBED = "She sells 16 - 3 - 4 = 11 eggs a day."
QUESTION = "Janet's ducks lay 16 eggs. She eats 3 and bakes with 4. Each egg sells for $2."


@pytest.mark.parametrize(
    "text",
    [
        "Wait, that is not right. Redo it.",
        "So 11 * 2 = 22. Hmm, let me recheck the subtraction.",
        "Actually the number of eggs is different.",
        "I made an error in the previous step.",
        "That was wrong: the remainder is smaller.",
        "Let me double-check: ...",
        "Oops. The eggs left are fewer.",
        "Let me verify this before going on.",
    ],
)
def test_marker_phrases_are_found(text: str) -> None:
    spans = find_markers(text)
    assert spans, text
    for s in spans:
        assert text[s.start : s.end] == s.text


@pytest.mark.parametrize(
    "text",
    [
        "She has to wait 5 minutes for the bus, so 11 * 2 = 22.",
        "The total is 11 * 2 = 22 dollars.\n#### 22",
        "They waited for the train, then bought 3 more.",
    ],
)
def test_plain_continuations_have_no_markers(text: str) -> None:
    assert find_markers(text) == ()


def test_nested_phrases_become_one_span() -> None:
    (span,) = find_markers("Let me recheck that.")
    assert span.text == "Let me recheck"


def test_numbers_and_changed_quantities() -> None:
    assert normalise_number("1,200.50") == "1200.5"
    assert normalise_number("9.0") == "9"
    removed, introduced = changed_quantities(ORIGINAL, PERTURBED)
    assert (removed, introduced) == ({"9"}, {"11"})


def test_explicit_recovery_by_marker_and_recomputation() -> None:
    text = "Wait, 16 - 3 - 4 = 9, not 11. So she makes 9 * 2 = $18.\n#### 18"
    d = detect_recovery(
        text, correct=True, original_step=ORIGINAL, perturbed_step=PERTURBED, context=QUESTION
    )
    assert d.kind == "explicit" and d.explicit
    assert [s.text for s in d.markers] == ["Wait"]
    assert [s.text for s in d.recomputed] == ["9", "9"]
    assert [s.text for s in d.carried] == ["11"]
    assert [s.start for s in d.spans] == sorted(s.start for s in d.spans)


def test_recomputation_alone_is_silent() -> None:
    """Issue 11: a quiet recomputation (no "wait / recheck") is a silent recovery; the
    recomputed value is still highlighted."""
    text = "She has 9 eggs to sell, so 9 * 2 = 18.\n#### 18"
    d = detect_recovery(text, correct=True, original_step=ORIGINAL, perturbed_step=PERTURBED)
    assert d.kind == "silent" and not d.explicit and not d.markers
    assert [s.text for s in d.recomputed] == ["9", "9"]


def test_silent_noticed_and_none() -> None:
    silent = detect_recovery(
        "So she makes $18.\n#### 18", correct=True, original_step=ORIGINAL, perturbed_step=PERTURBED
    )
    assert silent.kind == "silent" and not silent.explicit
    noticed = detect_recovery("Hmm, let me recheck. 11 * 2 = 22.", correct=False)
    assert noticed.kind == "noticed"
    none = detect_recovery(
        "11 * 2 = 22\n#### 22", correct=False, original_step=ORIGINAL, perturbed_step=PERTURBED
    )
    assert none.kind == "none" and [s.text for s in none.carried] == ["11"]
    assert detect_recovery("22", correct=None).kind == "unknown"


def test_values_already_in_context_are_no_evidence() -> None:
    # the perturbation turned 16 into 61; 16 is in the question, so mentioning it proves nothing
    d = detect_recovery(
        "16 eggs minus 7 is 9.",
        correct=True,
        original_step="16 - 7 = 9",
        perturbed_step="61 - 7 = 54",
        context=QUESTION,
    )
    assert [s.text for s in d.recomputed] == ["9"]


def test_payload_round_trip() -> None:
    d = detect_recovery(
        "Wait, 9 eggs.", correct=True, original_step=ORIGINAL, perturbed_step=PERTURBED
    )
    back = Detection.from_payload(d.to_payload())
    assert back == d


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ('{"noticed": true, "corrected": false, "evidence": "wait"}', True),
        ('Here you go:\n```json\n{"noticed": false, "corrected": false}\n```', False),
        ("<verdict>yes</verdict>", True),
        ("Noticed: no", False),
        ("YES", True),
        ("I cannot tell.", None),
    ],
)
def test_parse_judge(text: str, verdict: bool | None) -> None:
    assert parse_judge(text) is verdict


def test_summarise_kinds_has_every_kind() -> None:
    counts = summarise_kinds(["silent", "silent", "explicit"])
    assert counts == {"explicit": 1, "silent": 2, "noticed": 0, "none": 0, "unknown": 0}
