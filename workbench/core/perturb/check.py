"""Parse and validate a perturber's output for one step.

``check_perturbation`` returns the rewritten step (from a ``<perturbed_step>`` block or
JSON) and flags, each with a one-line reason the retry loop feeds back to the model.
A phrase counts against the output only when the output has more of it than the
original step had, so a step that already says "instead of" is not a leak.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, Literal

from workbench.core.errors import InputError
from workbench.core.payloads import CheckFields
from workbench.core.text import changed_fraction, word_diff

UNPARSEABLE = "unparseable"
LEAKED_LABEL = "leaked_label"
UNCHANGED = "unchanged"
REWROTE_OTHER_STEPS = "rewrote_other_steps"
ANSWER_LEAKED = "answer_leaked"
UNRELATED = "unrelated"  # shares almost nothing with the original (e.g. an echoed placeholder)
FLAGS = (UNPARSEABLE, LEAKED_LABEL, UNCHANGED, REWROTE_OTHER_STEPS, ANSWER_LEAKED, UNRELATED)

TAG = "perturbed_step"

# -- parsing ----------------------------------------------------------------------

# A block's content may not contain another opening tag: "<t>\n<t>\nx</t>" yields "x".
_TAG_BLOCK = re.compile(rf"<{TAG}>((?:(?!<{TAG}>).)*?)</{TAG}>", re.IGNORECASE | re.DOTALL)
_TAG_OPEN = re.compile(rf"<{TAG}>(.*)\Z", re.IGNORECASE | re.DOTALL)
_JSON_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)
_STEP_LABEL = re.compile(r"^\s*(?:\*\*)?step\s*\d+\s*[:.)](?:\*\*)?\s*", re.IGNORECASE)
_JSON_KEYS = (TAG, "step", "rewritten_step")


@dataclass(frozen=True)
class ParsedPerturbation:
    step: str
    format: Literal["tag", "json"]
    n_blocks: int = 1  # how many tagged blocks the output held


def parse_perturbation(text: str) -> ParsedPerturbation | None:
    """The rewritten step from a tagged block or a JSON object; ``None`` when neither.

    An opening tag with no closing one counts (a stop sequence may cut the close).
    A leading "Step 3:" label is removed since the prompt shows steps that way.
    """
    blocks = [b.strip() for b in _TAG_BLOCK.findall(text)]
    if blocks:
        return _clean(blocks[0], "tag", len(blocks))
    opened = _TAG_OPEN.search(text)
    if opened:
        return _clean(opened.group(1).strip(), "tag", 1)
    for candidate in _json_candidates(text):
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            for k in _JSON_KEYS:
                if isinstance(data.get(k), str):
                    return _clean(data[k].strip(), "json", 1)
    return None


def _json_candidates(text: str) -> list[str]:
    found = _JSON_FENCE.findall(text)
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        found.append(text[start : end + 1])
    return found


def _clean(step: str, fmt: Literal["tag", "json"], n_blocks: int) -> ParsedPerturbation | None:
    step = _STEP_LABEL.sub("", step, count=1).strip()
    return ParsedPerturbation(step, fmt, n_blocks) if step else None


# -- validation -------------------------------------------------------------------

# Phrases a perturber adds when it announces its change instead of hiding it.  A phrase
# counts only when the rewritten step has more of it than the original step had.
_LEAK_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern, re.IGNORECASE))
    for label, pattern in (
        ("[...] annotation", r"\[\s*(?:perturb|error|mistake|note|changed|modified|wrong)[^\]]*\]"),
        ("perturbation", r"\bperturb\w*"),
        ("error type", r"\berror[ _-]?type\b"),
        ("(instead of ...)", r"\binstead of\b"),
        ("incorrect", r"\bincorrect(?:ly)?\b"),
        ("mistake", r"\bmistake\w*|\bmistaken\w*"),
        ("wrong", r"\bwrong(?:ly)?\b"),
        ("error", r"\berror\w*|\berroneous\w*"),
        ("should be", r"\bshould (?:be|have been)\b"),
        ("correct", r"\bcorrect(?:ed|ly|ion)?\b"),
        ("actually", r"\bactually\b"),
        ("originally", r"\boriginal(?:ly)?\b|\(\s*(?:was|not|previously)\b"),
        ("intentional", r"\b(?:intentional|deliberate|purposely|on purpose)\w*"),
        ("typo", r"\btypo\b|\boops\b"),
        ("arrow note", r"<-|←|⟵"),
        (
            "taxonomy name",
            r"\barithmetic slip\b|\bsign error\b|\boff[- ]by[- ]one\b|"
            r"\bdropped term\b|\bmisread\w*|\bwrong formula\b|\bcase split\b|\binvalid inference\b",
        ),
    )
)
_ANSWER_MARKERS = re.compile(
    r"####|\\boxed|\bthe (?:final )?answer is\b|\bfinal answer\b|\banswer\s*:", re.IGNORECASE
)
_WS = re.compile(r"\s+")
_OTHER_STEP_MIN_CHARS = 15  # shorter steps ("= 4.") match too much by accident
_LINE_SIMILARITY = 0.6
# Share of changed characters above which a "rewrite" is no longer an edit of the step.
_UNRELATED_CHANGE = 0.85


@dataclass(frozen=True)
class PerturbCheck:
    """The parsed step (if any) and the validation flags, each with a one-line reason."""

    step: str | None
    flags: tuple[str, ...]
    reasons: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return not self.flags

    def to_payload(self) -> CheckFields:
        return {
            "perturbed_step": self.step,
            "flags": list(self.flags),
            "flag_reasons": list(self.reasons),
            "valid": self.valid,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> PerturbCheck:
        """The check stored on a sample's payload by ``to_payload``."""
        return cls(
            payload.get("perturbed_step"),
            tuple(payload.get("flags", ())),
            tuple(payload.get("flag_reasons", ())),
        )


