"""CSV tables: read with detection, profile, and store by the sha256 of their bytes.

A table's identity is the hash of its file's bytes: importing the same bytes
again is a no-op, changed bytes make a new table.  Bad input (missing file,
too large, binary, unparseable line, no rows or columns) is one ``InputError``
line naming the file, raised before anything is written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import pandas as pd

from workbench.core.csv_agent.render import json_safe
from workbench.core.errors import InputError
from workbench.core.store import Store, dumps, loads, now_iso

DEFAULT_MAX_TABLE_MB = 200
ENCODINGS = ("utf-8", "utf-8-sig", "latin-1")
DELIMITERS = ",;\t|"
HEAD_ROWS = 5
TOP_VALUES = 5
_SNIFF_BYTES = 64_000


class ColumnProfile(TypedDict):
    """What a model (and a person) is told about one column before exploring."""

    dtype: str
    nulls: int
    distinct: int
    min: Any  # numeric columns only, else None
    max: Any
    top: list[list[Any]]  # [value, count] pairs for non-numeric columns


class TableProfile(TypedDict):
    columns: dict[str, ColumnProfile]
    head: list[dict[str, Any]]


@dataclass(frozen=True)
class ParsedTable:
    """A CSV read into pandas, with how it was read."""

    frame: pd.DataFrame
    sha256: str
    encoding: str
    delimiter: str
    size_bytes: int
    renamed: tuple[tuple[str, str], ...]  # (original, new) for duplicate column names


@dataclass(frozen=True)
class TableRecord:
    """One stored table."""

    id: int
    sha256: str
    name: str
    path: str
    encoding: str
    delimiter: str
    n_rows: int
    n_columns: int
    columns: tuple[str, ...]
    dtypes: dict[str, str]
    profile: TableProfile
    size_bytes: int


@dataclass(frozen=True)
class TableImport:
    """What ``import_table`` did."""

    table: TableRecord
    created: bool  # False: the same bytes were already stored
    warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        t = self.table
        verb = "imported" if self.created else "already stored"
        return (
            f"table {t.name}: {verb} ({t.n_rows:,} rows x {t.n_columns} columns, "
            f"{t.encoding}, sha256 {t.sha256[:12]})"
        )


def read_table(path: str | Path, *, max_table_mb: float = DEFAULT_MAX_TABLE_MB) -> ParsedTable:
    """Read and check a CSV file; ``InputError`` naming the file on bad input."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    size = p.stat().st_size
    if size > max_table_mb * 1024 * 1024:
        raise InputError(
            f"{p}: {size / 1024 / 1024:,.1f} MB is over max_table_mb ({max_table_mb:g} MB)"
        )
    data = p.read_bytes()
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise InputError(f"{p}: binary content, not a text CSV")
    text, encoding = _decode(data)
    delimiter = _sniff_delimiter(text[:_SNIFF_BYTES])
    if not text.strip():
        raise InputError(f"{p}: empty file (zero rows and zero columns)")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, on_bad_lines="error")
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{p}: no columns ({exc})") from exc
    except pd.errors.ParserError as exc:
        raise InputError(f"{p}: {_parser_reason(exc)}") from exc
    except (ValueError, UnicodeError) as exc:
        raise InputError(f"{p}: cannot parse as CSV ({str(exc).splitlines()[0]})") from exc
    if frame.shape[1] == 0:
        raise InputError(f"{p}: zero columns")
    if frame.shape[0] == 0:
        raise InputError(f"{p}: zero rows (a header only)")
    try:  # the header as written, whatever the line endings, to name renamed duplicates
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    except csv.Error:
        header = [str(c) for c in frame.columns]
    renamed = tuple(
        (old, str(new)) for old, new in zip(header, frame.columns, strict=False) if old != new
    )
    return ParsedTable(
        frame=frame,
        sha256=hashlib.sha256(data).hexdigest(),
        encoding=encoding,
        delimiter=delimiter,
        size_bytes=size,
        renamed=renamed,
    )


