"""Provider batch APIs (OpenAI Batch, Anthropic Message Batches): submit, recover, poll.

The durable order of operations never pays twice and never loses a batch:

1. the batch's worst case (at the batch price) is reserved against the budget;
   a batch that does not fit is split smaller, and refused when one item does not;
2. the ``batches`` row (``preparing``, a local uuid) and its items are committed;
3. OpenAI: the JSONL file is uploaded and its id committed (``uploaded``), then the
   batch is created with ``metadata = {"wb_batch": uuid}`` and its id committed
   (``submitted``); Anthropic: created with inline requests, id committed;
4. a row found in ``preparing`` / ``uploaded`` on restart is recovered, never
   resubmitted blindly: OpenAI lists recent batches and adopts the one whose
   metadata carries the uuid; Anthropic lists batches created within
   [prepared_at - 1 min, prepared_at + 10 min] with the same request count: one
   is adopted, none means submit, several stop the run with a question
   (``ambiguous``) naming the candidates.

Polling: the first poll after ``first_poll_s``, then exponential backoff with
jitter up to ``poll_cap_s``; a 404 in the first two minutes after create is
transient.  Terminal batches are ingested (OpenAI: output and error files;
Anthropic: the results stream) through the same ``Ingester`` as batch files.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workbench.core.batch.results import Ingester, IngestReport
from workbench.core.batch.rows import (
    BatchRow,
    batch_items,
    create_batch,
    get_batch,
    mark_items,
    run_batches,
    update_batch,
)
from workbench.core.engine import Engine, Prepared, WorkItem, find_cached, out_in_batches
from workbench.core.errors import ConfigError, ErrorKind, ProviderError
from workbench.core.providers import Usage
from workbench.core.status import BatchItemState, BatchState
from workbench.core.store import Store

#: provider kind -> (max requests, max bytes) per batch
LIMITS = {"openai": (50_000, 200_000_000), "anthropic": (100_000, 256_000_000)}
TARGET_SIZE = 10_000
TERMINAL_OPENAI = {"completed", "expired", "cancelled", "failed"}
#: a 404 this soon after create is the provider catching up, not a lost batch
TRANSIENT_404_S = 120.0


class AmbiguousBatch(ConfigError):
    """Several remote batches may be the one a crash left in ``preparing``: a person decides."""


@dataclass(frozen=True)
class RemoteStatus:
    """What a poll says about one remote batch."""

    status: str  # the provider's own word
    terminal: bool
    counts: dict[str, int] = field(default_factory=dict)
    expires_at: str | None = None
    files: tuple[str, ...] = ()  # OpenAI: output and error file ids
    refused: bool = False  # enqueued-token limit: the items wait for another batch
    line_errors: tuple[tuple[int, str], ...] = ()  # failed validation: (line, message)


def _kind(p: Prepared) -> str:
    kind = getattr(p.provider, "kind", "")
    if kind == "openai-compatible":
        kind = "openai"
    return str(kind)


def batchable(p: Prepared, stage: str) -> None:
    """``ConfigError`` naming the stage when ``p`` has no provider batch path."""
    if getattr(p.provider, "kind", "") not in ("openai", "anthropic"):
        raise ConfigError(
            f"stage {stage}: {p.model_ref}: a {getattr(p.provider, 'kind', '?')} provider has no "
            'batch API (openai and anthropic have); run it sync (mode = "sync")'
        )


class BatchAPI:
    """One provider's batch endpoints, through its adapter's SDK client."""

    def __init__(self, p: Prepared) -> None:
        self.provider: Any = p.provider
        self.kind = _kind(p)

    def client(self) -> Any:
        return self.provider.client()

    def _error(self, exc: Exception) -> Exception:
        error: Exception = self.provider.sdk_error(exc)
        return error

    # -- submit --------------------------------------------------------------

    def lines(self, ids: Sequence[str], preps: Sequence[Prepared]) -> list[dict[str, Any]]:
        if self.kind == "anthropic":
            return [
                {"custom_id": cid, "params": self.provider.batch_params(p.request)}
                for cid, p in zip(ids, preps, strict=True)
            ]
        out = []
        for cid, p in zip(ids, preps, strict=True):
            url, body = self.provider.batch_request(p.request)
            out.append({"custom_id": cid, "method": "POST", "url": url, "body": body})
        return out

    async def submit(self, db: Store, batch: BatchRow, lines: list[dict[str, Any]]) -> None:
        """Steps 3 and 4: each remote step's id committed before the next step."""
        client = self.client()
        try:
            if self.kind == "anthropic":
                created = await client.messages.batches.create(requests=lines)
                update_batch(db, batch.id, status=BatchState.SUBMITTED, remote_id=created.id)
                return
            file_id = batch.meta.get("input_file_id")
            if not file_id:
                data = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
                uploaded = await client.files.create(
                    file=(f"wb-{batch.uuid}.jsonl", data.encode()), purpose="batch"
                )
                file_id = uploaded.id
                update_batch(
                    db, batch.id, status=BatchState.UPLOADED, meta={"input_file_id": file_id}
                )
            created = await client.batches.create(
                input_file_id=file_id,
                endpoint=lines[0]["url"],
                completion_window="24h",
                metadata={"wb_batch": batch.uuid},
            )
            update_batch(
                db,
                batch.id,
                status=BatchState.SUBMITTED,
                remote_id=created.id,
                meta={"created_at": time.time()},
            )
        except ProviderError:
            raise
        except Exception as exc:
            raise self._error(exc) from None

    # -- recovery --------------------------------------------------------------

    async def candidates(self, batch: BatchRow) -> list[str]:
        """Remote batches that may be ``batch`` (created before its id was committed)."""
        client = self.client()
        try:
            if self.kind == "openai":
                page = await client.batches.list(limit=100)
                return [b.id for b in page.data if (b.metadata or {}).get("wb_batch") == batch.uuid]
            page = await client.messages.batches.list(limit=100)
            low, high = batch.prepared_at - 60, batch.prepared_at + 600
            found = []
            for b in page.data:
                created = b.created_at
                stamp = created.timestamp() if isinstance(created, datetime) else float(created)
                counts = b.request_counts
                total = sum(
                    getattr(counts, k, 0) or 0
                    for k in ("processing", "succeeded", "errored", "canceled", "expired")
                )
                if low <= stamp <= high and total == batch.n_items:
                    found.append(b.id)
            return found
        except Exception as exc:
            raise self._error(exc) from None

    # -- polling ----------------------------------------------------------------

    async def retrieve(self, remote_id: str) -> RemoteStatus:
        client = self.client()
        try:
            if self.kind == "anthropic":
                b = await client.messages.batches.retrieve(remote_id)
                counts = {
                    k: getattr(b.request_counts, k, 0) or 0
                    for k in ("processing", "succeeded", "errored", "canceled", "expired")
                }
                expires = b.expires_at.isoformat() if b.expires_at else None
                status = str(b.processing_status)
                return RemoteStatus(status, status == "ended", counts, expires)
            b = await client.batches.retrieve(remote_id)
        except Exception as exc:
            raise self._error(exc) from None
        rc = b.request_counts
        counts = {"total": rc.total, "completed": rc.completed, "failed": rc.failed} if rc else {}
        errors = list(getattr(b.errors, "data", None) or []) if b.errors else []
        refused = any(getattr(e, "code", None) == "token_limit_exceeded" for e in errors)
        line_errors = tuple(
            (int(e.line), str(e.message)) for e in errors if getattr(e, "line", None) is not None
        )
        files = tuple(f for f in (b.output_file_id, b.error_file_id) if f)
        expires = str(b.expires_at) if b.expires_at else None
        return RemoteStatus(
            b.status, b.status in TERMINAL_OPENAI, counts, expires, files, refused, line_errors
        )

    async def results(self, batch: BatchRow, status: RemoteStatus) -> AsyncIterator[Any]:
        client = self.client()
        try:
            if self.kind == "anthropic":
                async for line in await client.messages.batches.results(batch.remote_id):
                    yield line.model_dump(mode="json")
                return
            for file_id in status.files:
                async with client.files.with_streaming_response.content(file_id) as resp:
                    async for text in resp.iter_lines():
                        if text.strip():
                            yield json.loads(text)
        except ProviderError:
            raise
        except (ValueError, TypeError) as exc:
            raise ProviderError(ErrorKind.MALFORMED, f"batch results: {exc}") from None
        except Exception as exc:
            raise self._error(exc) from None

    async def cancel(self, remote_id: str) -> None:
        client = self.client()
        try:
            if self.kind == "anthropic":
                await client.messages.batches.cancel(remote_id)
            else:
                await client.batches.cancel(remote_id)
        except Exception as exc:
            raise self._error(exc) from None


