"""Exports of a run: samples (with grades, call metadata, labels) and analysis tables.

Formats: JSONL, CSV, zstd Parquet (streamed in row groups) and a Hugging Face
``datasets.Dataset`` read from that Parquet (``save_to_disk``, or ``push_to_hub`` when
online).  Exports never contain API keys or request headers: rows are built from an explicit list of columns (the stored request
and what the adapter sent are left out), payload keys that name secrets are
dropped, and any value of a key-holding environment variable is redacted.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import orjson

from workbench.core.analysis.metrics import outcome_label, sample_kind
from workbench.core.engine import request_sql, response_text_sql
from workbench.core.errors import ConfigError, InputError
from workbench.core.grading.grader import verdict
from workbench.core.redact import Redactor, redact_text
from workbench.core.store import Store

ExportFormat = Literal["jsonl", "csv", "parquet", "dataset"]
FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet", "dataset")

#: sample columns in export order; the call's request, headers and sent params are never read
SAMPLE_COLUMNS = (
    "run_id", "sample_id", "stage", "item_key", "problem_id", "sample_index", "parent_id",
    "role", "model", "status", "question", "gold", "output", "extracted", "correct",
    "grade_status", "grader", "grade_method", "continuation", "finish_reason", "input_tokens",
    "output_tokens", "cost_usd", "latency_ms", "cache_hit", "labels", "sample_kind", "outcome",
    "payload",
)  # fmt: skip


#: the call's text, added by archives (``call_text=True``): the request JSON (what was
#: asked; never headers or keys) and the response text, redacted like every other column
CALL_TEXT_COLUMNS = ("request", "response_text")


def iter_sample_rows(
    store: Store, run_id: int, *, stage: str | None = None, call_text: bool = False
) -> Iterator[dict[str, Any]]:
    """One flat dict per sample of the run (newest grade), in sample order, redacted.

    ``call_text`` adds ``CALL_TEXT_COLUMNS`` (an archive keeps what the calls said).
    """
    run_kind = str(store.get_run(run_id)["kind"])  # a one-line StoreError for an unknown run
    sql = """
        SELECT s.run_id, s.id AS sample_id, s.stage, s.item_key, s.problem_id, s.sample_index,
               s.parent_id, s.role, s.model, s.status, p.question, g.gold, s.output,
               g.extracted, g.correct, g.status AS grade_status, g.grader,
               g.method AS grade_method, c.continuation, c.finish_reason, c.input_tokens,
               c.output_tokens, c.cost_usd, c.latency_ms, c.cache_hit,
               (SELECT json_group_array(label) FROM labels l WHERE l.sample_id = s.id) AS labels,
               s.payload {call_text}
        FROM samples s
        LEFT JOIN problems p ON p.id = s.problem_id
        LEFT JOIN calls c ON c.id = s.call_id
        LEFT JOIN grades g ON g.id = (
            SELECT id FROM grades WHERE sample_id = s.id ORDER BY id DESC LIMIT 1)
        WHERE s.run_id = ? {stage}
        ORDER BY s.id
    """.format(
        stage="AND s.stage = ?" if stage else "",
        call_text=(
            f", {request_sql('c')} AS request, {response_text_sql('c')} AS response_text"
            if call_text
            else ""
        ),
    )
    params: list[Any] = [run_id, stage] if stage else [run_id]
    redactor = Redactor.from_env()
    text = redactor.text
    cur = store.conn.execute(sql, params)
    cols = [c[0] for c in cur.description]
    json_columns = {"payload", "labels"}
    for raw in cur:
        # The columns are the fixed list above (none names a secret), so only their text
        # needs redacting: one test over the row's joined text clears most rows at once.
        clean = redactor.is_clean("\x00".join(v for v in raw if type(v) is str))
        if clean:
            row = dict(zip(cols, raw, strict=True))
        else:
            row = {
                c: v if c in json_columns or type(v) is not str else text(v)
                for c, v in zip(cols, raw, strict=True)
            }
        row["payload"] = redactor.stored_json(row["payload"], {}, clean=clean)
        labels = row["labels"]  # most samples have none: skip parsing "[]"
        row["labels"] = [] if labels == "[]" else redactor.stored_json(labels, [], clean=clean)
        row["correct"] = None if row["correct"] is None else bool(row["correct"])
        row["cache_hit"] = None if row["cache_hit"] is None else bool(row["cache_hit"])
        # what the sample is and what happened, as the metrics layer (and the traces) say
        kind = sample_kind(row["stage"], row["payload"], run_kind=run_kind)
        row["sample_kind"] = kind.value
        row["outcome"] = (
            outcome_label(
                kind,
                verdict(row["correct"], row["grade_status"]),
                row["payload"].get("recovery_kind"),
                row["payload"],
            ).text
            if row["grade_status"] is not None
            else None
        )
        yield row


def write_jsonl(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Write rows as JSON lines; returns the number written."""
    n = 0  # orjson: a million rows, and the encoder is most of an export's time
    options = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
    with _open_out(path, binary=True) as fh:
        for row in rows:
            fh.write(orjson.dumps(row, default=str, option=options))
            n += 1
    return n


