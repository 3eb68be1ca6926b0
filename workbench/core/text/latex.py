"""Turn common LaTeX into readable Unicode text for a terminal.

Not a renderer: it covers what GSM8K / MATH questions and solutions use
(fractions, roots, powers, Greek letters, operators, ``\\text{}``, ``\\boxed{}``,
align environments) and leaves anything it does not know as the bare command
name, so nothing is silently dropped.  Pure and fast: the Problems screen
calls it on every detail view.
"""

from __future__ import annotations

import re

SYMBOLS: dict[str, str] = {
    # Greek
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε",
    "varepsilon": "ε", "zeta": "ζ", "eta": "η", "theta": "θ", "vartheta": "ϑ",
    "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ",
    "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ", "upsilon": "υ", "phi": "φ",
    "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω", "Gamma": "Γ",
    "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π", "Sigma": "Σ",
    "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
    # operators and relations
    "times": "×", "cdot": "·", "div": "÷", "pm": "±", "mp": "∓", "le": "≤",
    "leq": "≤", "ge": "≥", "geq": "≥", "neq": "≠", "ne": "≠", "approx": "≈",
    "equiv": "≡", "sim": "∼", "cong": "≅", "propto": "∝", "infty": "∞",
    "in": "∈", "notin": "∉", "subset": "⊂", "subseteq": "⊆", "cup": "∪",
    "cap": "∩", "emptyset": "∅", "varnothing": "∅", "forall": "∀",
    "exists": "∃", "neg": "¬", "wedge": "∧", "vee": "∨", "to": "→",
    "rightarrow": "→", "leftarrow": "←", "Rightarrow": "⇒", "Leftarrow": "⇐",
    "implies": "⇒", "iff": "⇔", "leftrightarrow": "↔", "Leftrightarrow": "⇔",
    "mapsto": "↦", "circ": "∘", "degree": "°", "angle": "∠", "triangle": "△",
    "perp": "⊥", "parallel": "∥", "ldots": "…", "cdots": "⋯", "dots": "…",
    "vdots": "⋮", "ddots": "⋱", "sum": "∑", "prod": "∏", "int": "∫",
    "partial": "∂", "nabla": "∇", "mid": "|", "nmid": "∤", "lfloor": "⌊",
    "rfloor": "⌋", "lceil": "⌈", "rceil": "⌉", "langle": "⟨", "rangle": "⟩",
    "star": "⋆", "ast": "∗", "bullet": "•", "prime": "′", "ell": "ℓ",
    "hbar": "ℏ", "Re": "ℜ", "Im": "ℑ", "aleph": "ℵ", "square": "□",
    "checkmark": "✓", "dagger": "†", "cdotp": "·", "colon": ":",
    # spacing and escapes
    ",": " ", ";": " ", ":": " ", "!": "", " ": " ", "quad": "  ", "qquad": "   ",
    "{": "{", "}": "}", "%": "%", "$": "$", "&": "&", "#": "#", "_": "_",
    "backslash": "\\", "displaystyle": "", "textstyle": "", "left": "", "right": "",
    "big": "", "Big": "", "bigg": "", "Bigg": "", "bigl": "", "bigr": "",
    "Bigl": "", "Bigr": "", "limits": "", "nolimits": "", "noindent": "",
    "hline": "", "centering": "", "newline": "\n",
}  # fmt: skip

#: commands whose single argument is shown as plain text
TEXT_COMMANDS = {
    "text", "textbf", "textit", "textrm", "textsf", "texttt", "mathrm", "mathbf",
    "mathit", "mathsf", "mathtt", "mathcal", "mathbb", "operatorname", "emph",
    "mbox", "hbox", "boldsymbol", "mathop", "underline",
}  # fmt: skip

FUNCTIONS = {
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh",
    "cosh", "tanh", "log", "ln", "exp", "lim", "max", "min", "gcd", "lcm", "det",
    "deg", "mod", "bmod", "sup", "inf", "arg", "dim", "ker",
}  # fmt: skip

_SUPER = str.maketrans(
    "0123456789+-=()niabcdefghjklmoprstuvwxyz", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱᵃᵇᶜᵈᵉᶠᵍʰʲᵏˡᵐᵒᵖʳˢᵗᵘᵛʷˣʸᶻ"
)
_SUB = str.maketrans("0123456789+-=()aeiklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑᵢₖₗₘₙₒₚᵣₛₜᵤᵥₓ")
_SUPER_OK = set("0123456789+-=()niabcdefghjklmoprstuvwxyz")
_SUB_OK = set("0123456789+-=()aeiklmnoprstuvx")

_CALC = re.compile(r"<<[^<>]*>>")  # GSM8K calculator annotations
_ASY = re.compile(r"\[asy\].*?\[/asy\]", re.DOTALL)
_ENV = re.compile(r"\\(begin|end)\{([a-zA-Z*]+)\}(\{[^{}]*\})?")
_DOLLAR, _AMP = "\ue000", "\ue001"  # private-use placeholders for \\$ and \\&
_MULTI_SPACE = re.compile(r"[ \t]{2,}")
_DISPLAY = re.compile(r"\$\$|\\\[|\\\]")


