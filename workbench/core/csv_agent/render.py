"""JSON-safe tool results and the deterministic text a model is shown.

Standard library only: the tool worker loads this module inside its jail, where
the ``workbench`` package is not importable.  A result is JSON
(``{"kind": "table" | "value" | "text" | "error", ...}``); ``render_result``
turns it into text cut to ``max_rows`` rows and ``max_chars`` characters with a
note saying what was cut.  The same result always renders to the same text,
so replays and the cache show the model exactly what it saw before.
"""

from __future__ import annotations

import json
import math
from typing import Any

DEFAULT_MAX_ROWS = 20
DEFAULT_MAX_CHARS = 4_000
RAW_ROWS = 1_000  # rows a table result keeps (stored raw); its n_rows says how many there were


def json_safe(value: Any) -> Any:
    """Plain JSON values: NaN -> None, +-inf -> "inf"/"-inf", numpy/pandas scalars -> Python."""
    # exact types first: numpy's float64 and str_ subclass float and str, and must not leak
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return float(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    kind = type(value).__name__
    if kind in ("NAType", "NaTType"):
        return None
    if hasattr(value, "isoformat"):  # datetime, date, pandas Timestamp
        return str(value.isoformat())
    if hasattr(value, "item") and not hasattr(value, "__len__"):  # numpy scalars
        try:
            return json_safe(value.item())
        except (TypeError, ValueError):
            return str(value)
    if hasattr(value, "tolist"):  # numpy arrays
        return json_safe(value.tolist())
    return str(value)


def error_result(message: str, kind: str = "invalid_args") -> dict[str, Any]:
    """A tool error the model sees: one line and its kind."""
    line = (message.strip().splitlines() or [kind])[0][:500]
    return {"kind": "error", "is_error": True, "error": line, "error_kind": kind}


def is_error(result: dict[str, Any]) -> bool:
    return bool(result.get("is_error"))


def _cell(value: Any) -> str:
    if value is None:
        return "NaN"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return format(value, ".10g")
    if isinstance(value, str):
        return value.replace("\n", "\\n").replace("\r", "\\r")
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def table_text(columns: list[str], rows: list[list[Any]]) -> str:
    """A plain aligned table: a header line, then one line per row."""
    cells = [[_cell(str(c)) for c in columns], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def render_result(
    result: dict[str, Any],
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> str:
    """The text a model is shown for ``result``, with a note when anything was cut."""
    notes: list[str] = []
    kind = result.get("kind")
    if kind == "error":
        text = f"error ({result.get('error_kind', 'error')}): {result.get('error', '')}"
    elif kind == "table":
        rows = list(result.get("rows", []))
        total = int(result.get("n_rows", len(rows)))
        shown = rows[:max_rows]
        text = table_text(list(result.get("columns", [])), shown)
        if len(shown) < total:
            notes.append(f"{len(shown):,} of {total:,} rows shown")
        else:
            text += f"\n[{total:,} row{'s' if total != 1 else ''}]"
    elif kind == "value":
        text = _value_text(result.get("value"))
    else:
        text = str(result.get("text", ""))
    if len(text) > max_chars:
        notes.append(f"{max_chars:,} of {len(text):,} characters")
        text = text[:max_chars]
    if notes:
        text += f"\n[truncated: {'; '.join(notes)}]"
    return text


def _value_text(value: Any) -> str:
    if isinstance(value, dict):
        return "\n".join(f"{k}: {_cell(v)}" for k, v in value.items())
    return _cell(value)
