"""The pandas tools a model explores a table with.

Each tool is a plain typed function ``fn(frames, **args) -> result`` with a
Google-style docstring; ``TOOL_SCHEMAS`` derives each one's JSON schema from its
signature and docstring once, and that one definition becomes every provider's
``ToolSpec`` and the ``tools`` column of the SFT export.

``run_tool`` validates arguments before anything runs: a wrong type, an unknown
column or frame, an operator or aggregation outside the allow-list, a number
out of range, or an unknown tool is a result with ``is_error: true`` and one
line the model reads, never an exception.

This module imports only pandas, numpy and the standard library (plus its
sibling ``render``, relatively): the tool worker loads it inside its jail,
where the ``workbench`` package is not importable.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import math
import operator
import re
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypedDict

import numpy as np
import pandas as pd

# relative on purpose: inside the worker's jail this package is not ``workbench``
from . import render

Result = dict[str, Any]
Op = Literal[
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not_in",
    "isnull",
    "notnull",
    "contains",
    "startswith",
    "between",
]
Agg = Literal["count", "sum", "mean", "median", "min", "max", "std", "nunique"]
CorrMethod = Literal["pearson", "spearman"]

MAX_FRAMES = 16
DEFAULT_FRAME_MB = 256
MAX_K = 1000
MAX_N = 100
MAX_CONDITIONS = 20
MAX_EXPRESSION_CHARS = 2000
_FRAME_NAME = re.compile(r"^[A-Za-z_]\w{0,31}$")


class Condition(TypedDict):
    """One filter condition: ``{column, op, value}``."""

    column: str
    op: Op
    value: Any


class ToolArgError(ValueError):
    """An argument the tool cannot run with; becomes an ``invalid_args`` tool result."""


def quote(name: object) -> str:
    """A name in one line, quoted, whatever characters it holds."""
    text = str(name).replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return f"'{text[:80]}'"


class Frames:
    """The frames of one conversation: ``df`` (the table) and those saved with ``save_as``."""

    def __init__(
        self,
        base: pd.DataFrame,
        *,
        max_frames: int = MAX_FRAMES,
        frame_mb: float = DEFAULT_FRAME_MB,
    ) -> None:
        self.frames: dict[str, pd.DataFrame] = {"df": base}
        self.max_frames = max_frames
        self.frame_bytes = int(frame_mb * 1024 * 1024)
        self._base_bytes = _nbytes(base)

    def get(self, name: str) -> pd.DataFrame:
        frame = self.frames.get(name)
        if frame is None:
            known = ", ".join(quote(n) for n in self.frames)
            raise ToolArgError(f"frame {quote(name)} does not exist (frames: {known})")
        return frame

    def check_name(self, save_as: str | None) -> None:
        """Fail before running when ``save_as`` could not be stored."""
        if save_as is None:
            return
        if save_as == "df" or not _FRAME_NAME.match(save_as):
            raise ToolArgError(
                f"save_as {quote(save_as)} must be a new name of letters, digits and _ "
                "(at most 32), not 'df'"
            )
        if save_as not in self.frames and len(self.frames) >= self.max_frames:
            raise ToolArgError(f"at most {self.max_frames} frames per conversation")

    def save(self, name: str | None, frame: pd.DataFrame) -> None:
        if name is None:
            return
        self.check_name(name)
        others = sum(_nbytes(f) for n, f in self.frames.items() if n not in ("df", name))
        size = _nbytes(frame)
        if others + size > self.frame_bytes:
            raise ToolArgError(
                f"saving {quote(name)} would hold {(others + size) / 2**20:,.0f} MB of frames "
                f"(limit {self.frame_bytes / 2**20:,.0f} MB)"
            )
        self.frames[name] = frame


def _nbytes(frame: pd.DataFrame) -> int:
    return int(frame.memory_usage(index=True, deep=False).sum())


# -- helpers ---------------------------------------------------------------------------------


def _column(df: pd.DataFrame, name: str, frame: str) -> pd.Series:
    if name in df.columns:
        return df[name]
    names = [str(c) for c in df.columns]
    folded = [c for c in names if c.casefold() == str(name).casefold()]
    close = folded or difflib.get_close_matches(str(name), names, n=1, cutoff=0.6)
    hint = f"; did you mean {quote(close[0])}?" if close else ""
    where = "" if frame == "df" else f" in frame {quote(frame)}"
    raise ToolArgError(f"column {quote(name)} does not exist{where}{hint}")


def _numeric(series: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        raise ToolArgError(f"column {quote(name)} is not numeric ({series.dtype})")
    return series


def _between(name: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ToolArgError(f"{name} must be between {low} and {high}")
    return value


def table_result(frame: pd.DataFrame, *, index: bool = False) -> Result:
    """A frame as a table result: its first ``RAW_ROWS`` rows and how many there were."""
    data = frame.reset_index() if index else frame
    head = data.head(render.RAW_ROWS)
    rows = [[render.json_safe(v) for v in row] for row in head.itertuples(index=False, name=None)]
    return {
        "kind": "table",
        "columns": [str(c) for c in data.columns],
        "rows": rows,
        "n_rows": len(data),
    }


def value_result(value: Any) -> Result:
    return {"kind": "value", "value": render.json_safe(value)}


# -- the tools -------------------------------------------------------------------------------

ToolFn = Callable[..., Result]
TOOLS: dict[str, ToolFn] = {}


def tool(name: str) -> Callable[[ToolFn], ToolFn]:
    def register(fn: ToolFn) -> ToolFn:
        TOOLS[name] = fn
        return fn

    return register


@tool("schema")
def schema(frames: Frames, frame: str = "df") -> Result:
    """List a frame's columns with their dtype, non-null count and number of distinct values.

    Args:
        frame: the frame to describe ("df" is the table).
    """
    df = frames.get(frame)
    rows = [
        [str(c), str(df[c].dtype), int(df[c].notna().sum()), int(df[c].nunique())]
        for c in df.columns
    ]
    result = table_result(pd.DataFrame(rows, columns=["column", "dtype", "non_null", "distinct"]))
    result["frame_rows"] = len(df)
    return result


@tool("head")
def head(frames: Frames, n: int = 5, frame: str = "df") -> Result:
    """Show the first rows of a frame.

    Args:
        n: how many rows, 1 to 100.
        frame: the frame to read ("df" is the table).
    """
    _between("n", n, 1, MAX_N)
    df = frames.get(frame)
    result = table_result(df.head(n))
    return result


@tool("sample")
def sample(frames: Frames, n: int = 5, seed: int = 0, frame: str = "df") -> Result:
    """Show random rows of a frame (the same seed gives the same rows).

    Args:
        n: how many rows, 1 to 100.
        seed: random seed.
        frame: the frame to read ("df" is the table).
    """
    _between("n", n, 1, MAX_N)
    _between("seed", seed, 0, 2**31 - 1)
    df = frames.get(frame)
    return table_result(df.sample(n=min(n, len(df)), random_state=seed))


@tool("describe")
def describe(frames: Frames, column: str, frame: str = "df") -> Result:
    """Summary statistics of one column (count, mean, std, quartiles; or top values for text).

    Args:
        column: the column to describe.
        frame: the frame to read ("df" is the table).
    """
    series = _column(frames.get(frame), column, frame)
    stats = series.describe()
    return value_result({str(k): v for k, v in stats.items()})


@tool("value_counts")
def value_counts(frames: Frames, column: str, top: int = 10, frame: str = "df") -> Result:
    """Count the rows per distinct value of a column, most frequent first.

    Args:
        column: the column to count.
        top: how many values to list, 1 to 1000.
        frame: the frame to read ("df" is the table).
    """
    _between("top", top, 1, MAX_K)
    series = _column(frames.get(frame), column, frame)
    counts = series.value_counts(dropna=False).head(top)
    out = pd.DataFrame({str(column): list(counts.index), "count": list(counts.to_numpy())})
    result = table_result(out)
    result["distinct"] = int(series.nunique(dropna=False))
    return result


def _condition_mask(df: pd.DataFrame, cond: Any, frame: str) -> pd.Series:
    if not isinstance(cond, dict) or set(cond) - {"column", "op", "value"}:
        raise ToolArgError("each condition must be an object {column, op, value}")
    if "column" not in cond or "op" not in cond:
        raise ToolArgError("each condition needs 'column' and 'op'")
    op, value = cond["op"], cond.get("value")
    if op not in typing.get_args(Op):
        raise ToolArgError(
            f"op {quote(op)} is not allowed (allowed: {' '.join(typing.get_args(Op))})"
        )
    series = _column(df, str(cond["column"]), frame)
    if op in ("isnull", "notnull"):
        return series.isna() if op == "isnull" else series.notna()
    if op in ("in", "not_in"):
        if not isinstance(value, list) or len(value) > MAX_K:
            raise ToolArgError(f"op {op} needs a list of at most {MAX_K} values")
        mask = series.isin(value)
        return mask if op == "in" else ~mask
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ToolArgError("op between needs [low, high]")
        return series.between(value[0], value[1])
    if op in ("contains", "startswith"):
        if not isinstance(value, str):
            raise ToolArgError(f"op {op} needs a string value")
        text = series.astype("string")
        if op == "startswith":
            return text.str.startswith(value).fillna(False).astype(bool)
        try:
            re.compile(value)
        except re.error as exc:
            raise ToolArgError(f"contains: invalid regular expression ({exc})") from exc
        return text.str.contains(value, regex=True).fillna(False).astype(bool)
    if isinstance(value, list | dict) or value is None:
        raise ToolArgError(f"op {op} needs a single number, string or boolean value")
    compare: dict[str, Callable[[Any, Any], Any]] = {
        "==": operator.eq,
        "!=": operator.ne,
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
    }
    try:
        return compare[op](series, value)
    except TypeError as exc:
        raise ToolArgError(
            f"cannot compare column {quote(cond['column'])} ({series.dtype}) with {value!r}"
        ) from exc


@tool("filter")
def filter_rows(
    frames: Frames,
    conditions: list[Condition],
    frame: str = "df",
    save_as: str | None = None,
) -> Result:
    """Keep the rows that meet every condition (AND); optionally save them as a new frame.

    Args:
        conditions: a list of {column, op, value}; op is one of == != < <= > >= in not_in
            isnull notnull contains startswith between (in/not_in take a list, between takes
            [low, high], isnull/notnull take no value, contains takes a regular expression).
        frame: the frame to filter ("df" is the table).
        save_as: a name to save the result under, for later calls.
    """
    if not conditions or len(conditions) > MAX_CONDITIONS:
        raise ToolArgError(f"conditions must hold 1 to {MAX_CONDITIONS} conditions")
    frames.check_name(save_as)
    df = frames.get(frame)
    mask = pd.Series(True, index=df.index)
    for cond in conditions:
        mask &= _condition_mask(df, cond, frame)
    out = df[mask]
    frames.save(save_as, out)
    return table_result(out)


@tool("groupby_agg")
def groupby_agg(
    frames: Frames,
    by: list[str],
    column: str,
    agg: Agg,
    frame: str = "df",
    save_as: str | None = None,
) -> Result:
    """Group rows by one or more columns and aggregate another column per group.

    Args:
        by: the columns to group by.
        column: the column to aggregate.
        agg: one of count sum mean median min max std nunique.
        frame: the frame to group ("df" is the table).
        save_as: a name to save the grouped table under, for later calls.
    """
    if not by or len(by) > 8:
        raise ToolArgError("by must list 1 to 8 columns")
    frames.check_name(save_as)
    df = frames.get(frame)
    for name in by:
        _column(df, name, frame)
    series = _column(df, column, frame)
    if agg in ("sum", "mean", "median", "std"):
        _numeric(series, column)
    grouped = df.groupby(list(by), dropna=True, observed=True, sort=True)[column].agg(agg)
    out = grouped.rename(f"{agg}_{column}").reset_index()
    frames.save(save_as, out)
    return table_result(out)


@tool("sort_top")
def sort_top(
    frames: Frames,
    column: str,
    k: int = 10,
    ascending: bool = False,
    frame: str = "df",
    save_as: str | None = None,
) -> Result:
    """The k rows with the largest (or, ascending, smallest) values of a column.

    Args:
        column: the column to sort by.
        k: how many rows, 1 to 1000.
        ascending: smallest first instead of largest first.
        frame: the frame to sort ("df" is the table).
        save_as: a name to save the result under, for later calls.
    """
    _between("k", k, 1, MAX_K)
    frames.check_name(save_as)
    df = frames.get(frame)
    _column(df, column, frame)
    out = df.sort_values(column, ascending=ascending, kind="mergesort", na_position="last")
    out = out.head(k)
    frames.save(save_as, out)
    return table_result(out)


@tool("correlation")
def correlation(
    frames: Frames, a: str, b: str, method: CorrMethod = "pearson", frame: str = "df"
) -> Result:
    """The correlation of two numeric columns (rows with a missing value left out).

    Args:
        a: the first column.
        b: the second column.
        method: pearson or spearman.
        frame: the frame to read ("df" is the table).
    """
    df = frames.get(frame)
    x = _numeric(_column(df, a, frame), a)
    y = _numeric(_column(df, b, frame), b)
    if method == "spearman":  # ranks, then Pearson: the same as scipy's, without scipy
        both = pd.concat([x, y], axis=1).dropna()
        x, y = both.iloc[:, 0].rank(), both.iloc[:, 1].rank()
    return value_result(float(x.corr(y)))


@tool("crosstab")
def crosstab(frames: Frames, a: str, b: str, frame: str = "df") -> Result:
    """Count rows for each pair of values of two columns (rows: a's values, columns: b's).

    Args:
        a: the column whose values become rows.
        b: the column whose values become columns.
        frame: the frame to read ("df" is the table).
    """
    df = frames.get(frame)
    table = pd.crosstab(_column(df, a, frame), _column(df, b, frame))
    table.columns = [str(c) for c in table.columns]
    return table_result(table, index=True)


@tool("quantile")
def quantile(frames: Frames, column: str, q: float, frame: str = "df") -> Result:
    """The q-quantile of a numeric column (q=0.5 is the median).

    Args:
        column: the column.
        q: the quantile, between 0 and 1.
        frame: the frame to read ("df" is the table).
    """
    if not 0.0 <= q <= 1.0:
        raise ToolArgError("q must be between 0 and 1")
    series = _numeric(_column(frames.get(frame), column, frame), column)
    return value_result(series.quantile(q))


@tool("compute")
def compute(
    frames: Frames,
    expression: str,
    frame: str = "df",
    save_as: str | None = None,
    column: str = "value",
) -> Result:
    """Evaluate one arithmetic or comparison expression over columns.

    Names are columns (use col("odd name") for names that are not identifiers); the
    functions are abs round log log10 exp sqrt and the aggregates mean sum min max median
    std count nunique.  A per-row result can be saved as a new frame with the value as a
    new column; an aggregate gives one value, e.g. mean(price) / mean(carat).

    Args:
        expression: the expression, e.g. price / carat or (tip / total_bill) > 0.2.
        frame: the frame to read ("df" is the table).
        save_as: a name to save the frame with the new column under.
        column: the new column's name when saving.
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolArgError(f"expression is longer than {MAX_EXPRESSION_CHARS} characters")
    frames.check_name(save_as)
    df = frames.get(frame)
    tree = parse_expression(expression)
    value = _Evaluator(df, frame).eval(tree.body)
    if isinstance(value, pd.Series):
        out = df.assign(**{column: value})
        frames.save(save_as, out)
        return table_result(value.to_frame(column))
    if save_as is not None:
        raise ToolArgError("save_as needs a per-row expression; this one gives one value")
    return value_result(value)