@dataclass
class BatchReport:
    """What a submit / poll pass did."""

    submitted: list[int] = field(default_factory=list)  # batch row ids
    cached: int = 0
    waiting: int = 0  # items left queued (token limit, budget)
    ingested: IngestReport = field(default_factory=IngestReport)
    refused: list[str] = field(default_factory=list)  # one line each
    open: int = 0  # batches still open after the pass


def _worst(engine: Engine, p: Prepared) -> float:
    est_in = p.est_tokens - p.request.max_tokens * max(1, p.request.n)
    usage = Usage(input_tokens=est_in, output_tokens=p.request.max_tokens * max(1, p.request.n))
    return engine.prices.cost(p.model_ref, usage, batch=True) or 0.0


def _open_reserved(db: Store, run_id: int) -> float:
    return sum(b.reserved_usd for b in run_batches(db, run_id, open_only=True))


def _groups(preps: Sequence[Prepared], target: int) -> list[list[Prepared]]:
    """One model (and endpoint) per batch, at most ``target`` items and the kind's limits."""
    by: dict[tuple[str, str], list[Prepared]] = {}
    for p in preps:
        url = ""
        if _kind(p) == "openai":
            url, _ = p.provider.batch_request(p.request)  # type: ignore[attr-defined]
        by.setdefault((p.model_ref, url), []).append(p)
    out = []
    for group in by.values():
        size = min(target, LIMITS[_kind(group[0])][0])
        out += [group[i : i + size] for i in range(0, len(group), size)]
    return out


