"""Answer equivalence: a cheap in-process path and a full path for the worker pool.

``fast_compare`` decides plain numbers, strings, letters and structures of those
without sympy; it returns ``None`` when it cannot decide.  ``full_compare`` adds
math-verify (sympy) for LaTeX expressions and runs only inside a grader worker
process, where a hard timeout can kill it (math-verify's own SIGALRM timeouts
are disabled: they fail off the main thread).

Structures are split here, before math-verify sees them, because math-verify is
lenient with sets (any element matching can count) and does not tell ordered
tuples from unordered answer lists.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from workbench.core.grading.answers import (
    Number,
    choice_letter,
    clean_answer,
    leading_choice,
    numbers_equal,
    parse_number,
)

#: How a percent compares with a plain number (a documented, configurable rule):
#: ``either`` (default): ``25\%`` equals ``25`` and its fraction ``0.25``;
#: ``number``: the percent sign is dropped, so ``25\%`` equals ``25`` only.
#: Set with the environment variable ``WORKBENCH_PERCENT_RULE`` (read in the grader's
#: worker processes too, which inherit the environment).
PercentRule = Literal["either", "number"]
PERCENT_RULES: tuple[PercentRule, ...] = ("either", "number")
_PERCENT = re.compile(r"(?:\\?%|\s*percent)\s*\}?\s*$")


def percent_rule() -> PercentRule:
    rule = os.environ.get("WORKBENCH_PERCENT_RULE", "either")
    return rule if rule in PERCENT_RULES else "either"  # type: ignore[return-value]


def percent_verdict(answer: str, gold: str, rule: PercentRule | None = None) -> Verdict | None:
    """A percent against its fraction (``25\\%`` vs ``0.25``) under ``rule``; None when the
    rule does not apply (both or neither are percents, or one is not a number)."""
    if (rule or percent_rule()) != "either":
        return None
    pa, pg = bool(_PERCENT.search(answer.strip())), bool(_PERCENT.search(gold.strip()))
    if pa == pg:
        return None
    na, ng = parse_number(clean_answer(answer)), parse_number(clean_answer(gold))
    if na is None or ng is None:
        return None
    pct, other = (na, ng) if pa else (ng, na)
    if numbers_equal(pct, other) or numbers_equal(Number(pct.value / 100), other):
        shown = f"{na.value}" + ("%" if pa else "")
        return Verdict(True, "percent", shown, f"{pct.value}% equals {other.value} (rule: either)")
    return None


@dataclass(frozen=True)
class Verdict:
    correct: bool | None  # None: undecided (fast path only)
    method: str
    normalised: str
    reason: str


@dataclass(frozen=True)
class Shape:
    kind: str  # scalar / tuple / set / list / union / matrix
    items: tuple[str, ...]
    brackets: str = ""  # "()" "[)" ... for tuples/intervals; "RxC" for matrices


ScalarCmp = Callable[[str, str], "Verdict | None"]

_MATRIX = re.compile(r"^\\begin\{([pbvBV]?matrix)\}(.*)\\end\{\1\}$", re.S)
_TEXT_WORDS = re.compile(r"[A-Za-z][A-Za-z \-']*")
_SPACES = re.compile(r"\s+")


def split_top(s: str, sep: str) -> list[str]:
    """Split at ``sep`` outside any (), [], {} nesting (intervals may mix brackets)."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and s.startswith(("\\{", "\\}"), i):
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i].strip())
            start = i + len(sep)
            i = start
            continue
        i += 1
    parts.append(s[start:].strip())
    return parts


def _wraps_whole(s: str) -> bool:
    """True when the bracket opening ``s`` closes at its last character."""
    depth = 0
    for i, ch in enumerate(s):
        depth += 1 if ch in "([{" else -1 if ch in ")]}" else 0
        if depth == 0:
            return i == len(s) - 1
    return False


def shape_of(s: str) -> Shape:
    s = s.strip()
    if len(parts := split_top(s, "\\cup")) > 1:
        return Shape("union", tuple(parts))
    if m := _MATRIX.match(s):
        rows = [r for r in split_top(m.group(2).strip(), "\\\\") if r.strip()]
        cells = [split_top(r, "&") for r in rows]
        if cells and len({len(r) for r in cells}) == 1:
            flat = tuple(c for r in cells for c in r)
            return Shape("matrix", flat, f"{len(cells)}x{len(cells[0])}")
    if s.startswith("\\{") and s.endswith("\\}"):
        return Shape("set", tuple(p for p in split_top(s[2:-2], ",") if p))
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _wraps_whole(s):
        items = split_top(s[1:-1], ",")
        if len(items) >= 2:
            return Shape("tuple", tuple(items), s[0] + s[-1])
    if len(items := split_top(s, ",")) >= 2 and all(items):
        return Shape("list", tuple(items))
    return Shape("scalar", (s,))


def _strip_spaces(s: str) -> str:
    return _SPACES.sub("", s)


