"""Stepify: GSM8K lines, MATH prose without cutting math, stepped text kept, round trips."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from workbench.core.library.steps import join_steps, math_spans, step_offsets, stepify

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="../shared/datasets not present")


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _balanced(step: str) -> bool:
    """Every math delimiter opened in the step is closed in it (checked independently)."""
    dollars = len(re.findall(r"(?<!\\)\$", step))
    return (
        dollars % 2 == 0
        and step.count("\\[") == step.count("\\]")
        and step.count("\\(") == step.count("\\)")
        and len(re.findall(r"\\begin\{", step)) == len(re.findall(r"\\end\{", step))
        and step.count("[asy]") == step.count("[/asy]")
    )


@needs_data
def test_math500_solutions_never_cut_inside_math_and_round_trip() -> None:
    total_steps = 0
    for row in _rows("math500/test.jsonl"):
        text = row["solution"]
        steps = stepify(text, source="math")
        assert steps, row["unique_id"]
        assert _squash("".join(steps)) == _squash(text), row["unique_id"]
        assert _squash(join_steps(steps)) == _squash(text)
        spans = math_spans(text)
        for cut in step_offsets(text, source="math"):
            assert not any(start < cut < end for start, end, _ in spans), row["unique_id"]
        for step in steps:
            assert _balanced(step), (row["unique_id"], step)
        assert stepify(text, source="math") == steps  # deterministic
        total_steps += len(steps)
    assert total_steps > 1500  # prose is really split, not kept whole


@needs_data
def test_gsm8k_solutions_split_into_lines() -> None:
    for row in _rows("gsm8k/test.jsonl")[:200]:
        lines = [ln.strip() for ln in row["answer"].splitlines() if ln.strip()]
        assert stepify(row["answer"], source="gsm8k") == lines
        assert stepify(row["answer"]) == lines  # detected from <<calc>> and ####


def test_prose_split_at_sentences_and_display_math() -> None:
    text = (
        "We have $x = 3.5$ here. Then\n\\[y = x^2 = 12.25.\\]Therefore the answer is "
        "$\\boxed{12.25}$.\n\nCheck: e.g. plug in."
    )
    assert stepify(text) == [
        "We have $x = 3.5$ here.",
        "Then\n\\[y = x^2 = 12.25.\\]",
        "Therefore the answer is $\\boxed{12.25}$.",
        "Check: e.g. plug in.",
    ]


def test_environments_and_asy_are_never_split() -> None:
    text = (
        "First we expand. \\begin{align*}\na &= 1. B \\\\\n\nb &= 2. C\n\\end{align*} "
        'Next look.\n\n[asy]\ndraw((0,0)--(1,1));\n\nlabel("A. B", (0,0));\n[/asy]\n\n'
        "Price is \\$5. So $$z = 1. Q$$ done."
    )
    steps = stepify(text, source="math")
    assert any(s.startswith("\\begin{align*}") or "\\begin{align*}" in s for s in steps)
    for step in steps:
        assert _balanced(step), step
    assert _squash("".join(steps)) == _squash(text)


def test_stepped_text_is_kept_as_is() -> None:
    text = "Step 1: add 2 and 3. This gives 5.\nStep 2: double it.\nSo 10.\nStep 3: done."
    assert stepify(text, source="math") == [
        "Step 1: add 2 and 3. This gives 5.",
        "Step 2: double it.\nSo 10.",
        "Step 3: done.",
    ]
    numbered = "1. Read the problem.\n2) Compute $1+1=2$.\n3. Answer 2."
    assert stepify(numbered) == ["1. Read the problem.", "2) Compute $1+1=2$.", "3. Answer 2."]


def test_empty_and_single_sentence() -> None:
    assert stepify("") == []
    assert stepify("   \n ") == []
    assert stepify("Just one sentence") == ["Just one sentence"]
    assert join_steps(["a", " ", "b "]) == "a\nb"


def test_unclosed_dollar_protects_nothing() -> None:
    text = "It costs $5. Then it costs more. And more again."
    assert stepify(text, source="math") == [
        "It costs $5.",
        "Then it costs more.",
        "And more again.",
    ]


def test_markdown_step_headings_are_steps() -> None:
    text = "Let us solve.\n\n**Step 1: Read.** We know $x=2$.\n\n### Step 2\nSo $x+1=3$."
    assert stepify(text) == [
        "Let us solve.",
        "**Step 1: Read.** We know $x=2$.",
        "### Step 2\nSo $x+1=3$.",
    ]
