"""Import problems from local files (JSONL / JSON / CSV / Parquet) or the Hugging Face hub.

Rows are read with their line numbers, mapped through a schema adapter
(:mod:`workbench.core.library.formats`), stepified, and written in one
transaction.  Problem ids are ``<dataset id>/<native id or content hash>``, so
importing the same data again updates rows instead of duplicating them.  Bad
rows are reported (file, line, field) and skipped; the good rows land.
"""

from __future__ import annotations

import csv
import json
import os
import random
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from workbench.core.errors import InputError
from workbench.core.library import formats as formats
from workbench.core.library.steps import stepify
from workbench.core.store import Store, dumps, now_iso

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "data" / "samples"
SAMPLE_FILES = (("gsm8k-test-200.jsonl", "gsm8k"), ("math500-100.jsonl", "math"))
#: bundled sample sets by name (``workbench import --sample [NAME]``)
SAMPLE_SETS: dict[str, tuple[tuple[str, str], ...]] = {
    "default": SAMPLE_FILES,
    "bbmistake": (("bbmistake-100.jsonl", "bbmistake"),),  # labelled traces, 20 per task
}
SAMPLE_MODEL_SOLUTIONS = "gsm8k-model-solutions-200.jsonl"
FILE_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
                ".parquet": "parquet", ".pq": "parquet"}  # fmt: skip
HUB_PROBE_TIMEOUT_S = 5.0
MAX_LISTED_ERRORS = 50  # a huge file of bad rows reports the first ones and counts the rest


@dataclass(frozen=True)
class RowError:
    """One skipped row: where it is and which field is wrong."""

    origin: str
    line: int  # 1-based line in a text file; row number for parquet / hub data
    field: str
    message: str
    unit: str = "line"

    def __str__(self) -> str:
        return f"{self.origin}:{self.unit} {self.line}: {self.field}: {self.message}"


@dataclass
class ImportReport:
    """What an import did."""

    dataset_id: str
    origin: str
    format: str
    n_rows: int = 0
    n_added: int = 0
    n_updated: int = 0
    n_skipped: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def n_imported(self) -> int:
        return self.n_added + self.n_updated

    def summary(self) -> str:
        return (
            f"{self.dataset_id}: {self.n_added} added, {self.n_updated} already present, "
            f"{self.n_skipped} bad rows skipped (of {self.n_rows} rows; format {self.format})"
        )

    def __str__(self) -> str:
        return self.summary()


# -- reading rows --------------------------------------------------------------


RawRows = Iterator[tuple[int, Mapping[str, Any] | None, str]]  # (line, row or None, error)


def _read_jsonl(path: Path) -> RawRows:
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, None, f"not valid JSON ({exc.msg})"
                continue
            if isinstance(row, dict):
                yield number, row, ""
            else:
                yield number, None, f"expected a JSON object, got {type(row).__name__}"


def _read_json(path: Path) -> RawRows:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    if isinstance(data, dict):  # {"data": [...]} / {"rows": [...]}
        data = next((v for v in data.values() if isinstance(v, list)), None)
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of objects")
    for number, row in enumerate(data, start=1):
        yield (number, row, "") if isinstance(row, dict) else (number, None, "not an object")


def _read_csv(path: Path) -> RawRows:
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.DictReader(fh)
        line = 1
        for row in reader:
            start, line = line + 1, reader.line_num
            if None in row:
                yield start, None, "more cells than header columns"
            else:
                yield start, row, ""


def _read_parquet(path: Path) -> RawRows:
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as exc:
        raise InputError(f"{path}: cannot read parquet ({exc})") from exc
    for number, row in enumerate(frame.to_dict(orient="records"), start=1):
        yield number, row, ""


READERS: dict[str, Callable[[Path], RawRows]] = {
    "jsonl": _read_jsonl,
    "json": _read_json,
    "csv": _read_csv,
    "parquet": _read_parquet,
}


def _hub_unreachable() -> str | None:
    """Why the hub cannot be reached (a quick probe), or None.

    Without it, ``load_dataset`` retries for half a minute before failing offline.
    """
    if os.environ.get("HF_HUB_OFFLINE") or os.environ.get("HF_DATASETS_OFFLINE"):
        return None  # offline mode: datasets serves its cache or fails fast itself
    url = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT_S).close()
    except OSError as exc:
        return f"cannot reach {host} ({exc.strerror or exc})"
    return None