def fast_scalar(answer: str, gold: str) -> Verdict | None:
    """Decide two scalar answers without sympy, or return None."""
    a, g = clean_answer(answer), clean_answer(gold)
    if _strip_spaces(a) == _strip_spaces(g):
        return Verdict(True, "exact", a, "same text after normalising")
    la, lg = choice_letter(a), choice_letter(g)
    if lg is not None and la is None:  # "(C) 12" or "\textbf{(C) }12" against "C"
        la = leading_choice(a)
    if lg is not None and la is not None:
        return Verdict(la == lg, "choice", la, f"choice {la} vs {lg}")
    na, ng = parse_number(a), parse_number(g)
    if na is not None and ng is not None:
        same = numbers_equal(na, ng)
        return Verdict(same, "numeric", str(na), f"{na} {'==' if same else '!='} {ng}")
    if _is_text(a) and _is_text(g):
        same = a.casefold() == g.casefold()
        return Verdict(same, "text", a.casefold(), "case-insensitive text")
    return None


def _is_text(s: str) -> bool:
    return bool(_TEXT_WORDS.fullmatch(s)) and bool(re.search(r"[A-Za-z]{3,}", s))


def compare_shapes(answer: str, gold: str, scalar: ScalarCmp) -> Verdict | None:
    """Compare structured answers element by element with ``scalar``."""
    a_raw, g_raw = clean_answer(answer), clean_answer(gold)
    if parse_number(a_raw) is not None or parse_number(g_raw) is not None:
        return scalar(a_raw, g_raw)  # "1,000" is a number, not a list
    sa, sg = shape_of(a_raw), shape_of(g_raw)
    if sg.kind == "scalar" and sa.kind == "scalar":
        return scalar(a_raw, g_raw)
    unordered = {"set", "list", "union"}
    if sa.kind in unordered and sg.kind in unordered:
        return _match_unordered(sa.items, sg.items, scalar, sg.kind)
    if sa.kind != sg.kind or sa.brackets != sg.brackets or len(sa.items) != len(sg.items):
        if sa.kind == sg.kind and sa.brackets != sg.brackets and sa.kind == "tuple":
            return Verdict(False, sg.kind, a_raw, f"brackets {sa.brackets} vs {sg.brackets}")
        return None  # different shapes: let the full path look at the whole expression
    for i, (x, y) in enumerate(zip(sa.items, sg.items, strict=True)):
        v = compare_shapes(x, y, scalar)
        if v is None or not v.correct:
            return (
                v if v is None else Verdict(False, sg.kind, a_raw, f"element {i + 1}: {v.reason}")
            )
    return Verdict(True, sg.kind, a_raw, f"all {len(sg.items)} elements equal, in order")


def _match_unordered(
    a_items: tuple[str, ...], g_items: tuple[str, ...], scalar: ScalarCmp, kind: str
) -> Verdict | None:
    normalised = ", ".join(sorted(a_items))
    if len(a_items) != len(g_items):
        return Verdict(False, kind, normalised, f"{len(a_items)} elements vs {len(g_items)}")
    unmatched = list(a_items)
    undecided = False
    for g in g_items:
        for x in unmatched:
            v = compare_shapes(x, g, scalar)
            if v is None:
                undecided = True
            elif v.correct:
                unmatched.remove(x)
                break
        else:
            if undecided:
                return None
            return Verdict(False, kind, normalised, f"no match for {g}")
    return Verdict(True, kind, normalised, f"all {len(g_items)} elements matched, any order")


def fast_compare(answer: str, gold: str) -> Verdict | None:
    return percent_verdict(answer, gold) or compare_shapes(answer, gold, fast_scalar)


# -- full path (worker process only) --------------------------------------------------

_MV: dict[str, Any] = {}


def _math_verify() -> dict[str, Any]:
    if not _MV:
        import logging

        import math_verify

        logging.getLogger("math_verify").setLevel(logging.CRITICAL)
        _MV["parse"], _MV["verify"] = math_verify.parse, math_verify.verify
        _MV["config"] = [math_verify.LatexExtractionConfig(), math_verify.ExprExtractionConfig()]
    return _MV


def full_scalar(answer: str, gold: str) -> Verdict:
    fast = fast_scalar(answer, gold)
    if fast is not None and (fast.correct or fast.method in ("numeric", "choice")):
        return fast
    mv = _math_verify()
    a, g = clean_answer(answer), clean_answer(gold)
    parsed_g = mv["parse"](f"${g}$", mv["config"], parsing_timeout=None)
    parsed_a = mv["parse"](f"${a}$", mv["config"], parsing_timeout=None)
    if parsed_a and parsed_g:
        same = bool(mv["verify"](parsed_g, parsed_a, timeout_seconds=None))
        shown = str(parsed_a[0])
        return Verdict(same, "math-verify", shown, f"sympy: {shown} vs {parsed_g[0]}")
    if fast is not None:
        return fast
    same = _strip_spaces(a).casefold() == _strip_spaces(g).casefold()
    return Verdict(same, "string", a, "not parseable as math; compared as text")


def _full_scalar_cmp(answer: str, gold: str) -> Verdict | None:
    return full_scalar(answer, gold)


def full_compare(answer: str, gold: str) -> Verdict:
    percent = percent_verdict(answer, gold)
    if percent is not None:
        return percent
    verdict = compare_shapes(answer, gold, _full_scalar_cmp)
    return verdict if verdict is not None else full_scalar(answer, gold)


def worker_main(conn: Any) -> None:
    """Loop of a grader worker process: receive (answer, gold), send a verdict."""
    _math_verify()  # import sympy once, before the first task
    conn.send(("ready", None))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            conn.send(("ok", full_compare(*task)))
        except Exception as exc:  # a grader bug must not kill the worker
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