async def submit_items(
    engine: Engine,
    db: Store,
    run_id: int,
    stage: str,
    items: Sequence[WorkItem],
    *,
    budget_usd: float | None = None,
    target_size: int = TARGET_SIZE,
) -> BatchReport:
    """Send a stage's pending items as provider batches (see the module docstring)."""
    report = BatchReport()
    skip = db.done_item_keys(run_id) | out_in_batches(db, run_id)
    pending = [i for i in items if i.stage == stage and i.key not in skip]
    preps = [engine.prepare(i.model_ref, i.request, i.sample_index, i) for i in pending]
    for p in preps:
        batchable(p, stage)
        if _kind(p) == "anthropic":
            p.provider.batch_params(p.request)  # type: ignore[attr-defined]
        else:
            p.provider.batch_request(p.request)  # type: ignore[attr-defined]
    hits = find_cached(db, [p.key for p in preps])
    if hits:
        session = engine.recorder(db, run_id)
        for p in preps:
            p.cached = hits.get(p.key)
            if p.cached is not None:
                session.record_hit(p)
                report.cached += 1
        session.journal.flush()
    misses = [p for p in preps if p.cached is None]
    if budget_usd is not None and misses:
        engine.check_prices(misses)
    if misses:
        engine.check_ready(misses)
    spent = db.run_totals(run_id).cost_usd
    queue = _groups(misses, target_size)
    while queue:
        group = queue.pop(0)
        worst = sum(_worst(engine, p) for p in group)
        if budget_usd is not None and spent + _open_reserved(db, run_id) + worst > budget_usd:
            if len(group) > 1:  # split smaller and try again
                half = len(group) // 2
                queue[:0] = [group[:half], group[half:]]
                continue
            report.waiting += 1 + sum(len(g) for g in queue)
            report.refused.append(
                f"budget ${budget_usd:.2f}: the next batch item could cost up to ${worst:.4f} "
                "at the batch price; raise the budget to send the rest"
            )
            break
        items_ = [p.item for p in group if p.item is not None]
        batch, ids = create_batch(
            db,
            run_id,
            provider=group[0].provider.name,
            stage=stage,
            model=group[0].model_ref,
            items=items_,
            reserved_usd=worst,
        )
        api = BatchAPI(group[0])
        try:
            await api.submit(db, batch, api.lines(ids, group))
        except ProviderError as exc:
            if "token_limit_exceeded" in str(exc) or exc.kind is ErrorKind.RATE_LIMIT:
                _requeue_all(db, batch, BatchState.REFUSED)
                report.waiting += len(group) + sum(len(g) for g in queue)
                report.refused.append(f"{batch.model}: {exc}; the items wait for a batch to end")
                break
            raise
        report.submitted.append(batch.id)
    return report