def _hub_rows(name: str, config: str | None, split: str) -> RawRows:
    why = _hub_unreachable()
    if why is not None:
        raise InputError(
            f"{name}: {why}; offline? download the data as JSONL/CSV/Parquet and run "
            f"`workbench import PATH` (or set HF_HUB_OFFLINE=1 to use a cached copy)"
        )
    try:
        import datasets as hf

        data = hf.load_dataset(name, config, split=split)
    except Exception as exc:
        raise InputError(
            f"{name}: cannot load from the Hugging Face hub ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); if you are offline, "
            f"download the data as JSONL/CSV/Parquet and run `workbench import PATH`"
        ) from exc
    for number, row in enumerate(data, start=1):
        yield number, row, ""


# -- import ------------------------------------------------------------------------


def import_dataset(
    store: Store,
    source: str | Path,
    *,
    name: str | None = None,
    schema: str | None = None,
    mapping: Mapping[str, str] | None = None,
    file_format: str | None = None,
    config: str | None = None,
    split: str = "test",
    limit: int | None = None,
    seed: int = 0,
) -> ImportReport:
    """Import a local file or a hub dataset; see the module docstring (``import_path``
    also takes a folder)."""
    path = Path(source)
    if path.is_dir():
        raise InputError(f"{path}: a folder (import_path imports each of its data files)")
    if path.exists():
        fmt = file_format or FILE_FORMATS.get(path.suffix.lower())
        if fmt not in READERS:
            raise InputError(f"{path}: unknown file type; pass --format jsonl|json|csv|parquet")
        rows, origin, unit = (
            READERS[fmt](path),
            str(path),
            "line" if fmt in ("jsonl", "csv") else "row",
        )
        dataset_id = name or path.stem
        meta: dict[str, Any] = {"file_format": fmt}
        hub_split: str | None = None
    elif "/" in str(source) and not str(source).startswith((".", "/")) and not path.suffix:
        rows, origin, unit = _hub_rows(str(source), config, split), str(source), "row"
        dataset_id = name or f"{str(source).split('/')[-1]}-{split}"
        meta, hub_split = {"hub": str(source)}, split
    else:
        raise InputError(f"{source}: no such file (and not a hub dataset name like owner/name)")
    return _import_rows(
        store, rows, origin=origin, unit=unit, dataset_id=dataset_id, schema=schema,
        mapping=mapping, config=config, split=hub_split,
        limit=limit, seed=seed, meta=meta,
    )  # fmt: skip


def _import_rows(
    store: Store,
    rows: RawRows,
    *,
    origin: str,
    unit: str,
    dataset_id: str,
    schema: str | None,
    mapping: Mapping[str, str] | None,
    config: str | None,
    split: str | None,
    limit: int | None,
    seed: int,
    meta: dict[str, Any],
) -> ImportReport:
    if schema is not None and schema not in formats.FORMATS:
        raise InputError(f"unknown dataset format {schema!r} (known: {', '.join(formats.FORMATS)})")
    adapter = formats.mapped(mapping) if mapping else None
    report = ImportReport(dataset_id, origin, "mapped" if mapping else (schema or "auto"))
    records: list[formats.ProblemRecord] = []
    for line, row, problem in rows:
        report.n_rows += 1
        if row is not None and adapter is None:
            detected = schema or formats.detect_format(set(row))
            if detected is None:
                cols = ", ".join(sorted(row)[:8])
                raise InputError(
                    f"{origin}: cannot tell the dataset format from columns ({cols}); "
                    f"pass --format gsm8k|math|numina|ocw or --map question=COL answer=COL"
                )
            adapter, report.format = formats.ADAPTERS[detected], detected
        if row is None or adapter is None:
            _skip(report, RowError(origin, line, "row", problem, unit))
            continue
        try:
            records.append(adapter(row))
        except formats.RowProblem as exc:
            _skip(report, RowError(origin, line, exc.field, str(exc), unit))
    if limit is not None and limit < len(records):
        keep = sorted(random.Random(seed).sample(range(len(records)), limit))
        records = [records[i] for i in keep]
    _write(store, report, records, config=config, split=split, meta=meta)
    return report


def _skip(report: ImportReport, error: RowError) -> None:
    report.n_skipped += 1
    if len(report.errors) < MAX_LISTED_ERRORS:
        report.errors.append(error)