def _decode(data: bytes) -> tuple[str, str]:
    """utf-8, utf-8-sig (a byte-order mark), then latin-1 (which never fails)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "strict"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _sniff_delimiter(sample: str) -> str:
    lines = sample.splitlines()[:50]
    if len(lines) > 1:
        lines = lines[:-1]  # the sample may cut the last line short
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


_LINE = re.compile(r"line (\d+)")


def _parser_reason(exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    match = _LINE.search(first)
    if match:
        return f"line {match.group(1)}: cannot parse ({first.split('. ', 1)[-1]})"
    return f"cannot parse ({first})"


def profile_frame(frame: pd.DataFrame) -> TableProfile:
    """Per column dtype, nulls, distinct values, min/max or top values; a head sample."""
    columns: dict[str, ColumnProfile] = {}
    for name in frame.columns:
        series = frame[name]
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        top: list[list[Any]] = []
        if not numeric:
            counts = series.value_counts(dropna=True).head(TOP_VALUES)
            top = [[json_safe(k), int(v)] for k, v in counts.items()]
        columns[str(name)] = {
            "dtype": str(series.dtype),
            "nulls": int(series.isna().sum()),
            "distinct": int(series.nunique(dropna=True)),
            "min": json_safe(series.min()) if numeric and series.notna().any() else None,
            "max": json_safe(series.max()) if numeric and series.notna().any() else None,
            "top": top,
        }
    head = [
        {str(k): json_safe(v) for k, v in row.items()}
        for row in frame.head(HEAD_ROWS).to_dict(orient="records")
    ]
    return {"columns": columns, "head": head}


def import_table(
    store: Store,
    path: str | Path,
    *,
    name: str | None = None,
    max_table_mb: float = DEFAULT_MAX_TABLE_MB,
) -> TableImport:
    """Read, profile and store a table (a no-op for bytes already stored)."""
    parsed = read_table(path, max_table_mb=max_table_mb)
    warnings: tuple[str, ...] = ()
    if parsed.renamed:
        pairs = ", ".join(f"{old!r} -> {new!r}" for old, new in parsed.renamed)
        warnings = (f"{path}: duplicate column names renamed: {pairs}",)
    existing = get_table(store, parsed.sha256)
    if existing is not None:
        return TableImport(existing, created=False, warnings=warnings)
    frame = parsed.frame
    columns = [str(c) for c in frame.columns]
    dtypes = {str(c): str(t) for c, t in frame.dtypes.items()}
    profile = profile_frame(frame)
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO tables(sha256, name, path, encoding, delimiter, n_rows, n_columns,"
            " columns, dtypes, profile, size_bytes, imported_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                parsed.sha256,
                name or Path(path).stem,
                str(Path(path).resolve()),
                parsed.encoding,
                parsed.delimiter,
                int(frame.shape[0]),
                int(frame.shape[1]),
                dumps(columns),
                dumps(dtypes),
                dumps(profile),
                parsed.size_bytes,
                now_iso(),
            ),
        )
    stored = get_table(store, parsed.sha256)
    assert stored is not None
    return TableImport(stored, created=True, warnings=warnings)


def get_table(store: Store, ref: str | int) -> TableRecord | None:
    """A table by id, sha256 (or a unique prefix of at least 8 characters), or name."""
    conn = store.conn
    if isinstance(ref, int):
        row = conn.execute("SELECT * FROM tables WHERE id = ?", (ref,)).fetchone()
    else:
        row = conn.execute("SELECT * FROM tables WHERE sha256 = ?", (ref,)).fetchone()
        if row is None and len(ref) >= 8 and all(c in "0123456789abcdef" for c in ref):
            rows = conn.execute(
                "SELECT * FROM tables WHERE sha256 LIKE ? LIMIT 2", (ref + "%",)
            ).fetchall()
            row = rows[0] if len(rows) == 1 else None
        if row is None:
            row = conn.execute(
                "SELECT * FROM tables WHERE name = ? ORDER BY id DESC LIMIT 1", (ref,)
            ).fetchone()
    if row is None:
        return None
    names = [d[0] for d in conn.execute("SELECT * FROM tables LIMIT 0").description]
    return _record(dict(zip(names, row, strict=True)))


def list_tables(store: Store) -> list[TableRecord]:
    cursor = store.conn.execute("SELECT * FROM tables ORDER BY id")
    names = [d[0] for d in cursor.description]
    return [_record(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]


def _record(row: Mapping[str, Any]) -> TableRecord:
    return TableRecord(
        id=int(row["id"]),
        sha256=str(row["sha256"]),
        name=str(row["name"]),
        path=str(row["path"]),
        encoding=str(row["encoding"]),
        delimiter=str(row["delimiter"]),
        n_rows=int(row["n_rows"]),
        n_columns=int(row["n_columns"]),
        columns=tuple(loads(row["columns"], [])),
        dtypes=dict(loads(row["dtypes"], {})),
        profile=loads(row["profile"], {}),
        size_bytes=int(row["size_bytes"]),
    )


def bundled_tables() -> dict[str, Path]:
    """The small tables shipped in ``workbench/data/tables`` (tips, penguins)."""
    folder = Path(__file__).resolve().parents[2] / "data" / "tables"
    return {p.stem: p for p in sorted(folder.glob("*.csv"))}
