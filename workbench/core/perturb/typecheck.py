"""Does a perturbed step show the error type that was asked for?

A cheap reading of the word diff between the original and the perturbed step: which
numbers and operators changed, and how.  It recognises a few types by their shape (a
result changed: an arithmetic slip; a sign or a minus flipped: a sign error; a number
moved by one: off-by-one; a term gone: a dropped term; an operand changed: a misread
quantity; an operator swapped: a wrong formula).  When it recognises the change and the
requested type is one it can recognise but not among what it sees, the step is flagged;
otherwise (a change it cannot read, or a type it cannot check) it says nothing.
"""

from __future__ import annotations

import re

from workbench.core.text import word_diff

#: the types this reading can recognise; any other requested type is never flagged
CHECKABLE = frozenset(
    {
        "arithmetic-slip",
        "sign-error",
        "off-by-one",
        "dropped-term",
        "misread-quantity",
        "wrong-formula",
    }
)
_NUMBER = re.compile(r"^-?\d+(?:[.,]\d+)*$")
_OPERATORS = {"+", "-", "*", "/", "×", "÷", "^"}


def _number(token: str) -> float | None:
    if not _NUMBER.match(token):
        return None
    try:
        return float(token.replace(",", ""))
    except ValueError:
        return None


def _tokens(text: str) -> list[str]:
    return [t for t in re.findall(r"\d+(?:[.,]\d+)*|\w+|[^\w\s]", text)]


def _changes(original: str, perturbed: str) -> list[tuple[list[str], list[str], bool]]:
    """Each change as (tokens removed, tokens added, whether it is right of the last "=")."""
    last_equals = original.rfind("=")
    changes: list[tuple[list[str], list[str], bool]] = []
    position = 0
    pending: tuple[list[str], list[str], bool] | None = None
    for op, text in word_diff(original, perturbed):
        result_side = last_equals >= 0 and position > last_equals
        if op == "equal":
            if pending is not None and text.strip():
                changes.append(pending)
                pending = None
            position += len(text)
            continue
        if pending is None:
            pending = ([], [], result_side)
        if op == "delete":
            pending[0].extend(_tokens(text))
            position += len(text)
        else:
            pending[1].extend(_tokens(text))
    if pending is not None:
        changes.append(pending)
    return [c for c in changes if c[0] or c[1]]


def apparent_error_types(original: str, perturbed: str) -> frozenset[str]:
    """The checkable types the change looks like (empty: not readable as any of them)."""
    found: set[str] = set()
    for removed, added, result_side in _changes(original, perturbed):
        ops_removed = {t for t in removed if t in _OPERATORS}
        ops_added = {t for t in added if t in _OPERATORS}
        nums_removed = [n for t in removed if (n := _number(t)) is not None]
        nums_added = [n for t in added if (n := _number(t)) is not None]
        words = [t for t in [*removed, *added] if t not in _OPERATORS and _number(t) is None]
        if words:
            return frozenset()  # words changed too: not a change this reading can name
        if ops_removed and ops_added:
            found.add("sign-error" if ops_removed | ops_added <= {"+", "-"} else "wrong-formula")
        elif ops_added == {"-"} and not nums_removed and not nums_added:
            found.add("sign-error")  # a minus put in front of a number
        elif ops_removed and len(nums_removed) > len(nums_added):
            found.add("dropped-term")  # an operator and its operand gone
        if len(nums_removed) == len(nums_added):
            for old, new in zip(nums_removed, nums_added, strict=True):
                if new == -old and old != 0:
                    found.add("sign-error")
                    continue
                if abs(new - old) == 1:
                    found.add("off-by-one")
                found.add("arithmetic-slip" if result_side else "misread-quantity")
    return frozenset(found)


def type_mismatch(requested: str | None, original: str | None, perturbed: str | None) -> str | None:
    """One line when the perturbed step does not look like ``requested``, else None."""
    if not requested or requested not in CHECKABLE or not original or not perturbed:
        return None
    seen = apparent_error_types(original, perturbed)
    if not seen or requested in seen:
        return None
    return f"asked for {requested}, looks like {' or '.join(sorted(seen))}"
