"""The metrics layer: definitions, counting rules, rounding, outcome labels, the docs page."""

from __future__ import annotations

from pathlib import Path

from workbench.core.analysis import GradedSample
from workbench.core.analysis.metrics import (
    HEADLINE,
    METRICS,
    SampleKind,
    compute_metrics,
    format_rate,
    metrics_markdown,
    outcome_label,
    sample_kind,
)
from workbench.core.analysis.stats import format_percent, wilson

DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def test_docs_page_is_generated_from_the_definitions() -> None:
    """docs/metrics.md is written by ``python -m workbench.core.analysis.metrics``; a
    changed definition without a regenerated page fails here."""
    assert DOCS.read_text(encoding="utf-8") == metrics_markdown(), (
        "docs/metrics.md is stale: run "
        "`.venv/bin/python -m workbench.core.analysis.metrics > docs/metrics.md`"
    )
    for d in METRICS:
        assert d.description and d.numerator and d.denominator and d.stages and d.sample_kinds
    assert set(HEADLINE.values()) <= {d.name for d in METRICS}


def test_one_rounding_rule() -> None:
    assert format_percent(1, 8) == "12.5%" and format_percent(3, 8) == "37.5%"
    assert format_percent(1, 3) == "33.3%" and format_percent(2, 3) == "66.7%"
    assert format_percent(125, 1000) == "13%"  # half up, no decimal from n = 1000
    assert format_rate(wilson(23, 72)) == "31.9% (23/72)"
    assert format_rate(wilson(0, 0)) == "–"


def _o(sid: int, stage: str, correct: bool | None, **payload: object) -> GradedSample:
    return GradedSample(sid, 1, stage, "p1", "m", sid, correct, "graded", payload)  # type: ignore[arg-type]


def test_recovery_counts_perturbed_continuations_only() -> None:
    """Issue 11 item 2: the check, the controls and the judge are never pooled in."""
    rows = [
        _o(1, "check", False),
        _o(2, "continue", True, perturbed=True, prefix_kind="perturbed"),
        _o(3, "continue", False, perturbed=True, prefix_kind="perturbed"),
        _o(4, "control", True, perturbed=False, prefix_kind="original"),
        _o(5, "judge", None, noticed=True),
    ]
    m = compute_metrics(1, "recovery", rows)
    rec, ctl, judge = m.get("recovery"), m.get("control"), m.get("judge_noticed")
    assert rec and (rec.rate.k, rec.rate.n) == (1, 2)
    assert ctl and (ctl.rate.k, ctl.rate.n) == (1, 1)
    assert judge and (judge.rate.k, judge.rate.n) == (1, 1)
    assert m.headline_text() == "recovery 50.0% (1/2)"


def test_methods_report_each_method_vote_and_oracle_separately() -> None:
    """Issue 11 item 2 / 4: a methods run's headline is its vote, never a pool of samples."""
    rows = [_o(i, "solve", i % 2 == 0, method="cot") for i in range(1, 7)]
    rows += [
        _o(10, "vote", True, methods={"cot": {"correct": True}, "pal": {"correct": False}}),
        _o(11, "vote", False, methods={"cot": {"correct": False}, "pal": {"correct": False}}),
    ]
    m = compute_metrics(1, "methods", rows)
    vote = m.get("vote_accuracy")
    assert vote and (vote.rate.k, vote.rate.n) == (1, 2)
    assert m.headline_text() == "vote 50.0% (1/2)"
    cot, pal = m.get("method_accuracy", "cot"), m.get("method_accuracy", "pal")
    assert cot and pal and (cot.rate.k, pal.rate.k) == (1, 0)
    oracle = m.get("oracle_accuracy")
    assert oracle and (oracle.rate.k, oracle.rate.n) == (1, 2)
    sample = m.get("sample_accuracy", "cot")
    assert sample and (sample.rate.k, sample.rate.n) == (3, 6)


def test_outcome_labels_say_what_happened() -> None:
    """Issue 11 item 5: one definition of a trace's outcome label."""
    perturbed = SampleKind.PERTURBED_CONTINUATION
    assert outcome_label(perturbed, True, "explicit").how == "explicit correction"
    assert outcome_label(perturbed, True, "silent").text == "recovered"
    assert outcome_label(perturbed, False, "noticed").text == "not recovered"
    control = sample_kind("continue", {"perturbed": False, "prefix_kind": "original"})
    assert control is SampleKind.CONTROL_CONTINUATION
    assert outcome_label(control, True).text == "correct"
    assert outcome_label(sample_kind("solve", {}), True).text == "correct"
    assert outcome_label(sample_kind("solve", {}), False).text == "wrong"
    assert outcome_label(perturbed, None).text == "ungraded"
