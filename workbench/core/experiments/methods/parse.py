"""Reading method outputs: answer lines, code blocks, plans.  Pure functions.

Chain of thought ends with "The answer is N." (GSM8K) or "Final Answer: The
final answer is X. I hope it is correct." (MATH/OCW); when a model drifts from
the format, the shared extractor (boxed, ``####``, answer phrases, last
number) is the fallback, and ``how`` says which rule decided.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workbench.core.grading import find_answer

Style = str  # "gsm8k" / "math"

_GSM8K_LINE = re.compile(r"The answer is\s*:?\s*(.+?)\s*\.?\s*$", re.I | re.M)
_MATH_LINE = re.compile(
    r"Final Answer:\s*The final answer is\s*(.+?)\.?\s*I hope it is correct", re.I | re.S
)
_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.S | re.I)
_NUMBERED = re.compile(r"^\s*(?:\d+[.)]|[-*])\s+\S")


@dataclass(frozen=True)
class ParsedAnswer:
    answer: str | None
    how: str  # answer-line / final-answer-line / boxed / ... / none


def _unwrap_math(text: str) -> str:
    text = text.strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if text.startswith(left) and text.endswith(right) and len(text) > len(left) + len(right):
            return text[len(left) : -len(right)].strip()
    return text


def cot_answer(text: str, style: Style) -> ParsedAnswer:
    """The final answer of a chain-of-thought output in ``style``'s answer line."""
    text = text or ""
    if style == "gsm8k":
        lines = _GSM8K_LINE.findall(text)
        if lines:
            answer = lines[-1].strip().rstrip(".").replace("$", "").replace(",", "").strip()
            if answer:
                return ParsedAnswer(answer, "answer-line")
    else:
        found = _MATH_LINE.findall(text)
        if found:
            answer = _unwrap_math(found[-1].strip().rstrip("."))
            if answer:
                return ParsedAnswer(answer, "final-answer-line")
    fallback = find_answer(text)
    return ParsedAnswer(fallback.answer, fallback.how)


def extract_code(text: str) -> str | None:
    """The program in a reply: the fenced block defining ``solution``, else the first block.

    Unfenced replies that start with code (``def``/``import``/``from``) are taken whole.
    """
    text = text or ""
    blocks: list[str] = [b.strip("\n") for b in _FENCE.findall(text) if b.strip()]
    for block in blocks:
        if "def solution" in block:
            return block
    if blocks:
        return blocks[0]
    start = re.search(r"^(?:def |import |from )", text, re.M)
    if start is None:
        return None
    return text[start.start() :].strip("\n") or None


def extract_plan(text: str) -> str | None:
    """The numbered plan in a reply (its numbered lines), or the whole reply if none are."""
    text = (text or "").strip()
    if not text:
        return None
    numbered = [ln.rstrip() for ln in text.splitlines() if _NUMBERED.match(ln)]
    return "\n".join(numbered) if numbered else text
