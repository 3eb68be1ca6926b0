"""Final-answer extraction and cheap, pure-Python normalisation.

Nothing here imports sympy or math-verify: these functions run in the calling
thread for every grade, so they must be fast and can never hang.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*(\{)?")
_GSM8K_MARK = re.compile(r"^\s*####\s*(.+?)\s*$", re.M)
_PHRASES = re.compile(
    r"(?:final answer(?: is)?|the answer is|answer is|answer:|^\s*A:)\s*:?\s*(.+?)\s*$",
    re.I | re.M,
)
_NUMBER_TOKEN = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_BOLD = re.compile(r"\*\*([^*\n]+)\*\*")
_MARKDOWN = re.compile(r"\*\*|__|`")


@dataclass(frozen=True)
class Extraction:
    """An extracted final answer and the rule that found it."""

    answer: str | None
    how: str  # boxed / gsm8k-marker / answer-phrase / last-number / program-output / none


def extract_answer(text: str, *, style: str = "auto") -> str | None:
    """The final answer in a model response, or None when there is none.

    ``style``: 'auto' (boxed, ``#### N``, answer phrases, then the last number),
    'strict' (no last-number fallback), 'program' (last non-empty output line).
    """
    return find_answer(text, style=style).answer


def find_answer(text: str, *, style: str = "auto") -> Extraction:
    """Like :func:`extract_answer`, also saying which rule decided."""
    if style == "program":
        lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
        return Extraction(lines[-1], "program-output") if lines else Extraction(None, "none")
    if not text or not text.strip():
        return Extraction(None, "none")
    boxed = last_boxed(text)
    if boxed is not None and boxed.strip():
        return Extraction(boxed.strip(), "boxed")
    marks = _GSM8K_MARK.findall(text)
    if marks:
        return Extraction(marks[-1], "gsm8k-marker")
    phrases = [p for p in _PHRASES.findall(text) if _trim_phrase(p)]
    if phrases:
        return Extraction(_trim_phrase(phrases[-1]), "answer-phrase")
    bold = [b.strip() for b in _BOLD.findall(text) if re.search(r"\d", b) and len(b) < 40]
    if bold:
        return Extraction(_trim_phrase(bold[-1]), "bold")
    if style != "strict":
        numbers = _NUMBER_TOKEN.findall(text)
        if numbers:
            return Extraction(numbers[-1].rstrip(",").replace("$", ""), "last-number")
    return Extraction(None, "none")


def last_boxed(text: str) -> str | None:
    """Contents of the last ``\\boxed{...}`` (nested braces) or ``\\boxed x``."""
    found: str | None = None
    for m in _BOXED.finditer(text):
        if m.group(1) is None:
            rest = re.match(r"\s*([^\s$.,]+)", text[m.end() :])
            found = rest.group(1) if rest else found
            continue
        depth, i = 1, m.end()
        while i < len(text) and depth:
            if text[i] == "\\":
                i += 2
                continue
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            found = text[m.end() : i - 1]
    return found


def _trim_phrase(phrase: str) -> str:
    phrase = _MARKDOWN.sub("", phrase).strip()
    math = re.findall(r"\$+([^$]+)\$+", phrase)
    if math:
        return str(math[-1]).strip()
    return phrase.rstrip(".").strip()


# -- normalisation ------------------------------------------------------------

_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_DROP = re.compile(
    r"(?<!\\)\\[!,;: ]|\\left\b|\\right\b|\\displaystyle|\\mathrm\{\s*\}|\^\{?\\circ\}?|\\circ|"
    r"\\%|%|\\\$|\$|\\quad|\\qquad"
)
_TEXT_CMD = re.compile(r"\\(?:text|textbf|mathrm|mbox|textnormal|mathbf)\{([^{}]*)\}")
_TRAILING_UNITS = re.compile(r"^(.*?\d.*?)\s*\\(?:text|mbox|mathrm)\{\s*[A-Za-z][A-Za-z .]*\}$")


def clean_answer(answer: str) -> str:
    """Strip the presentation around an answer: markdown, math wrappers, units, spacing."""
    s = _MARKDOWN.sub("", answer).strip()
    for left, right in _WRAPPERS:
        if s.startswith(left) and s.endswith(right) and len(s) > len(left) + len(right):
            s = s[len(left) : -len(right)].strip()
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    m = _TRAILING_UNITS.match(s)
    if m:
        s = m.group(1)
    s = _DROP.sub("", s)
    s = _TEXT_CMD.sub(r"\1", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"^(?:\\?text\{)?(?:x|y|n|k|a|b)\s*=\s*(?=[^=]+$)", "", s)
    return s.rstrip(".").rstrip("\\").strip()


# -- numbers --------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    """A parsed number; ``decimals`` > 0 when it was written as a rounded decimal."""

    value: Fraction
    decimals: int = 0

    def __str__(self) -> str:
        if self.decimals:
            return f"{float(self.value):.{self.decimals}f}"
        v = self.value
        return str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"


_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?:\D|$))|\{,\}")
_PLAIN = re.compile(r"^([+-]?)(\d+)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$|^([+-]?)\.(\d+)$")
_SCI = re.compile(r"^(.+?)\s*(?:\\times|\\cdot|\*|x)\s*10\^\{?([+-]?\d+)\}?$")
_FRAC = re.compile(r"^([+-]?)\\frac\{([^{}]+)\}\{([^{}]+)\}$|^([+-]?)\\frac(\d)(\d)$")
_SLASH = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)$")
_MIXED = re.compile(r"^([+-]?\d+)\s*(?:\\frac\{(\d+)\}\{(\d+)\}|\s(\d+)/(\d+))$")
_REPEATING = re.compile(r"^([+-]?)(\d*)\.(\d*)(?:\\overline\{(\d+)\}|\((\d+)\))$")
_UNIT_WORDS = re.compile(r"^(.*?\d)\s+[A-Za-z][A-Za-z .'/]*$")


def parse_number(text: str) -> Number | None:
    """Parse a plain number in any usual spelling, or return None."""
    s = _THOUSANDS.sub("", text.strip()).replace(" ", " ").strip()
    m = _UNIT_WORDS.match(s)
    if m and "\\" not in s:
        s = m.group(1)
    s = s.replace(" ", "") if re.fullmatch(r"[+-]?\s*[\d.]+", s) else s
    return _parse_plain(s) or _parse_compound(s)


def _parse_plain(s: str) -> Number | None:
    m = _PLAIN.match(s)
    if not m:
        return None
    if m.group(6) is not None:  # ".5"
        digits = m.group(6)
        value = Fraction(int(digits), 10 ** len(digits))
        return Number(-value if m.group(5) == "-" else value, len(digits))
    sign, whole, frac, exp = m.group(1), m.group(2), m.group(3) or "", m.group(4)
    value = Fraction(int(whole + frac), 10 ** len(frac))
    if exp:
        value *= Fraction(10) ** int(exp)
    decimals = len(frac) if not exp and frac.strip("0") else 0
    return Number(-value if sign == "-" else value, decimals)


def _parse_compound(s: str) -> Number | None:
    if m := _FRAC.match(s):
        sign = m.group(1) if m.group(1) is not None else m.group(4)
        num_s, den_s = (m.group(2), m.group(3)) if m.group(2) is not None else m.group(5, 6)
        num, den = _parse_plain(num_s.strip()), _parse_plain(den_s.strip())
        if num is None or den is None or den.value == 0:
            return None
        value = num.value / den.value
        return Number(-value if sign == "-" else value)
    if m := _SLASH.match(s):
        num, den = _parse_plain(m.group(1)), _parse_plain(m.group(2))
        if num is None or den is None or den.value == 0:
            return None
        return Number(num.value / den.value)
    if m := _MIXED.match(s):
        whole = int(m.group(1))
        a, b = (m.group(2), m.group(3)) if m.group(2) else (m.group(4), m.group(5))
        if int(b) == 0 or int(a) >= int(b):
            return None
        part = Fraction(int(a), int(b))
        return Number(whole - part if whole < 0 or m.group(1).startswith("-") else whole + part)
    if m := _REPEATING.match(s):
        sign, integer, fixed, rep = (
            m.group(1),
            m.group(2) or "0",
            m.group(3),
            m.group(4) or m.group(5),
        )
        value = Fraction(int(integer)) + Fraction(int(fixed or "0"), 10 ** len(fixed))
        value += Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed))
        return Number(-value if sign == "-" else value)
    if m := _SCI.match(s):
        mant = _parse_plain(m.group(1).strip())
        if mant is None:
            return None
        return Number(mant.value * Fraction(10) ** int(m.group(2)))
    return None


def numbers_equal(a: Number, b: Number) -> bool:
    """Exact for exact numbers; a rounded decimal equals anything that rounds to it."""
    if a.value == b.value:
        return True
    for x, y in ((a, b), (b, a)):
        finer = y.decimals == 0 or y.decimals > x.decimals
        # 3+ decimals: "0.333" is 1/3 rounded; "0.33" is too coarse to accept
        if x.decimals >= 3 and finer and abs(y.value - x.value) <= Fraction(1, 2 * 10**x.decimals):
            return True
    # floating noise in long decimals ("0.30000000000000004")
    return abs(a.value - b.value) <= Fraction(1, 10**9) * max(Fraction(1), abs(b.value))


_CHOICE = re.compile(
    r"^\(?([A-E])\)?$|^\\text\{\(?([A-E])\)?\}$|^(?:[Oo]ption|[Cc]hoice)\s*\(?([A-Ea-e])\)?$"
)


#: "(C) 12", "\\textbf{(C) }12", "\\text{(C)} 12": a choice letter leading an answer that
#: also restates the option's value; not "(C)+1", where the letter is a term of an expression
_LEADING_CHOICE = re.compile(
    r"^(?:\\(?:textbf|text|mathbf|mathrm)\{\s*)?\(([A-E])\)\s*\}?\s*(?:[^\s+\-*/^=].*)?$", re.S
)


def leading_choice(text: str) -> str | None:
    """The letter of an answer that starts with a parenthesised choice, e.g. ``(C) 12``."""
    m = _LEADING_CHOICE.match(text.strip())
    return m.group(1) if m else None


def choice_letter(text: str) -> str | None:
    """The letter of a multiple-choice answer like 'C', '(C)' or 'Option C'."""
    m = _CHOICE.match(text.strip())
    if not m:
        return None
    return next(g for g in m.groups() if g).upper()
