"""Batch files for self-hosted GPUs: OpenAI-batch JSONL shards out, output lines in.

``export_stage`` writes a stage's pending items as shards (one model per
shard, at most ``shard_lines`` lines each) plus ``manifest.json``; each shard
is a ``batches`` row (``provider = "file"``) whose items are committed before
the shard gets its final name, so a resume knows they are out.  Cache hits
are recorded at once instead of exported.  The shards run anywhere that
writes the OpenAI batch output line shape (``vllm run-batch``, a Ray Data
job, a LiteLLM batch); ``ingest_files`` records those lines (see
``results``), as often as asked and on partial output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from workbench.core.batch.results import Ingester, IngestReport
from workbench.core.batch.rows import create_batch, update_batch
from workbench.core.engine import Engine, Prepared, WorkItem, find_cached, out_in_batches
from workbench.core.errors import ConfigError, InputError
from workbench.core.providers import ModelRequest
from workbench.core.status import BatchState
from workbench.core.store import Store, now_iso

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "workbench-batch-files/1"
DEFAULT_SHARD_LINES = 50_000


class BatchLineWriter(Protocol):
    """An adapter that can write OpenAI-batch input lines (OpenAI, OpenAI-compatible)."""

    def batch_request(self, request: ModelRequest) -> tuple[str, dict[str, Any]]: ...


@dataclass(frozen=True)
class Shard:
    file: str  # name inside the output folder
    batch: str  # the batch's local uuid
    model: str  # provider:model
    lines: int


@dataclass(frozen=True)
class ExportReport:
    run_id: int
    stage: str
    out_dir: Path
    shards: tuple[Shard, ...]
    cached: int  # recorded from the cache instead of exported
    skipped: int  # already done, or already out in a batch


def _writer(p: Prepared, stage: str) -> BatchLineWriter:
    if not hasattr(p.provider, "batch_request"):
        raise ConfigError(
            f"stage {stage}: {p.model_ref}: a {getattr(p.provider, 'kind', '?')} provider "
            "cannot run from batch files (only openai and openai-compatible can); run it sync"
        )
    writer: BatchLineWriter = p.provider  # type: ignore[assignment]
    return writer


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise InputError(f"{path}: not a workbench batch manifest")
    return data


def export_stage(
    engine: Engine,
    db: Store,
    run_id: int,
    stage: str,
    items: Iterable[WorkItem],
    out_dir: Path,
    *,
    shard_lines: int = DEFAULT_SHARD_LINES,
) -> ExportReport:
    """Write the stage's pending items as shards; see the module docstring."""
    if shard_lines < 1:
        raise ConfigError("--shard-lines must be at least 1")
    skip = db.done_item_keys(run_id) | out_in_batches(db, run_id)
    wanted = [i for i in items if i.stage == stage]
    pending = [i for i in wanted if i.key not in skip]
    # phase 1, before anything is written: continuation methods and batch paths
    preps = [engine.prepare(i.model_ref, i.request, i.sample_index, i) for i in pending]
    lines: dict[str, list[tuple[Prepared, str, dict[str, Any]]]] = {}
    for p in preps:
        url, body = _writer(p, stage).batch_request(p.request)
        lines.setdefault(p.model_ref, []).append((p, url, body))
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "run_id": run_id,
        "stage": stage,
        "created_at": now_iso(),
        "shards": [],
    }
    if manifest_path.exists():
        manifest = _read_manifest(manifest_path)
        if manifest.get("run_id") != run_id or manifest.get("stage") != stage:
            raise ConfigError(
                f"{out_dir}: holds the shards of run {manifest.get('run_id')} stage "
                f"{manifest.get('stage')}; export to another folder"
            )
    hits = find_cached(db, [p.key for p in preps])
    cached = 0
    if hits:
        session = engine.recorder(db, run_id)
        for p in preps:
            p.cached = hits.get(p.key)
            if p.cached is not None:
                session.record_hit(p)
                cached += 1
        session.journal.flush()
    shards: list[Shard] = []
    for model_ref, rows in lines.items():
        rows = [r for r in rows if r[0].cached is None]
        for start in range(0, len(rows), shard_lines):
            shards.append(
                _write_shard(
                    db, run_id, stage, model_ref, rows[start : start + shard_lines], out_dir
                )
            )
    manifest["shards"] = [*manifest["shards"], *(s.__dict__ for s in shards)]
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, manifest_path)
    return ExportReport(
        run_id, stage, out_dir, tuple(shards), cached, skipped=len(wanted) - len(pending)
    )


def _write_shard(
    db: Store,
    run_id: int,
    stage: str,
    model_ref: str,
    rows: Sequence[tuple[Prepared, str, dict[str, Any]]],
    out_dir: Path,
) -> Shard:
    """One shard: rows committed, then the file under its final name (no half files)."""
    items = [p.item for p, _, _ in rows if p.item is not None]
    batch, ids = create_batch(
        db,
        run_id,
        provider="file",
        stage=stage,
        model=model_ref,
        items=items,
        status=BatchState.PREPARING,
    )
    name = f"{stage}-{batch.uuid[:12]}.jsonl"
    final = out_dir / name
    tmp = out_dir / f".{name}.tmp"
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with tmp.open("w", encoding="utf-8") as f:
        for cid, (_, url, body) in zip(ids, rows, strict=True):
            f.write(dumps({"custom_id": cid, "method": "POST", "url": url, "body": body}))
            f.write("\n")
    os.replace(tmp, final)
    update_batch(
        db,
        batch.id,
        status=BatchState.SUBMITTED,
        meta={"file": name, "dir": str(out_dir.resolve())},
    )
    return Shard(file=name, batch=batch.uuid, model=model_ref, lines=len(items))


def ingest_files(engine: Engine, db: Store, run_id: int, paths: Sequence[Path]) -> IngestReport:
    """Record the output lines of ``paths``; bad lines are one problem line each."""
    ingester = Ingester(engine, db, run_id)
    for path in paths:
        manifest_path = path.parent / MANIFEST
        if manifest_path.exists() and path.name != MANIFEST:
            try:
                manifest = _read_manifest(manifest_path)
            except InputError as exc:
                ingester.report.problem(str(exc))
                continue
            if manifest.get("run_id") != run_id:
                ingester.report.problem(
                    f"{path}: its manifest is for run {manifest.get('run_id')}, not run {run_id}; "
                    "file skipped"
                )
                continue
        if path.name == MANIFEST:
            continue
        try:
            with path.open(encoding="utf-8", errors="replace") as f:
                for n, text in enumerate(f, start=1):
                    ingester.add_text(text, f"{path}:{n}")
        except OSError as exc:
            ingester.report.problem(f"{path}: cannot read ({exc.strerror or exc})")
    return ingester.finish()
