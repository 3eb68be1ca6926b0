"""LaTeX -> readable Unicode for the terminal (pure, no Textual)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.core.text.latex import latex_to_text, strip_calc_annotations

MATH500 = (
    Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "math500" / "test.jsonl"
)


@pytest.mark.parametrize(
    ("latex", "text"),
    [
        (r"What is $\frac{1}{2} + \dfrac{x+1}{3}$?", "What is 1/2 + (x+1)/3?"),
        (r"$x^2 + y^{10} = z_{n+1}$", "x² + y¹⁰ = zₙ₊₁"),
        (r"$2^{x+y}$ and $e^{i\pi}$", "2ˣ⁺ʸ and e^(iπ)"),
        (r"$30^\circ$, $\sqrt{2}$, $\sqrt[3]{27}$", "30°, √2, ∛27"),
        (r"\boxed{\left( 3, \frac{\pi}{2} \right)}", "⟦( 3, π/2 )⟧"),
        ("\\begin{align*} a &= b \\\\ c &= d \\end{align*}", "a = b\nc = d"),
        (r"\text{(A)}\ \$5 \quad \textbf{(B)} 10\%", "(A) $5 (B) 10%"),
        (r"$\$ 1.50$ and \$3", "$ 1.50 and $3"),
        (r"$x \le 3 \cdot y \neq \infty$", "x ≤ 3 · y ≠ ∞"),
        (r"$\binom{5}{2}$", "C(5, 2)"),
        ("$$x=1$$", "x=1"),
        (r"$\unknowncmd{x}$", "unknowncmdx"),
        (r"$\frac{1}{2", "1/2"),  # unbalanced braces never raise
    ],
)
def test_common_latex(latex: str, text: str) -> None:
    assert latex_to_text(latex) == text


def test_gsm8k_dollars_are_money() -> None:
    text = "He paid $10 for <<2*5=10>>10 pens, $2 each."
    assert latex_to_text(text, dollars_are_math=False) == "He paid $10 for 10 pens, $2 each."
    assert strip_calc_annotations("3+4=<<3+4=7>>7") == "3+4=7"


@pytest.mark.skipif(not MATH500.exists(), reason="shared datasets not present")
def test_every_math500_problem_converts_without_backslash_soup() -> None:
    rows = [json.loads(line) for line in MATH500.read_text(encoding="utf-8").splitlines() if line]
    for row in rows:
        for field in ("problem", "solution", "answer"):
            out = latex_to_text(row[field])
            assert "\\frac" not in out and "\\sqrt" not in out, (row["unique_id"], field, out)
