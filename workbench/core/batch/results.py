"""Recording batch results: match by ``custom_id``, parse with the adapters, record.

One ``Ingester`` serves provider batch results (OpenAI output and error
files, Anthropic results) and batch files run on GPU nodes (the OpenAI
batch output line shape, as ``vllm run-batch`` writes it).  Lines are taken
one at a time and handled in chunks (one id lookup per chunk), so memory stays
flat in the size of a file.

- A line is matched by ``custom_id``, never by its position.  An unknown id,
  an id of another run, or one whose item is already recorded is counted and
  skipped: ingesting the same output twice records nothing twice.
- A body is parsed by the item's provider adapter (``parse_batch_body``), the
  same parsing as a sync call, and recorded through ``RunSession.record`` at
  the batch price.  ``latency_ms`` is the time from preparing the batch to
  the result being read; the batch's local id is in ``sent_params["batch"]``.
- An error that a retry may fix (5xx, rate limit, unparseable body) and an
  expired or cancelled line send the item again (state ``requeued``) while it
  has had fewer than ``max_batch_attempts`` batches; otherwise the error is
  recorded as the item's error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from workbench.core.batch.rows import (
    BatchItemRow,
    BatchRow,
    close_finished,
    get_batch,
    lookup_items,
    mark_items,
)
from workbench.core.engine import AttemptOutcome, Engine, Prepared
from workbench.core.errors import ErrorKind, ProviderError
from workbench.core.providers import ModelRequest, ModelResponse
from workbench.core.status import BatchItemState
from workbench.core.store import Store

#: batches an item may go out in before its last error is recorded as final
MAX_BATCH_ATTEMPTS = 3

#: problem lines kept word for word; the rest are counted
MAX_PROBLEM_LINES = 100

_CHUNK = 1000

#: Anthropic error types -> kinds (the sync adapter maps the same by HTTP status)
_ANTHROPIC_ERRORS = {
    "invalid_request_error": ErrorKind.BAD_REQUEST,
    "authentication_error": ErrorKind.AUTH,
    "permission_error": ErrorKind.AUTH,
    "not_found_error": ErrorKind.NOT_FOUND,
    "request_too_large": ErrorKind.BAD_REQUEST,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "api_error": ErrorKind.SERVER,
    "overloaded_error": ErrorKind.SERVER,
}

#: OpenAI error codes on lines that never ran: send them again
_REQUEUE_CODES = {"batch_expired", "batch_cancelled"}


class BatchParser(Protocol):
    """What an adapter with a batch path offers (OpenAI, OpenAI-compatible, Anthropic)."""

    def parse_batch_body(self, request: ModelRequest, body: dict[str, Any]) -> ModelResponse: ...


class BadLine(ValueError):
    """A result line that names no item (not JSON, no custom_id)."""


@dataclass(frozen=True)
class LineResult:
    """What one result line says about one custom id."""

    custom_id: str
    body: dict[str, Any] | None = None  # the success body
    error: ProviderError | None = None
    requeue: str | None = None  # why it never ran (expired / cancelled): send it again


def _status_kind(status: int) -> ErrorKind:
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if status >= 500:
        return ErrorKind.SERVER
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status in (400, 413, 422):
        return ErrorKind.BAD_REQUEST
    return ErrorKind.OTHER


def _message(err: Any) -> str:
    if isinstance(err, dict):
        inner = err.get("error")
        if isinstance(inner, dict):
            return _message(inner)
        return str(err.get("message") or err.get("code") or err.get("type") or err)
    return str(err)


def interpret(data: Any) -> LineResult:
    """One parsed result line, OpenAI batch output or Anthropic result shape."""
    if not isinstance(data, dict):
        raise BadLine("not a JSON object")
    cid = data.get("custom_id")
    if not isinstance(cid, str) or not cid:
        raise BadLine("no custom_id")
    result = data.get("result")
    if isinstance(result, dict):  # Anthropic
        kind = result.get("type")
        if kind == "succeeded":
            message = result.get("message")
            if not isinstance(message, dict):
                return LineResult(cid, error=ProviderError(ErrorKind.MALFORMED, "no message"))
            return LineResult(cid, body=message)
        if kind in ("expired", "canceled"):
            return LineResult(cid, requeue=str(kind))
        err = result.get("error") or {}
        inner = err.get("error", err) if isinstance(err, dict) else {}
        etype = inner.get("type") if isinstance(inner, dict) else None
        error_kind = _ANTHROPIC_ERRORS.get(str(etype), ErrorKind.OTHER)
        return LineResult(cid, error=ProviderError(error_kind, _message(err) or str(kind)))
    error = data.get("error")
    response = data.get("response")
    if error:
        code = error.get("code") if isinstance(error, dict) else None
        if code in _REQUEUE_CODES:
            return LineResult(cid, requeue=str(code).removeprefix("batch_"))
        return LineResult(cid, error=ProviderError(ErrorKind.OTHER, _message(error)))
    if not isinstance(response, dict):
        return LineResult(cid, error=ProviderError(ErrorKind.MALFORMED, "no response"))
    status = response.get("status_code", 200)
    body = response.get("body")
    if not isinstance(status, int) or status != 200:
        code = int(status) if isinstance(status, int) else 0
        return LineResult(
            cid,
            error=ProviderError(
                _status_kind(code), _message(body) or f"status {status}", status=code
            ),
        )
    if not isinstance(body, dict):
        return LineResult(cid, error=ProviderError(ErrorKind.MALFORMED, "no response body"))
    return LineResult(cid, body=body)


@dataclass
class IngestReport:
    """What an ingestion did; ``problems`` are one line each (file and line number)."""

    lines: int = 0
    recorded: int = 0  # results recorded as done
    errors: int = 0  # errors recorded as the item's outcome
    requeued: int = 0  # sent again in a later batch
    skipped: int = 0  # already recorded, or seen twice
    bad: int = 0  # lines that could not be used (see problems)
    problems: list[str] = field(default_factory=list)
    batches_closed: list[int] = field(default_factory=list)

    def problem(self, line: str) -> None:
        self.bad += 1
        if len(self.problems) < MAX_PROBLEM_LINES:
            self.problems.append(line)
        elif len(self.problems) == MAX_PROBLEM_LINES:
            self.problems.append("... more problems not shown")


class Ingester:
    """Records result lines for one run; feed ``add``, then ``finish``."""

    def __init__(
        self,
        engine: Engine,
        db: Store,
        run_id: int,
        *,
        max_batch_attempts: int = MAX_BATCH_ATTEMPTS,
        quiet: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.db = db
        self.run_id = run_id
        self.max_attempts = max_batch_attempts
        self.session = engine.recorder(db, run_id, quiet=quiet)
        self.session.journal.max_rows = _CHUNK + 1  # one commit per chunk, then its states
        self.clock = clock
        self.report = IngestReport()
        self._done = db.done_item_keys(run_id)
        self._seen: set[str] = set()
        self._batches: dict[int, BatchRow] = {}
        self._touched: set[int] = set()
        self._pending: list[tuple[str, LineResult]] = []

    # -- feeding -------------------------------------------------------------

    def add_text(self, text: str, where: str) -> None:
        """One raw line; ``where`` names it in problems ("FILE:LINE")."""
        if not text.strip():
            return
        self.report.lines += 1
        try:
            data = json.loads(text)
        except ValueError:
            self.report.problem(f"{where}: not JSON")
            return
        self.add(data, where)

    def add(self, data: Any, where: str) -> None:
        try:
            line = interpret(data)
        except BadLine as exc:
            self.report.problem(f"{where}: {exc}")
            return
        self._pending.append((where, line))
        if len(self._pending) >= _CHUNK:
            self.flush()

    def finish(self) -> IngestReport:
        self.flush()
        self.report.batches_closed = close_finished(self.db, self._touched)
        return self.report

    # -- a chunk -------------------------------------------------------------

    def flush(self) -> None:
        chunk, self._pending = self._pending, []
        if not chunk:
            return
        rows = lookup_items(self.db, (line.custom_id for _, line in chunk))
        states: dict[str, BatchItemState] = {}
        for where, line in chunk:
            row = rows.get(line.custom_id)
            state = self._one(where, line, row)
            if state is not None and row is not None:
                states[row.custom_id] = state
                self._touched.add(row.batch_id)
        self.session.journal.flush()  # the results first, then the states that point at them
        mark_items(self.db, states)

    def _one(self, where: str, line: LineResult, row: BatchItemRow | None) -> BatchItemState | None:
        report = self.report
        if row is None:
            report.problem(f"{where}: unknown custom_id {line.custom_id}")
            return None
        if row.run_id != self.run_id:
            report.problem(
                f"{where}: custom_id {line.custom_id} belongs to run {row.run_id}, "
                f"not run {self.run_id}"
            )
            return None
        if line.custom_id in self._seen or row.state is not BatchItemState.OUT:
            report.skipped += 1
            return None
        self._seen.add(line.custom_id)
        if row.item_key in self._done:
            report.skipped += 1
            return BatchItemState.DONE  # recorded before a crash left its state behind
        batch = self._batch(row.batch_id)
        item = row.item
        p = self.engine.prepare(item.model_ref, item.request, item.sample_index, item)
        latency_ms = max(0.0, (self.clock() - batch.prepared_at) * 1000.0)
        error = line.error
        if line.requeue is not None:
            if row.attempt < self.max_attempts:
                report.requeued += 1
                return BatchItemState.REQUEUED
            kind = ErrorKind.CANCELLED if line.requeue.startswith("cancel") else ErrorKind.TIMEOUT
            error = ProviderError(kind, f"{line.requeue} in {row.attempt} batches")
        response = None
        if error is None and line.body is not None:
            try:
                response = self._parse(p, line.body)
            except ProviderError as exc:
                report.problem(f"{where}: {p.provider.name} cannot parse the body: {exc}")
                error = exc
        if response is not None:
            response = replace(response, sent_params={**response.sent_params, "batch": batch.uuid})
            outcome = AttemptOutcome(response, None, None, latency_ms, row.attempt)
            self.session.record(p, outcome, batch=True)
            self._done.add(row.item_key)
            report.recorded += 1
            return BatchItemState.DONE
        assert error is not None
        if error.retryable and row.attempt < self.max_attempts:
            report.requeued += 1
            return BatchItemState.REQUEUED
        message = self.engine.redact(str(error))
        self.session.record(
            p, AttemptOutcome(None, error, message, latency_ms, row.attempt), batch=True
        )
        report.errors += 1
        return BatchItemState.ERROR

    def _parse(self, p: Prepared, body: dict[str, Any]) -> ModelResponse:
        parse = getattr(p.provider, "parse_batch_body", None)
        if parse is None:
            raise ProviderError(ErrorKind.BAD_REQUEST, f"{p.provider.name} has no batch path")
        response: ModelResponse = parse(p.request, body)
        return response

    def _batch(self, batch_id: int) -> BatchRow:
        batch = self._batches.get(batch_id)
        if batch is None:
            batch = self._batches[batch_id] = get_batch(self.db, batch_id)
        return batch