def _norm(text: str) -> str:
    return _WS.sub(" ", text).strip().rstrip(".").strip()


def check_perturbation(
    output: str, steps: Sequence[str], index: int, *, answer: str | None = None
) -> PerturbCheck:
    """Validate a perturber's raw ``output`` for step ``index`` of ``steps``."""
    if not 0 <= index < len(steps):
        raise InputError(f"step index {index} is outside a {len(steps)}-step solution")
    parsed = parse_perturbation(output)
    if parsed is None:
        return PerturbCheck(
            None, (UNPARSEABLE,), (f"no <{TAG}> block or JSON with a '{TAG}' field found",)
        )
    original = steps[index]
    found: dict[str, str] = {}
    leak = _leaked_label(original, parsed.step)
    if leak:
        found[LEAKED_LABEL] = f"the step announces the change ({leak}); hide it"
    if _norm(parsed.step) == _norm(original):
        found[UNCHANGED] = f"step {index + 1} is unchanged"
    other = _other_step_touched(steps, index, parsed)
    if other:
        found[REWROTE_OTHER_STEPS] = other
    elif changed_fraction(word_diff(original, parsed.step)) > _UNRELATED_CHANGE:
        found[UNRELATED] = f"the reply shares almost nothing with step {index + 1}; edit that step"
    # Text copied from other steps is already flagged above; it is not a leak of its own.
    own_text = parsed.step
    for j, other in enumerate(steps):
        if j != index and other.strip():
            own_text = own_text.replace(other.strip(), "")
    leaked_answer = _answer_leak(original, own_text, answer, is_final=index == len(steps) - 1)
    if leaked_answer:
        found[ANSWER_LEAKED] = leaked_answer
    flags = tuple(f for f in FLAGS if f in found)
    return PerturbCheck(parsed.step, flags, tuple(found[f] for f in flags))


def validate_perturbation(
    output: str, steps: Sequence[str], index: int, *, answer: str | None = None
) -> list[str]:
    """Flags for a perturber output (empty = valid); see ``check_perturbation``."""
    return list(check_perturbation(output, steps, index, answer=answer).flags)


def _leaked_label(original: str, step: str) -> str | None:
    for label, pattern in _LEAK_PATTERNS:
        if len(pattern.findall(step)) > len(pattern.findall(original)):
            return label
    return None


def _other_step_touched(steps: Sequence[str], index: int, parsed: ParsedPerturbation) -> str | None:
    if parsed.n_blocks > 1:
        return f"{parsed.n_blocks} <{TAG}> blocks; only step {index + 1} may be rewritten"
    step_n = _norm(parsed.step)
    original_n = _norm(steps[index])
    for j, other in enumerate(steps):
        other_n = _norm(other)
        if j == index or len(other_n) < _OTHER_STEP_MIN_CHARS or other_n in original_n:
            continue
        if other_n in step_n:
            return f"the reply contains step {j + 1} too; only step {index + 1} may be rewritten"
    # Lines that look much more like another step than like the chosen one: the model
    # rewrote (or continued into) a different step.
    for line in filter(None, (_norm(x) for x in parsed.step.splitlines())):
        own = SequenceMatcher(None, line, original_n, autojunk=False).ratio()
        for j, other in enumerate(steps):
            other_n = _norm(other)
            if j == index or len(other_n) < _OTHER_STEP_MIN_CHARS:
                continue
            ratio = SequenceMatcher(None, line, other_n, autojunk=False).ratio()
            if ratio >= _LINE_SIMILARITY and ratio > own + 0.15:
                return f"the reply rewrites step {j + 1}; only step {index + 1} may change"
    return None


def _answer_leak(original: str, step: str, answer: str | None, *, is_final: bool) -> str | None:
    if len(_ANSWER_MARKERS.findall(step)) > len(_ANSWER_MARKERS.findall(original)):
        return "the step states a final answer; stop at the rewritten step"
    if answer is None or is_final:
        return None
    gold = _norm(answer).strip("$ ").replace(",", "")
    if len(gold) < 2:  # one-digit answers appear in ordinary arithmetic all the time
        return None
    pattern = re.compile(rf"(?<![\w.]){re.escape(gold)}(?![\w]|\.\d)")
    if len(pattern.findall(step.replace(",", ""))) > len(
        pattern.findall(original.replace(",", ""))
    ):
        return f"the step contains the gold answer {answer!r}"
    return None