def _requeue_all(db: Store, batch: BatchRow, status: BatchState) -> None:
    rows = batch_items(db, batch.id, BatchItemState.OUT)
    mark_items(db, {r.custom_id: BatchItemState.REQUEUED for r in rows})
    update_batch(db, batch.id, status=status)


async def _recover(engine: Engine, db: Store, batch: BatchRow) -> None:
    """A batch found in ``preparing`` / ``uploaded``: adopt its remote twin, or submit it."""
    rows = batch_items(db, batch.id)
    preps = [
        engine.prepare(r.item.model_ref, r.item.request, r.item.sample_index, r.item) for r in rows
    ]
    api = BatchAPI(preps[0])
    found = await api.candidates(batch)
    if len(found) == 1:
        update_batch(db, batch.id, status=BatchState.SUBMITTED, remote_id=found[0])
        return
    if len(found) > 1:
        update_batch(db, batch.id, status=BatchState.AMBIGUOUS, meta={"candidates": found})
        raise AmbiguousBatch(
            f"run {batch.run_id} batch {batch.id}: {len(found)} {batch.provider} batches may be "
            f"the one submitted before a crash ({', '.join(found)}); adopt one with "
            f"`workbench batch adopt {batch.run_id} {batch.id} REMOTE_ID` (nothing was resubmitted)"
        )
    await api.submit(db, get_batch(db, batch.id), api.lines([r.custom_id for r in rows], preps))


def adopt(db: Store, run_id: int, batch_id: int, remote_id: str) -> None:
    """A person's answer to an ambiguous recovery: ``remote_id`` is that batch."""
    batch = get_batch(db, batch_id)
    if batch.run_id != run_id or batch.status is not BatchState.AMBIGUOUS:
        raise ConfigError(f"run {run_id} has no ambiguous batch {batch_id}")
    update_batch(db, batch_id, status=BatchState.SUBMITTED, remote_id=remote_id)


