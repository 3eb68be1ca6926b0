"""How the sandbox reports a returned value: repr, a JSON-able form, answer text.

Loaded by the sandbox child (before any guard is active) and importable from
the parent for tests.  Imports nothing from ``workbench``.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

MAX_REPR = 10_000
MAX_JSON_ITEMS = 10_000
MAX_STRING = 100_000  # a returned text longer than this is cut (answers are short)


def _module_of(value: Any) -> str:
    return type(value).__module__.partition(".")[0]


def to_jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-able form: numbers stay numbers, exact values become strings."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value[:MAX_STRING]
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else repr(value)
    if isinstance(value, Fraction | Decimal | complex):
        return str(value)
    module = _module_of(value)
    if module == "numpy":
        if hasattr(value, "tolist"):
            return to_jsonable(value.tolist(), depth + 1)
        return repr(value)
    if module == "pandas" and hasattr(value, "to_dict"):
        if hasattr(value, "columns"):
            return to_jsonable(value.head(MAX_JSON_ITEMS).to_dict(orient="records"), depth + 1)
        return to_jsonable(value.head(MAX_JSON_ITEMS).to_dict(), depth + 1)
    if module in ("sympy", "mpmath"):
        return str(value)
    if depth > 20:
        return repr(value)[:MAX_REPR]
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)[:MAX_JSON_ITEMS]
        return [to_jsonable(v, depth + 1) for v in items]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, depth + 1) for k, v in list(value.items())[:MAX_JSON_ITEMS]}
    return repr(value)[:MAX_REPR]


def _float_text(value: float) -> str:
    if value != value or abs(value) == float("inf"):
        return repr(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.12g}"


def answer_text(value: Any) -> str | None:
    """The value in the answer format graders read (LaTeX for exact values)."""
    if value is None:
        return None
    if isinstance(value, bool | str):
        return str(value).strip()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        sign = "-" if value < 0 else ""
        return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"
    if isinstance(value, Decimal):
        return _float_text(float(value)) if value == value.to_integral_value() else str(value)
    module = _module_of(value)
    if module == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return answer_text(value.item())
    if module == "numpy" and hasattr(value, "tolist"):
        return answer_text(value.tolist())
    if module == "sympy":
        return _sympy_text(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(answer_text(v) or "" for v in value) + ")"
    if isinstance(value, list):
        return ", ".join(answer_text(v) or "" for v in value)
    if isinstance(value, set | frozenset):
        return ", ".join(sorted(answer_text(v) or "" for v in value))
    return str(value)


def _sympy_text(value: Any) -> str:
    import sympy

    if isinstance(value, sympy.Float):
        return _float_text(float(value))
    return str(sympy.latex(value))


def describe(value: Any) -> dict[str, Any]:
    """Type, repr, JSON-able form and answer text of a returned value, each size-capped."""
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ is the program's problem, not ours
        text = f"<unrepresentable: {type(exc).__name__}>"
    return {
        "type": f"{type(value).__module__}.{type(value).__qualname__}",
        "repr": text[:MAX_REPR],
        "json": to_jsonable(value),
        "answer": (answer_text(value) or "")[:MAX_STRING] if value is not None else None,
    }