# -- compute: an allow-listed expression language --------------------------------------------

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_ELEMENTWISE: dict[str, Callable[..., Any]] = {
    "abs": lambda x: abs(x),
    "log": lambda x: np.log(x),
    "log10": lambda x: np.log10(x),
    "exp": lambda x: np.exp(x),
    "sqrt": lambda x: np.sqrt(x),
}
_AGGREGATES = ("mean", "sum", "min", "max", "median", "std", "count", "nunique")
FUNCTIONS = (*_ELEMENTWISE, "round", "col", *_AGGREGATES)
_ALLOWED_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.And,
    ast.Or,
    ast.Not,
    ast.USub,
    ast.UAdd,
    *_BINARY,
    *_COMPARE,
)


def parse_expression(expression: str) -> ast.Expression:
    """Parse and check ``expression`` against the allow-list; ``ToolArgError`` otherwise."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ToolArgError(f"expression does not parse: {exc.msg}") from exc
    nodes = list(ast.walk(tree))
    for node in nodes:  # the kinds of node first: a lambda is refused as a lambda, not a call
        if not isinstance(node, _ALLOWED_NODES):
            raise ToolArgError(f"{type(node).__name__} is not allowed in an expression")
    for node in nodes:
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                called = ast.unparse(node.func)
                raise ToolArgError(
                    f"calling {quote(called)} is not allowed (functions: {' '.join(FUNCTIONS)})"
                )
            if node.keywords:
                raise ToolArgError("keyword arguments are not allowed in an expression")
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float | str | bool):
            raise ToolArgError(f"constant {node.value!r} is not allowed")
        if isinstance(node, ast.Name) and node.id.startswith("__"):
            raise ToolArgError(f"name {quote(node.id)} is not allowed")
    return tree


class _Evaluator:
    def __init__(self, df: pd.DataFrame, frame: str) -> None:
        self.df = df
        self.frame = frame

    def eval(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return _column(self.df, node.id, self.frame)
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](self.eval(node.left), self.eval(node.right))
        if isinstance(node, ast.UnaryOp):
            value = self.eval(node.operand)
            if isinstance(node.op, ast.Not):
                return ~value if isinstance(value, pd.Series) else not value
            return -value if isinstance(node.op, ast.USub) else +value
        if isinstance(node, ast.BoolOp):
            values = [self.eval(v) for v in node.values]
            out = values[0]
            for v in values[1:]:
                series = isinstance(out, pd.Series) or isinstance(v, pd.Series)
                if isinstance(node.op, ast.And):
                    out = (out & v) if series else (out and v)
                else:
                    out = (out | v) if series else (out or v)
            return out
        if isinstance(node, ast.Compare):
            left = self.eval(node.left)
            result: Any = None
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = self.eval(right_node)
                part = _COMPARE[type(op)](left, right)
                result = part if result is None else (result & part)
                left = right
            return result
        if isinstance(node, ast.Call):
            return self._call(node)
        raise ToolArgError(f"{type(node).__name__} is not allowed in an expression")

    def _call(self, node: ast.Call) -> Any:
        assert isinstance(node.func, ast.Name)
        name = node.func.id
        if name == "col":
            if len(node.args) != 1 or not isinstance(node.args[0], ast.Constant):
                raise ToolArgError('col() takes one column name in quotes, e.g. col("a b")')
            return _column(self.df, str(node.args[0].value), self.frame)
        args = [self.eval(a) for a in node.args]
        if name == "round":
            if len(args) not in (1, 2) or (len(args) == 2 and not isinstance(args[1], int)):
                raise ToolArgError("round(x) or round(x, digits) with whole digits")
            digits = int(args[1]) if len(args) == 2 else 0
            _between("round digits", digits, -10, 15)
            x = args[0]
            return x.round(digits) if isinstance(x, pd.Series) else round(x, digits)
        if len(args) != 1:
            raise ToolArgError(f"{name}() takes one argument")
        x = args[0]
        if name in _ELEMENTWISE:
            return _ELEMENTWISE[name](x)
        if not isinstance(x, pd.Series):
            raise ToolArgError(f"{name}() aggregates a column, not a single value")
        return getattr(x, name)()


# -- schemas and the entry point -------------------------------------------------------------


def _doc(fn: ToolFn) -> tuple[str, dict[str, str]]:
    """The summary paragraph and each argument's description from a Google-style docstring."""
    text = inspect.getdoc(fn) or ""
    summary, _, rest = text.partition("\n\n")
    args: dict[str, str] = {}
    current = None
    in_args = False
    for line in rest.splitlines():
        if line.strip() == "Args:":
            in_args = True
            continue
        if not in_args:
            summary += "\n\n" + line if line.strip() else ""
            continue
        match = re.match(r"^ {4}(\w+): (.*)$", line)
        if match:
            current = match.group(1)
            args[current] = match.group(2).strip()
        elif current and line.startswith("        "):
            args[current] += " " + line.strip()
    return " ".join(summary.split()), args


