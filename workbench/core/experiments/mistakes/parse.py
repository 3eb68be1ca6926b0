"""Read a critic's reply: which step is the first mistake, or is one step correct."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PICK = re.compile(
    r"mistake\s*[:\-]?\s*(?:is\s+(?:in\s+)?)?(?:step\s*)?(\d+|none|no\s+mistake)", re.I
)
_STEP = re.compile(r"\bstep\s*(\d+)\b", re.I)
_NONE = re.compile(
    r"\b(no mistakes?|none|all (?:the )?steps are correct|every step is correct)\b", re.I
)
_YES_NO = re.compile(r"\b(yes|no|correct|incorrect|wrong)\b", re.I)


@dataclass(frozen=True)
class MistakePick:
    """``index``: the 0-based first wrong step named, None for "no mistake";
    ``readable`` False when the reply names neither (or a step the trace does not have)."""

    index: int | None
    readable: bool

    @property
    def text(self) -> str:
        if not self.readable:
            return "unreadable"
        return "none" if self.index is None else f"step {self.index + 1}"


def parse_mistake_pick(reply: str, n_steps: int) -> MistakePick:
    """ "Mistake: Step 3" -> index 2; "Mistake: none" -> None; steps are numbered from 1."""
    found = _PICK.search(reply)
    if found is not None:
        token = found.group(1).lower()
        if not token.isdigit():
            return MistakePick(None, True)
        return _numbered(int(token), n_steps)
    steps = _STEP.findall(reply)
    if len(set(steps)) == 1:  # one step named, in other words
        return _numbered(int(steps[0]), n_steps)
    if not steps and _NONE.search(reply):
        return MistakePick(None, True)
    return MistakePick(None, False)


def _numbered(number: int, n_steps: int) -> MistakePick:
    if 1 <= number <= n_steps:
        return MistakePick(number - 1, True)
    return MistakePick(None, False)


def parse_step_verdict(reply: str) -> bool | None:
    """True for a step judged correct ("Yes"), False for "No", None when unreadable."""
    found = _YES_NO.search(reply)
    if found is None:
        return None
    return found.group(1).lower() in ("yes", "correct")