def _write(
    store: Store,
    report: ImportReport,
    records: Sequence[formats.ProblemRecord],
    *,
    config: str | None,
    split: str | None,
    meta: dict[str, Any],
) -> None:
    now = now_iso()
    ds = report.dataset_id
    seen: dict[str, formats.ProblemRecord] = {}
    for rec in records:  # duplicates inside one file collapse onto one id
        seen.setdefault(f"{ds}/{rec.native_id}", rec)
    values = []
    for pid, rec in seen.items():
        if rec.steps is not None:
            steps = list(rec.steps)  # a labelled trace: its step boundaries are the labels'
        else:
            steps = stepify(rec.solution, source=rec.source) if rec.solution else []
        values.append(
            (pid, ds, rec.source, rec.question, rec.solution, rec.answer, rec.subject, rec.level,
             dumps(steps), len(steps), dumps(rec.meta), now)
        )  # fmt: skip
    with store.transaction() as conn:
        existing = {r[0] for r in conn.execute("SELECT id FROM problems WHERE dataset_id=?", (ds,))}
        conn.execute(
            """
            INSERT INTO datasets (id, name, origin, format, config, split, n_problems, meta,
                                  imported_at)
            VALUES (?,?,?,?,?,?,0,?,?)
            ON CONFLICT (id) DO UPDATE SET origin=excluded.origin, format=excluded.format,
                config=excluded.config, split=excluded.split, meta=excluded.meta,
                imported_at=excluded.imported_at
            """,
            (ds, ds, report.origin, report.format, config, split, dumps(meta), now),
        )
        conn.executemany(
            """
            INSERT INTO problems (id, dataset_id, source, question, solution, answer, subject,
                                  level, steps, n_steps, meta, created_at)
            VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
            ON CONFLICT (id) DO UPDATE SET source=excluded.source, question=excluded.question,
                solution=excluded.solution, answer=excluded.answer, subject=excluded.subject,
                level=excluded.level, steps=excluded.steps, n_steps=excluded.n_steps,
                meta=excluded.meta
            """,
            values,
        )
        conn.execute(
            "UPDATE datasets SET n_problems=(SELECT COUNT(*) FROM problems WHERE dataset_id=?)"
            " WHERE id=?",
            (ds, ds),
        )
    report.n_updated = sum(1 for v in values if v[0] in existing)
    report.n_added = len(values) - report.n_updated


def import_path(store: Store, source: str | Path, **options: Any) -> list[ImportReport]:
    """Import a file, a hub name, or every data file in a folder (one dataset per file).

    A folder's files (``FILE_FORMATS`` suffixes, sorted by name, not recursive) are each
    imported under their own stem; ``options`` go to every ``import_dataset`` call, except
    ``name``, which names a single file's dataset only.
    """
    path = Path(source)
    if not path.is_dir():
        return [import_dataset(store, source, **options)]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FILE_FORMATS)
    if not files:
        known = ", ".join(sorted(FILE_FORMATS))
        raise InputError(f"{path}: no data files in this folder (looked for {known})")
    options = {k: v for k, v in options.items() if k != "name"}
    return [import_dataset(store, file, **options) for file in files]


def report_lines(report: ImportReport) -> list[str]:
    """What an import says to its user (CLI and TUI alike): each skipped row, then the summary."""
    lines = [f"skipped {error}" for error in report.errors]
    if report.n_skipped > len(report.errors):
        lines.append(f"... and {report.n_skipped - len(report.errors)} more")
    return [*lines, report.summary()]


# -- bundled samples ----------------------------------------------------------------


def import_samples(store: Store, which: str = "default") -> list[ImportReport]:
    """Load a bundled offline sample set: ``default`` (200 GSM8K + 100 MATH-500 problems)
    or ``bbmistake`` (100 BIG-Bench Mistake traces with their first-mistake labels)."""
    if which not in SAMPLE_SETS:
        raise InputError(f"no bundled sample set {which!r} (known: {', '.join(SAMPLE_SETS)})")
    return [
        import_dataset(store, SAMPLES_DIR / filename, name=Path(filename).stem, schema=schema)
        for filename, schema in SAMPLE_SETS[which]
    ]


def load_sample_model_solutions() -> list[dict[str, Any]]:
    """Genuine GPT-3 wrong traces for the bundled GSM8K problems (for on-policy prefixes)."""
    path = SAMPLES_DIR / SAMPLE_MODEL_SOLUTIONS
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def describe_import(result: object) -> str:
    """One line for what the importer returned (a report or a list of reports)."""
    if isinstance(result, list | tuple):
        return "; ".join(describe_import(r) for r in result) or "nothing imported"
    added, present = getattr(result, "n_added", None), getattr(result, "n_updated", None)
    name = getattr(result, "dataset_id", "samples")
    if isinstance(added, int) and isinstance(present, int):
        skipped = getattr(result, "n_skipped", 0)
        extra = f", {skipped} bad rows skipped" if skipped else ""
        return f"{name}: {added} added, {present} already present{extra}"
    return str(result) if result is not None else "samples imported"