def _json_type(hint: Any) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if hint is str:
        return {"type": "string"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is Any:
        return {}
    if origin is Literal:
        return {"type": "string", "enum": list(typing.get_args(hint))}
    if origin is list:
        (item,) = typing.get_args(hint)
        return {"type": "array", "items": _json_type(item)}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) == 1:
            return _json_type(options[0])
        return {"anyOf": [_json_type(o) for o in options]}
    if typing.is_typeddict(hint):
        hints = typing.get_type_hints(hint)
        return {
            "type": "object",
            "properties": {k: _json_type(v) for k, v in hints.items()},
            "required": [k for k in hints if k != "value"],
        }
    raise TypeError(f"no JSON schema for {hint!r}")


def tool_schema(name: str) -> dict[str, Any]:
    """``{name, description, parameters}`` for one tool, from its signature and docstring."""
    fn = TOOLS[name]
    hints = typing.get_type_hints(fn)
    summary, docs = _doc(fn)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for pname, param in list(inspect.signature(fn).parameters.items())[1:]:
        prop = _json_type(hints[pname])
        if pname in docs:
            prop["description"] = docs[pname]
        if param.default is inspect.Parameter.empty:
            required.append(pname)
        elif param.default is not None:
            prop["default"] = param.default
        properties[pname] = prop
    parameters = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    return {"name": name, "description": summary, "parameters": parameters}


