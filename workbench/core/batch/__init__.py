"""Batch mode: work items out as provider batches or batch files, results back in.

Public face: batch files for self-hosted GPUs (``export_stage`` /
``ingest_files``), the result ``Ingester`` behind them, custom ids, and the
batch rows.  See ``docs/scale.md``.
"""

from workbench.core.batch.files import (
    DEFAULT_SHARD_LINES,
    MANIFEST,
    ExportReport,
    Shard,
    export_stage,
    ingest_files,
)
from workbench.core.batch.ids import CUSTOM_ID_RE, custom_id
from workbench.core.batch.results import MAX_BATCH_ATTEMPTS, Ingester, IngestReport, interpret
from workbench.core.batch.rows import BatchRow, count_states, run_batches
from workbench.core.batch.stage import check_stages, run_batch_stage

__all__ = [
    "CUSTOM_ID_RE",
    "DEFAULT_SHARD_LINES",
    "MANIFEST",
    "MAX_BATCH_ATTEMPTS",
    "BatchRow",
    "ExportReport",
    "IngestReport",
    "Ingester",
    "Shard",
    "check_stages",
    "count_states",
    "custom_id",
    "export_stage",
    "ingest_files",
    "interpret",
    "run_batch_stage",
    "run_batches",
]
