"""Split worked solutions (or model traces) into ordered steps, and join them back.

Three shapes are recognised:

* already-stepped text ("Step 1:", "1.", "1)" at line starts): one step per marker;
* GSM8K-style line solutions: one step per non-empty line (the ``#### N`` line included);
* MATH-style prose: split at paragraph breaks, sentence ends and display-math blocks
  that end a sentence -- never inside ``$...$``, ``$$...$$``, ``\\[...\\]``, ``\\(...\\)``,
  ``\\begin{env}...\\end{env}`` or ``[asy]...[/asy]``.

Every step is a stripped slice of the input, in order, so joining the steps gives back
the text modulo whitespace.  The split is a pure function of the text.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

_STEP_MARKER = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*|\*\*|__)?(?:(?:step|Step|STEP)[ \t]*\d+\b|\d{1,2}[.)](?=\s))", re.M
)
_GSM8K_HINT = re.compile(r"<<[^<>]*>>|^####\s", re.M)
_LATEX_HINT = re.compile(r"\$|\\\[|\\\(|\\begin\{|\\frac|\\boxed|\[asy\]")
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
# A sentence ends at . ! ? (optionally closed by quotes/brackets) followed by whitespace and
# something that can start a sentence.
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s+[A-Z0-9$\\(\[])")
_ABBREVIATIONS = (
    "e.g.",
    "i.e.",
    "etc.",
    "vs.",
    "Mr.",
    "Mrs.",
    "Ms.",
    "Dr.",
    "St.",
    "cf.",
    "approx.",
)
_NEXT_SENTENCE = re.compile(r"\s+[A-Z$\\]")
_MIN_STEP_CHARS = 8  # a "sentence" shorter than this (e.g. "Case 1.") joins the next one
_ENV_BEGIN = re.compile(r"\\begin\{([^{}]+)\}")


def math_spans(text: str) -> list[tuple[int, int, bool]]:
    """Protected regions as (start, end, is_display), in order and non-overlapping.

    An unclosed delimiter protects nothing (it is more likely a stray dollar sign than
    math), and an inline ``$...$`` may not span a blank line for the same reason.
    """
    spans: list[tuple[int, int, bool]] = []
    i, n = 0, len(text)
    while i < n:
        found = _match_region(text, i)
        if found is None:
            i += 2 if text[i] == "\\" else 1
            continue
        end, display = found
        spans.append((i, end, display))
        i = end
    return spans


def _match_region(text: str, i: int) -> tuple[int, bool] | None:
    """If a protected region opens at ``i``, return (its end, is_display)."""
    if text.startswith("[asy]", i):
        j = text.find("[/asy]", i + 5)
        return (j + 6, True) if j >= 0 else None
    ch = text[i]
    if ch == "$":
        if text.startswith("$$", i):
            j = _find_unescaped(text, "$$", i + 2)
            return (j + 2, True) if j >= 0 else None
        j = _find_unescaped(text, "$", i + 1)
        if j < 0 or _PARAGRAPH.search(text, i, j):
            return None
        return j + 1, False
    if ch != "\\":
        return None
    if text.startswith("\\[", i):
        j = text.find("\\]", i + 2)
        return (j + 2, True) if j >= 0 else None
    if text.startswith("\\(", i):
        j = text.find("\\)", i + 2)
        return (j + 2, False) if j >= 0 else None
    m = _ENV_BEGIN.match(text, i)
    if m:
        end = _matching_end(text, m.group(1), m.end())
        return (end, True) if end >= 0 else None
    return None


def _find_unescaped(text: str, needle: str, start: int) -> int:
    j = text.find(needle, start)
    while j >= 0 and _escaped(text, j):
        j = text.find(needle, j + 1)
    return j


def _escaped(text: str, j: int) -> bool:
    backslashes = 0
    while j - backslashes - 1 >= 0 and text[j - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def _matching_end(text: str, env: str, start: int) -> int:
    """End offset of the ``\\end{env}`` closing a ``\\begin{env}`` (nesting counted)."""
    begin, end = f"\\begin{{{env}}}", f"\\end{{{env}}}"
    depth, pos = 1, start
    while depth:
        nb, ne = text.find(begin, pos), text.find(end, pos)
        if ne < 0:
            return -1
        if 0 <= nb < ne:
            depth, pos = depth + 1, nb + len(begin)
        else:
            depth, pos = depth - 1, ne + len(end)
    return pos


def detect_shape(text: str) -> str:
    """'stepped', 'lines' or 'prose' for ``source='auto'``."""
    if len(_STEP_MARKER.findall(text)) >= 2:
        return "stepped"
    if _GSM8K_HINT.search(text):
        return "lines"
    if _LATEX_HINT.search(text):
        return "prose"
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return "lines" if len(lines) > 1 else "prose"


def stepify(text: str, *, source: str = "auto") -> list[str]:
    """Split ``text`` into steps.

    ``source`` picks the rules: 'gsm8k' (lines), 'math' / 'numina' / 'ocw' (prose),
    'stepped', or 'auto' (detect).  Text with step markers is kept as stepped whatever
    the source says, since its author already chose the steps.
    """
    if not text.strip():
        return []
    shape = detect_shape(text)
    if shape != "stepped" and source != "auto":
        shape = "lines" if source in ("gsm8k", "lines") else "prose"
    cuts = {"stepped": _stepped_cuts, "lines": _line_cuts, "prose": _prose_cuts}[shape](text)
    return _pieces(text, cuts)


def step_offsets(text: str, *, source: str = "auto") -> list[int]:
    """The cut offsets stepify would use (for tests and highlighting)."""
    shape = detect_shape(text)
    if shape != "stepped" and source != "auto":
        shape = "lines" if source in ("gsm8k", "lines") else "prose"
    return sorted(
        {"stepped": _stepped_cuts, "lines": _line_cuts, "prose": _prose_cuts}[shape](text)
    )


def join_steps(steps: Sequence[str]) -> str:
    """Steps back into one text, one step per line."""
    return "\n".join(s.strip() for s in steps if s.strip())


def _pieces(text: str, cuts: set[int]) -> list[str]:
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(text)), len(text)]
    pieces = [text[a:b].strip() for a, b in itertools.pairwise(bounds)]
    steps: list[str] = []
    for piece in pieces:
        if not piece:
            continue
        # punctuation-only leftovers (a lone "." after display math) belong to the step before
        if steps and not re.search(r"\w", piece):
            steps[-1] = f"{steps[-1]} {piece}"
        else:
            steps.append(piece)
    return steps


def _stepped_cuts(text: str) -> set[int]:
    spans = math_spans(text)
    return {m.start() for m in _STEP_MARKER.finditer(text) if not _inside(m.start(), spans)}


def _line_cuts(text: str) -> set[int]:
    spans = math_spans(text) if "[asy]" in text or "\\begin{" in text else []
    return {m.end() for m in re.finditer(r"\n", text) if not _inside(m.end() - 1, spans)}


def _prose_cuts(text: str) -> set[int]:
    spans = math_spans(text)
    cuts: set[int] = set()
    for m in _PARAGRAPH.finditer(text):
        if not _inside(m.start(), spans):
            cuts.add(m.end())
    for m in _SENTENCE_END.finditer(text):
        if not _inside(m.start(), spans) and not _abbreviation(text, m.end()):
            cuts.add(m.end())
    for start, end, display in spans:
        # "... = 3.$  Also" and "\\[x = 5.\\]Then" end sentences inside the math
        if not _ends_sentence(text[start:end]) or not text[end:].strip():
            continue
        if display or _NEXT_SENTENCE.match(text, end):
            cuts.add(end)
    return _drop_short(text, cuts)


def _inside(pos: int, spans: list[tuple[int, int, bool]]) -> bool:
    # spans are few per solution; a linear scan is cheaper than bisect bookkeeping
    return any(start <= pos < end for start, end, _ in spans)


def _abbreviation(text: str, end: int) -> bool:
    return any(text.endswith(a, 0, end) for a in _ABBREVIATIONS)


def _ends_sentence(block: str) -> bool:
    inner = re.sub(r"(\\\]|\$\$|\$|\\\)|\\end\{[^{}]+\}|\[/asy\])\s*$", "", block).rstrip()
    inner = re.sub(r"(\\text\{\s*|\\quad|\\,|\})*$", "", inner).rstrip()
    return inner.endswith((".", "!", "?"))


def _drop_short(text: str, cuts: set[int]) -> set[int]:
    """Drop cuts that would leave a very short step (they join the next step)."""
    kept: set[int] = set()
    last = 0
    for cut in sorted(cuts):
        if len(re.sub(r"\s", "", text[last:cut])) >= _MIN_STEP_CHARS:
            kept.add(cut)
            last = cut
    return kept