def write_csv(
    rows: Iterable[Mapping[str, Any]], path: str | Path, *, columns: Iterable[str] | None = None
) -> int:
    """Write rows as CSV; nested values (payload, labels) become JSON text in their cell."""
    rows = list(rows) if columns is None else rows
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))  # type: ignore[union-attr]
    cols = list(columns)
    n = 0
    with _open_out(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _cell(row.get(c)) for c in cols})
            n += 1
    return n


def _cell(value: Any) -> Any:
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "" if value is None else value


def _open_out(path: str | Path, newline: str | None = None, *, binary: bool = False) -> Any:
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p}: is a directory; give a file path")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        if binary:
            return p.open("wb")
        return p.open("w", encoding="utf-8", newline=newline)
    except OSError as exc:
        raise InputError(f"{p}: cannot write: {exc.strerror or exc}") from None


#: Arrow types of the sample columns; the rest are text (payload and labels as JSON text,
#: so every row has one schema)
_INT_COLUMNS = frozenset(
    {"run_id", "sample_id", "sample_index", "parent_id", "input_tokens", "output_tokens"}
)
_FLOAT_COLUMNS = frozenset({"cost_usd", "latency_ms"})
_BOOL_COLUMNS = frozenset({"correct", "cache_hit"})
PARQUET_BATCH_ROWS = 2_000  # one row group each; memory stays flat in the run's size
#: long text columns get no min/max statistics (no reader filters on them; they only make
#: the footer bigger)
_NO_STATISTICS = frozenset(
    {"question", "gold", "output", "extracted", "payload", "labels", "request", "response_text",
     "error"}
)  # fmt: skip


def _arrow_schema(columns: tuple[str, ...] = SAMPLE_COLUMNS) -> Any:
    import pyarrow as pa  # heavy; only for these exports

    def arrow_type(column: str) -> Any:
        if column in _INT_COLUMNS:
            return pa.int64()
        if column in _FLOAT_COLUMNS:
            return pa.float64()
        if column in _BOOL_COLUMNS:
            return pa.bool_()
        return pa.string()

    return pa.schema([(c, arrow_type(c)) for c in columns])