TOOL_SCHEMAS: dict[str, dict[str, Any]] = {name: tool_schema(name) for name in TOOLS}


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    if "anyOf" in schema:
        return any(_type_ok(value, s) for s in schema["anyOf"])
    kind = schema.get("type")
    if kind is None:
        return True
    if kind == "string":
        return isinstance(value, str) and ("enum" not in schema or value in schema["enum"])
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if kind == "array":
        return isinstance(value, list) and all(_type_ok(v, schema["items"]) for v in value)
    if kind == "object":
        return isinstance(value, dict)
    return False


def check_args(name: str, args: Any) -> dict[str, Any]:
    """The arguments if they match the tool's schema; ``ToolArgError`` (one line) otherwise."""
    if name not in TOOL_SCHEMAS:
        close = difflib.get_close_matches(str(name), list(TOOLS), n=1)
        hint = f"; did you mean {quote(close[0])}?" if close else ""
        raise ToolArgError(f"unknown tool {quote(name)}{hint}")
    if not isinstance(args, dict):
        raise ToolArgError(f"{name}: arguments must be a JSON object")
    params = TOOL_SCHEMAS[name]["parameters"]
    for key in args:
        if key not in params["properties"]:
            raise ToolArgError(f"{name}: unknown argument {quote(key)}")
    for key in params["required"]:
        if key not in args:
            raise ToolArgError(f"{name}: missing argument {quote(key)}")
    for key, value in args.items():
        prop = params["properties"][key]
        if value is None and key not in params["required"] and "default" not in prop:
            continue  # an optional argument given as null
        if "enum" in prop and isinstance(value, str) and value not in prop["enum"]:
            allowed = " ".join(prop["enum"])
            raise ToolArgError(f"{key} {quote(value)} is not allowed (allowed: {allowed})")
        if not _type_ok(value, prop):
            want = prop.get("type") or " or ".join(s.get("type", "?") for s in prop["anyOf"])
            raise ToolArgError(f"{name}: {key} must be {want}, not {type(value).__name__}")
    return dict(args)


def run_tool(frames: Frames, name: str, args: Any) -> Result:
    """Validate and run one tool call; every failure is an error result, never an exception."""
    try:
        checked = check_args(name, args)
        return TOOLS[name](frames, **checked)
    except ToolArgError as exc:
        return render.error_result(str(exc), "invalid_args")
    except MemoryError:
        return render.error_result("out of memory", "memory")
    except RecursionError:
        return render.error_result("expression too deeply nested", "invalid_args")
    except Exception as exc:  # a pandas failure on valid arguments: the model reads why
        return render.error_result(f"{type(exc).__name__}: {exc}", "exception")


def output_frame(name: str, args: dict[str, Any]) -> str | None:
    """The frame a call saves, if any."""
    saved = args.get("save_as") if isinstance(args, dict) else None
    return str(saved) if saved else None


def input_frame(args: dict[str, Any]) -> str:
    """The frame a call reads."""
    frame = args.get("frame", "df") if isinstance(args, dict) else "df"
    return str(frame or "df")