async def poll_once(engine: Engine, db: Store, run_id: int, *, quiet: bool = True) -> BatchReport:
    """Recover, poll and ingest every open batch of the run once."""
    report = BatchReport()
    for batch in run_batches(db, run_id, open_only=True):
        if batch.provider == "file" or batch.status is BatchState.AMBIGUOUS:
            continue
        if batch.status in (BatchState.PREPARING, BatchState.UPLOADED):
            await _recover(engine, db, batch)
            batch = get_batch(db, batch.id)
        if batch.remote_id is None:
            continue
        rows = batch_items(db, batch.id)
        p = engine.prepare(rows[0].item.model_ref, rows[0].item.request, 0, None)
        api = BatchAPI(p)
        try:
            status = await api.retrieve(batch.remote_id)
        except ProviderError as exc:
            age = time.time() - float(batch.meta.get("created_at", batch.prepared_at))
            if exc.kind is ErrorKind.NOT_FOUND and age < TRANSIENT_404_S:
                continue  # the provider has not caught up with its own create yet
            raise
        update_batch(
            db,
            batch.id,
            meta={
                "remote_status": status.status,
                "counts": status.counts,
                "expires_at": status.expires_at,
            },
        )
        if not status.terminal:
            continue
        if status.refused:
            _requeue_all(db, batch, BatchState.REFUSED)
            continue
        update_batch(db, batch.id, status=BatchState.ENDED)
        ingester = Ingester(engine, db, run_id, quiet=quiet)
        if status.line_errors and not status.files:
            _line_errors(ingester, db, batch, status)
        async for line in api.results(batch, status):
            ingester.add(line, f"batch {batch.id} ({batch.remote_id})")
        part = ingester.finish()
        _merge(report.ingested, part)
        if get_batch(db, batch.id).status is BatchState.ENDED:
            # lines the provider never returned (cancelled before they ran): send again
            _requeue_all(db, batch, BatchState.INGESTED)
    report.open = len([b for b in run_batches(db, run_id, open_only=True) if b.provider != "file"])
    return report


def _line_errors(ingester: Ingester, db: Store, batch: BatchRow, status: RemoteStatus) -> None:
    """A rejected input file: each line's validation error becomes its item's error."""
    rows = batch_items(db, batch.id)
    for line, message in status.line_errors:
        if 1 <= line <= len(rows):
            ingester.add(
                {
                    "custom_id": rows[line - 1].custom_id,
                    "response": {"status_code": 400, "body": {"error": {"message": message}}},
                },
                f"batch {batch.id} line {line}",
            )


def _merge(total: IngestReport, part: IngestReport) -> None:
    for name in ("lines", "recorded", "errors", "requeued", "skipped", "bad"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.problems += part.problems
    total.batches_closed += part.batches_closed


async def wait(
    engine: Engine,
    db: Store,
    run_id: int,
    *,
    first_poll_s: float = 30.0,
    poll_cap_s: float = 300.0,
    sleep: Any = asyncio.sleep,
    rng: random.Random | None = None,
    quiet: bool = True,
) -> BatchReport:
    """Poll until no provider batch of the run is open (one poller for all of them).

    ``quiet=False`` counts recorded items in the run's stats and tells listeners.
    """
    rng = rng or random.Random()
    total = BatchReport()
    delay = first_poll_s
    await sleep(delay)
    while True:
        part = await poll_once(engine, db, run_id, quiet=quiet)
        _merge(total.ingested, part.ingested)
        total.open = part.open
        if part.open == 0:
            return total
        delay = min(poll_cap_s, delay * 2)
        await sleep(delay * (0.5 + rng.random() / 2))


async def cancel(
    engine: Engine, db: Store, run_id: int, *, only: Collection[int] | None = None
) -> list[int]:
    """Ask the provider to cancel every submitted batch of the run (or those in ``only``);
    a later poll ingests their partial results and settles the reservation.  Files are
    marked ingested."""
    cancelled = []
    for batch in run_batches(db, run_id, open_only=True):
        if only is not None and batch.id not in only:
            continue
        if batch.provider == "file":
            _requeue_all(db, batch, BatchState.INGESTED)
            cancelled.append(batch.id)
            continue
        if batch.remote_id is None:
            continue
        rows = batch_items(db, batch.id)
        p = engine.prepare(rows[0].item.model_ref, rows[0].item.request, 0, None)
        await BatchAPI(p).cancel(batch.remote_id)
        update_batch(db, batch.id, meta={"cancel_requested": True})
        cancelled.append(batch.id)
    return cancelled