def _arrow_cell(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in ("payload", "labels"):
        return json.dumps(value, ensure_ascii=False)
    if column in _INT_COLUMNS:
        return int(value)
    if column in _FLOAT_COLUMNS:
        return float(value)
    if column in _BOOL_COLUMNS:
        return bool(value)
    return value if type(value) is str else str(value)


def write_parquet(
    rows: Iterable[Mapping[str, Any]],
    path: str | Path,
    *,
    columns: tuple[str, ...] = SAMPLE_COLUMNS,
    types: Mapping[str, str] | None = None,
) -> int:
    """Stream rows to zstd Parquet, one row group per 2,000 rows; returns rows written.

    ``columns``: the sample columns by default; ``types`` maps other columns to
    "int" / "float" / "bool" (text otherwise), for the archive's calls file.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema(columns) if types is None else _typed_schema(columns, types)
    p = Path(path)
    _open_out(p).close()  # the same one-line errors as the other formats
    n = 0
    cell = _arrow_cell if types is None else _typed_cell(types)
    batch: list[Mapping[str, Any]] = []
    stats = [c for c in columns if c not in _NO_STATISTICS]
    with pq.ParquetWriter(str(p), schema, compression="zstd", write_statistics=stats) as writer:

        def column(c: str, field: Any) -> Any:
            # a column at a time, converted by Arrow (C): about 3x the per-cell loop; a
            # value Arrow will not take as the column's type goes through ``cell``
            values = [row.get(c) for row in batch]
            if c in ("payload", "labels") and types is None:
                values = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
            elif pa.types.is_boolean(field.type):
                values = [None if v is None else bool(v) for v in values]
            try:
                return pa.array(values, type=field.type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                return pa.array([cell(c, row.get(c)) for row in batch], type=field.type)

        def flush() -> None:
            arrays = [column(c, schema.field(c)) for c in columns]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            batch.clear()

        for row in rows:
            batch.append(row)
            n += 1
            if len(batch) == PARQUET_BATCH_ROWS:
                flush()
        if batch or n == 0:
            flush()
    return n


def _typed_schema(columns: tuple[str, ...], types: Mapping[str, str]) -> Any:
    import pyarrow as pa

    arrow = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
    return pa.schema([(c, arrow.get(types.get(c, ""), pa.string())) for c in columns])


def _typed_cell(types: Mapping[str, str]) -> Any:
    convert = {"int": int, "float": float, "bool": bool}

    def cell(column: str, value: Any) -> Any:
        if value is None:
            return None
        kind = convert.get(types.get(column, ""))
        if kind is not None:
            return kind(value)
        return value if type(value) is str else str(value)

    return cell


def to_dataset(rows: Iterable[Mapping[str, Any]], workdir: str | Path) -> Any:
    """A ``datasets.Dataset`` read from Parquet streamed into ``workdir`` (never whole lists)."""
    import datasets  # heavy; only for this export

    parquet = Path(workdir) / "samples.parquet"
    write_parquet(rows, parquet)
    return datasets.Dataset.from_parquet(str(parquet), cache_dir=str(Path(workdir) / "cache"))


def save_dataset(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """``save_to_disk`` at ``path`` (a directory); returns the number of rows."""
    with tempfile.TemporaryDirectory(prefix="workbench-dataset-") as work:
        ds = to_dataset(rows, work)
        try:
            ds.save_to_disk(str(path))
        except OSError as exc:
            raise InputError(f"{path}: cannot save dataset: {exc.strerror or exc}") from None
        return len(ds)


def push_dataset(rows: Iterable[Mapping[str, Any]], repo_id: str, *, private: bool = True) -> int:
    """``push_to_hub`` (token from ``HF_TOKEN``); a one-line error when offline."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise ConfigError(f"push to {repo_id}: offline (HF_HUB_OFFLINE is set); use --out instead")
    with tempfile.TemporaryDirectory(prefix="workbench-dataset-") as work:
        return _push(to_dataset(rows, work), repo_id, private=private)


def _push(ds: Any, repo_id: str, *, private: bool) -> int:
    try:
        ds.push_to_hub(repo_id, private=private, token=os.environ.get("HF_TOKEN"))
    except Exception as exc:  # the hub client raises many types; all mean "not pushed"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"push to {repo_id}: cannot reach the Hugging Face Hub (offline, or HF_TOKEN "
            f"missing?): {redact_text(reason)}"
        ) from None
    return len(ds)


def export_samples(
    store: Store,
    run_id: int,
    fmt: ExportFormat,
    out: str | Path,
    *,
    stage: str | None = None,
) -> int:
    """Export a run's samples to ``out`` in ``fmt``; returns rows written."""
    rows = iter_sample_rows(store, run_id, stage=stage)
    if fmt == "jsonl":
        return write_jsonl(rows, out)
    if fmt == "csv":
        return write_csv(rows, out, columns=SAMPLE_COLUMNS)
    if fmt == "parquet":
        return write_parquet(rows, out)
    if fmt == "dataset":
        return save_dataset(rows, out)
    raise InputError(f"unknown export format '{fmt}' (choose from {', '.join(FORMATS)})")


def export_tables(
    tables: Mapping[str, Iterable[Mapping[str, Any]]], fmt: ExportFormat, out: str | Path
) -> int:
    """Analysis tables as one file, each row tagged with its ``table`` name."""
    rows = [{"table": name, **row} for name, rs in tables.items() for row in rs]
    if fmt == "jsonl":
        return write_jsonl(rows, out)
    if fmt == "csv":
        return write_csv(rows, out)
    raise InputError(f"analysis tables export as jsonl or csv, not '{fmt}'")
