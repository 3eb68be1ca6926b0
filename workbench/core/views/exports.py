"""Exports for the screens: a run's samples or its analysis tables, to a path said in full.

The same writers as ``workbench export`` (``analysis.export``); the tables are the
run's report tables followed by its metrics, as ``workbench export --tables`` writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from workbench.core.analysis import export, run_metrics
from workbench.core.analysis.export import ExportFormat
from workbench.core.analysis.rates import as_row
from workbench.core.experiments.report import run_report
from workbench.core.settings import BinSettings
from workbench.core.store import Store

#: every format the CLI writes, in the CLI's order
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("jsonl", "csv", "parquet", "dataset")
#: the formats analysis tables can be written in
TABLE_FORMATS: tuple[ExportFormat, ...] = ("jsonl", "csv")


class ExportWhat(StrEnum):
    SAMPLES = "samples"
    TABLES = "tables"


@dataclass(frozen=True)
class ExportResult:
    run_id: int
    what: ExportWhat
    fmt: ExportFormat
    path: Path  # absolute
    n_rows: int

    def text(self) -> str:
        return f"wrote {self.n_rows:,} {self.what} rows of run {self.run_id} to {self.path}"


def default_export_path(run_id: int, what: ExportWhat, fmt: ExportFormat) -> Path:
    """``exports/run-7-samples.jsonl`` (a folder for ``dataset``), relative to the cwd."""
    name = f"run-{run_id}-{what}"
    return Path("exports") / (name if fmt == "dataset" else f"{name}.{fmt}")


def analysis_tables(store: Store, run_id: int, *, bins: BinSettings) -> dict[str, list[Any]]:
    """The run's report tables as rows, then its metrics (as the metrics layer defines them)."""
    tables = run_report(store, run_id, bins=bins)
    flat = {title: [as_row(r) for r in rows] for title, rows in tables.items()}
    return flat | {"metrics": [v.to_json() for v in run_metrics(store, run_id).values]}


def export_run(
    store: Store,
    run_id: int,
    what: ExportWhat,
    fmt: ExportFormat,
    out: str | Path,
    *,
    stage: str | None = None,
    bins: BinSettings | None = None,
) -> ExportResult:
    """Write ``what`` of ``run_id`` to ``out`` (folders made as needed); one-line errors."""
    path = Path(out).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    if what is ExportWhat.TABLES:
        tables = analysis_tables(store, run_id, bins=bins or BinSettings())
        n = export.export_tables(tables, fmt, path)
    else:
        n = export.export_samples(store, run_id, fmt, path, stage=stage)
    return ExportResult(run_id, what, fmt, path, n)
