"""Recovery detection: did a continuation notice the injected error, or recover silently?

Beside "is the final answer right", a recovery can be *explicit* (the text
flags the error with a marker phrase such as "wait", "actually", "let me
recheck", "I made an error") or *silent* (right answer, no words of noticing,
even when it quietly recomputes the perturbed quantity to its correct value:
those spans are recorded for highlighting but do not make a recovery explicit).  Detection is
a pure function of the continuation text and the original / perturbed step;
it returns character spans that the trace stepper highlights.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

RecoveryKind = Literal["explicit", "silent", "noticed", "none", "unknown"]

#: phrases that only count at the start of a sentence or clause ("they wait 5 minutes" is no marker)
_OPENERS = r"wait|hold on|hmm+|oops|hang on|no,? wait|on second thought|correction"
#: phrases that count anywhere
_ANYWHERE = (
    r"actually",
    r"let me (?:re-?check|double[- ]check|verify|re-?compute|re-?calculate|reconsider|"
    r"re-?examine|re-?do|check (?:that|this|again)|go back|correct (?:that|this))",
    r"(?:re-?check|double[- ]check)(?:ing)?",
    r"re-?calculat(?:e|ing)",
    r"re-?comput(?:e|ing)",
    r"I (?:made|have made|'ve made) (?:an?|some) (?:error|mistake|slip)",
    r"(?:that|this|which|it) (?:is|was|'s) (?:wrong|incorrect|not (?:right|correct)|a mistake|an error)",
    r"(?:there (?:is|was|'s) )?an? (?:error|mistake|miscalculation|typo) (?:in|above|earlier)",
    r"(?:is|was) (?:mis|in)?calculated incorrectly",
    r"should (?:have been|actually be|be corrected)",
    r"not correct",
    r"incorrect",
    r"mistake",
    r"miscalculat(?:ed|ion)",
)
_OPENER_RE = re.compile(rf"\b(?:{_OPENERS})\b", re.IGNORECASE)
_ANYWHERE_RE = re.compile(rf"\b(?:{'|'.join(_ANYWHERE)})\b", re.IGNORECASE)
_NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?![\d])")


@dataclass(frozen=True)
class Span:
    """``text[start:end]``; ``kind`` is marker / recompute (correct value again) / carried."""

    start: int
    end: int
    kind: str
    text: str


@dataclass(frozen=True)
class Detection:
    """What the continuation shows; ``kind`` combines noticing with the final verdict.

    explicit: right answer and the error flagged in words; silent: right answer,
    no words of noticing (a quiet recomputation of the right value included); noticed: flagged but still wrong; none: wrong, unflagged;
    unknown: ungraded and unflagged.
    """

    kind: RecoveryKind
    explicit: bool
    markers: tuple[Span, ...] = ()
    recomputed: tuple[Span, ...] = ()  # the correct value of the perturbed quantity
    carried: tuple[Span, ...] = ()  # the wrong value, used further on

    @property
    def spans(self) -> tuple[Span, ...]:
        """Every span, in text order (for highlighting)."""
        return tuple(
            sorted((*self.markers, *self.recomputed, *self.carried), key=lambda s: (s.start, s.end))
        )

    def to_payload(self) -> dict[str, Any]:
        """The JSON stored on the sample (``detection`` key)."""
        return {
            "kind": self.kind,
            "explicit": self.explicit,
            "spans": [[s.start, s.end, s.kind, s.text] for s in self.spans],
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Detection:
        spans = [Span(int(a), int(b), str(k), str(t)) for a, b, k, t in data.get("spans", ())]
        return cls(
            kind=data.get("kind", "unknown"),
            explicit=bool(data.get("explicit")),
            markers=tuple(s for s in spans if s.kind == "marker"),
            recomputed=tuple(s for s in spans if s.kind == "recompute"),
            carried=tuple(s for s in spans if s.kind == "carried"),
        )


def normalise_number(text: str) -> str:
    """``"1,200.50"`` -> ``"1200.5"``; ``"9.0"`` -> ``"9"`` (so numbers compare as values)."""
    t = text.replace(",", "")
    if "." in t:
        t = t.rstrip("0").rstrip(".")
    return "0" if t in ("-0", "") else t


def numbers(text: str) -> list[tuple[int, int, str]]:
    """(start, end, normalised value) of every number in ``text``."""
    return [(m.start(), m.end(), normalise_number(m.group())) for m in _NUMBER_RE.finditer(text)]


def changed_quantities(original: str, perturbed: str) -> tuple[set[str], set[str]]:
    """(values the perturbation removed, values it introduced), compared as multisets of numbers."""
    before = [v for _, _, v in numbers(original)]
    after = [v for _, _, v in numbers(perturbed)]
    removed, introduced = list(before), []
    for v in after:
        if v in removed:
            removed.remove(v)
        else:
            introduced.append(v)
    return set(removed), set(introduced)


def find_markers(text: str) -> tuple[Span, ...]:
    """Marker phrases in ``text``; openers only at a sentence start or followed by a comma."""
    spans = [Span(m.start(), m.end(), "marker", m.group()) for m in _ANYWHERE_RE.finditer(text)]
    for m in _OPENER_RE.finditer(text):
        before = text[: m.start()].rstrip()
        after = text[m.end() : m.end() + 1]
        if not before or before[-1] in ".!?:;\n)*" or after in (",", "!", "."):
            spans.append(Span(m.start(), m.end(), "marker", m.group()))
    spans.sort(key=lambda s: (s.start, s.end))
    # drop spans nested in an earlier, longer one ("let me recheck" holds "recheck")
    kept: list[Span] = []
    for s in spans:
        if kept and s.start < kept[-1].end:
            if s.end > kept[-1].end:
                kept[-1] = Span(kept[-1].start, s.end, "marker", text[kept[-1].start : s.end])
            continue
        kept.append(s)
    return tuple(kept)


def detect_recovery(
    continuation: str,
    *,
    correct: bool | None,
    original_step: str | None = None,
    perturbed_step: str | None = None,
    context: str = "",
) -> Detection:
    """Classify a continuation.  ``context`` (question, untouched steps) holds numbers that
    are not evidence of recomputation when they reappear."""
    markers = find_markers(continuation)
    recomputed: tuple[Span, ...] = ()
    carried: tuple[Span, ...] = ()
    if original_step and perturbed_step:
        removed, introduced = changed_quantities(original_step, perturbed_step)
        known = {v for _, _, v in numbers(context)}
        # a correct value that the context also holds proves nothing; neither does a wrong one
        removed -= known
        introduced -= known
        found = numbers(continuation)
        recomputed = tuple(
            Span(a, b, "recompute", continuation[a:b]) for a, b, v in found if v in removed
        )
        carried = tuple(
            Span(a, b, "carried", continuation[a:b]) for a, b, v in found if v in introduced
        )
    # explicit means the text says so ("wait", "let me recheck", ...); recomputing the right
    # value without a word is a silent recovery (the spans are still kept, for highlighting)
    explicit = bool(markers)
    return Detection(_kind(correct, explicit), explicit, markers, recomputed, carried)


def _kind(correct: bool | None, explicit: bool) -> RecoveryKind:
    if correct is None:
        return "noticed" if explicit else "unknown"
    if correct:
        return "explicit" if explicit else "silent"
    return "noticed" if explicit else "none"


_JUDGE_KEYS = ("noticed", "detected", "flagged", "explicit", "verdict", "answer")
_YES = {"yes", "true", "explicit", "noticed", "detected", "flagged", "1"}
_NO = {"no", "false", "silent", "none", "not noticed", "0", "unnoticed"}


def parse_judge(text: str) -> bool | None:
    """The judge's verdict, "did the continuation notice the error": True / False / None.

    Accepts a JSON object with a key such as ``noticed`` or ``verdict``, a
    ``<verdict>...</verdict>`` tag, a ``KEY: value`` line, or a bare yes/no.
    """
    for blob in re.findall(r"\{[^{}]*\}", text):
        try:
            data = json.loads(blob)
        except ValueError:
            continue
        if isinstance(data, dict):
            for key in _JUDGE_KEYS:
                if key in data:
                    return _truthy(str(data[key]))
    tag = re.search(r"<(verdict|answer|noticed)>\s*(.*?)\s*</\1>", text, re.I | re.S)
    if tag:
        return _truthy(tag.group(2))
    line = re.search(rf"\b(?:{'|'.join(_JUDGE_KEYS)})\s*[:=]\s*\**\s*([\w ]+)", text, re.I)
    if line:
        return _truthy(line.group(1))
    words = re.findall(r"[a-z]+", text.lower())
    return _truthy(words[-1]) if words else None


def _truthy(value: str) -> bool | None:
    v = value.strip().strip("*.\"'").lower()
    if v in _YES:
        return True
    if v in _NO:
        return False
    first = v.split()[0] if v.split() else ""
    return True if first in _YES else False if first in _NO else None


def summarise_kinds(kinds: Iterable[str]) -> dict[str, int]:
    """Counts per recovery kind, every kind present (zeros included) for stable tables."""
    counts = dict.fromkeys(("explicit", "silent", "noticed", "none", "unknown"), 0)
    for k in kinds:
        counts[k] = counts.get(k, 0) + 1
    return counts
