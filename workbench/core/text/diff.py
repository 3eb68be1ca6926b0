"""Word-level diff between two strings, as (op, text) segments for display.

Ops are ``"equal"``, ``"delete"`` (only in the old text) and ``"insert"`` (only in
the new text).  Joining the equal + delete segments gives back the old text, and
equal + insert the new one, whitespace included.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import Literal

Op = Literal["equal", "delete", "insert"]
Segment = tuple[Op, str]

# Words, numbers with decimal points, runs of whitespace, or single other characters,
# so "3.5" vs "3.6" is one changed token and "=" stays apart from the numbers around it.
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|\w+|\s+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text)


def word_diff(old: str, new: str) -> list[Segment]:
    """Segments turning ``old`` into ``new``; adjacent segments never share an op."""
    a, b = tokenize(old), tokenize(new)
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    segments: list[Segment] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            _append(segments, "equal", "".join(a[i1:i2]))
            continue
        if tag in ("delete", "replace"):
            _append(segments, "delete", "".join(a[i1:i2]))
        if tag in ("insert", "replace"):
            _append(segments, "insert", "".join(b[j1:j2]))
    return _absorb_lone_spaces(segments)


def _append(segments: list[Segment], op: Op, text: str) -> None:
    if not text:
        return
    if segments and segments[-1][0] == op:
        segments[-1] = (op, segments[-1][1] + text)
    else:
        segments.append((op, text))


def _absorb_lone_spaces(segments: list[Segment]) -> list[Segment]:
    """Fold an equal run of pure whitespace between two changes into the changes.

    "a b" -> "x y" then reads as one replaced phrase instead of x, space, y.
    """
    out: list[Segment] = []
    i = 0
    while i < len(segments):
        op, text = segments[i]
        between_changes = (
            op == "equal"
            and text.isspace()
            and 0 < i < len(segments) - 1
            and segments[i - 1][0] != "equal"
            and segments[i + 1][0] != "equal"
        )
        if between_changes:
            for side in ("delete", "insert"):
                _merge_last(out, side, text)  # type: ignore[arg-type]
        else:
            _merge_last(out, op, text, force_new=True)
        i += 1
    return _normalise(out)


def _merge_last(out: list[Segment], op: Op, text: str, *, force_new: bool = False) -> None:
    # Put the text onto the last segment of this op within the trailing change block.
    if not force_new:
        for k in range(len(out) - 1, -1, -1):
            if out[k][0] == "equal":
                break
            if out[k][0] == op:
                out[k] = (op, out[k][1] + text)
                return
    out.append((op, text))


def _normalise(segments: list[Segment]) -> list[Segment]:
    """Within each block of changes put deletes before inserts, then merge neighbours."""
    result: list[Segment] = []
    block: list[Segment] = []

    def flush() -> None:
        for op in ("delete", "insert"):
            text = "".join(t for o, t in block if o == op)
            if text:
                _append(result, op, text)  # type: ignore[arg-type]
        block.clear()

    for op, text in segments:
        if op == "equal":
            flush()
            _append(result, "equal", text)
        else:
            block.append((op, text))
    flush()
    return result


def old_text(segments: list[Segment]) -> str:
    return "".join(t for op, t in segments if op != "insert")


def new_text(segments: list[Segment]) -> str:
    return "".join(t for op, t in segments if op != "delete")


def changed_fraction(segments: list[Segment]) -> float:
    """Share of characters (old + new) that are inside changes; 0.0 = identical."""
    total = changed = 0
    for op, text in segments:
        weight = 2 if op == "equal" else 1
        total += weight * len(text)
        if op != "equal":
            changed += len(text)
    return changed / total if total else 0.0