def latex_to_text(text: str, *, dollars_are_math: bool = True) -> str:
    """Readable Unicode for a question, step or answer with inline LaTeX.

    GSM8K uses ``$`` for money, so pass ``dollars_are_math=False`` there.
    """
    text = _CALC.sub("", text)
    text = _ASY.sub("[diagram]", text)
    # escaped dollars / ampersands survive; bare ones are math or alignment marks
    text = text.replace("\\$", _DOLLAR).replace("\\&", _AMP)
    if not dollars_are_math:
        text = text.replace("$", _DOLLAR)
    text = _DISPLAY.sub("\n", text)
    text = text.replace("$", "").replace("&", "")
    text = text.replace("\\(", "").replace("\\)", "")
    text = _ENV.sub(_environment, text)
    text = re.sub(r"\\\\(\[[^\]]*\])?", "\n", text)  # line breaks in align / cases
    out = _Converter(text).run()
    out = out.replace(_DOLLAR, "$").replace(_AMP, "&")
    lines = [_MULTI_SPACE.sub(" ", line).strip() for line in out.splitlines()]
    return "\n".join(_squeeze_blank(lines)).strip()


def _environment(m: re.Match[str]) -> str:
    kind, name = m.group(1), m.group(2).rstrip("*")
    if name in ("pmatrix", "bmatrix", "matrix", "vmatrix"):
        return {"begin": "[", "end": "]"}[kind] if name != "vmatrix" else "|"
    return "\n"


def _squeeze_blank(lines: list[str]) -> list[str]:
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    return kept


class _Converter:
    """One left-to-right pass with recursion into brace groups."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def run(self) -> str:
        parts: list[str] = []
        while self.i < len(self.s):
            parts.append(self._next())
        return "".join(parts)

    # -- reading -----------------------------------------------------------

    def _next(self) -> str:
        c = self.s[self.i]
        if c == "\\":
            return self._command()
        if c == "{":
            return self._group()
        if c in "^_":
            self.i += 1
            return self._script(c)
        self.i += 1
        if c == "~":
            return " "
        return c

    def _group(self) -> str:
        """The converted content of ``{...}`` starting at self.i."""
        depth, start = 0, self.i
        for j in range(self.i, len(self.s)):
            if self.s[j] == "\\":
                continue
            if self.s[j] == "{" and (j == 0 or self.s[j - 1] != "\\"):
                depth += 1
            elif self.s[j] == "}" and self.s[j - 1] != "\\":
                depth -= 1
                if depth == 0:
                    self.i = j + 1
                    return _Converter(self.s[start + 1 : j]).run()
        self.i = len(self.s)  # unbalanced: keep the rest as text
        return _Converter(self.s[start + 1 :]).run()

    def _arg(self) -> str:
        """One argument: a brace group, a command, or a single character."""
        while self.i < len(self.s) and self.s[self.i] == " ":
            self.i += 1
        if self.i >= len(self.s):
            return ""
        if self.s[self.i] == "{":
            return self._group()
        return self._next()

    def _optional(self) -> str | None:
        if self.i < len(self.s) and self.s[self.i] == "[":
            end = self.s.find("]", self.i)
            if end != -1:
                value = self.s[self.i + 1 : end]
                self.i = end + 1
                return value
        return None

    def _command(self) -> str:
        m = re.compile(r"\\([a-zA-Z]+|.)").match(self.s, self.i)
        if m is None:  # a trailing backslash
            self.i += 1
            return "\\"
        name = m.group(1)
        self.i = m.end()
        if name in ("frac", "dfrac", "tfrac", "cfrac"):
            return _fraction(self._arg(), self._arg())
        if name == "sqrt":
            index = self._optional()
            body = self._arg()
            root = "√" if not index else {"3": "∛", "4": "∜"}.get(index, f"{index}√")
            return f"{root}{_wrap(body)}"
        if name == "binom" or name == "dbinom":
            return f"C({self._arg()}, {self._arg()})"
        if name == "boxed" or name == "fbox":
            return f"⟦{self._arg()}⟧"
        if name in TEXT_COMMANDS:
            return self._arg()
        if name in ("overline", "bar"):
            return _combine(self._arg(), "\u0305")
        if name in ("hat", "widehat"):
            return _combine(self._arg(), "\u0302")
        if name in ("vec", "overrightarrow"):
            return _combine(self._arg(), "\u20d7")
        if name in ("dot",):
            return _combine(self._arg(), "\u0307")
        if name in ("pmod",):
            return f" (mod {self._arg()})"
        if name in FUNCTIONS:
            return name
        if name in SYMBOLS:
            return SYMBOLS[name]
        return name  # unknown command: its name is more readable than a backslash

    def _script(self, kind: str) -> str:
        body = self._arg()
        if kind == "^" and body in ("∘", "°"):
            return "°"
        table, ok = (_SUPER, _SUPER_OK) if kind == "^" else (_SUB, _SUB_OK)
        if body and all(ch in ok for ch in body):
            return body.translate(table)
        return f"{kind}{_wrap(body)}"


def _wrap(body: str) -> str:
    """Parenthesise anything longer than one number or symbol."""
    if re.fullmatch(r"[0-9.]+|[A-Za-z]|\S", body):
        return body
    return f"({body})"


def _fraction(num: str, den: str) -> str:
    return f"{_wrap(num)}/{_wrap(den)}"


def _combine(body: str, mark: str) -> str:
    return "".join(ch + mark for ch in body) if len(body) <= 3 else f"{body}{mark}"


def strip_calc_annotations(text: str) -> str:
    """Drop GSM8K ``<<48/2=24>>`` calculator notes (kept in the store, hidden on screen)."""
    return _CALC.sub("", text)
