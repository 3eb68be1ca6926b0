"""Prepared items, attempt outcomes, and the typed ``calls`` / ``samples`` records they become.

Pure functions: no store, no budget, no events.  ``CallRecord`` and
``SampleRecord`` are the one definition of a row; the journal writes their
fields in declaration order, so a column cannot drift from its value.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from workbench.core.engine import limiter as lim
from workbench.core.engine.cache import CachedCall, response_json
from workbench.core.engine.items import WorkItem
from workbench.core.engine.pool import EndpointPool
from workbench.core.errors import ProviderError
from workbench.core.payloads import EngineFields
from workbench.core.providers import Continuation, ModelRequest, ModelResponse, Provider
from workbench.core.settings import ProviderSettings
from workbench.core.status import CallStatus, SampleStatus
from workbench.core.store import dumps, now_iso

#: True writes every copy inline, as before migration 8 (request JSON in every call row,
#: the completion text in ``calls.response`` too): bench/store_size.py's baseline
INLINE_STORE = False


@dataclass(slots=True)
class Prepared:
    """An item ready to send: everything the send and record phases need, computed once."""

    item: WorkItem | None
    model_ref: str
    provider: Provider
    settings: ProviderSettings
    request: ModelRequest
    request_text: str  # the request's JSON, stored on the call and hashed
    key: str  # the cache key (request_hash)
    continuation: Continuation | None
    limiter: lim.AdaptiveLimiter  # a pool's items take their slots from ``pool`` instead
    est_tokens: int  # for tpm caps: estimated input + max output
    worst_usd: float = 0.0
    cached: CachedCall | None = None
    pool: EndpointPool | None = None  # an endpoint pool: the replicas to dispatch to


@dataclass(slots=True)
class AttemptOutcome:
    """How sending one prepared item ended, after its retries."""

    response: ModelResponse | None
    error: ProviderError | None
    message: str | None  # the error, redacted
    latency_ms: float
    attempts: int
    endpoint: str | None = None  # the pool replica that served the last attempt


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One ``calls`` row (the journal assigns ``id``)."""

    run_id: int | None
    item_key: str | None
    provider: str
    base_url: str
    model: str
    continuation: str | None
    request_hash: str
    request: str  # the journal moves one over 1 KB to ``blobs`` ('' here, ``request_blob``)
    sent_params: str
    response_text: str | None
    response: str | None
    finish_reason: str | None
    input_tokens: int | None
    output_tokens: int | None
    cached_tokens: int | None
    cost_usd: float | None
    latency_ms: float
    attempts: int
    status: CallStatus
    error_kind: str | None
    error: str | None
    cache_hit: int
    cached_from: int | None
    created_at: str
    endpoint: str | None = None  # the pool replica that served it (NULL: one endpoint)
    request_blob: str | None = None  # set by the journal: sha256 of the request in blobs

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in CALL_COLUMNS)


@dataclass(frozen=True, slots=True)
class SampleRecord:
    """One ``samples`` row (the journal fills in ``call_id``)."""

    run_id: int | None
    stage: str
    item_key: str
    problem_id: str | None
    sample_index: int
    parent_id: int | None
    role: str
    model: str
    status: SampleStatus
    output: str | None
    payload: str
    created_at: str
    updated_at: str

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in SAMPLE_COLUMNS)


CALL_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(CallRecord))
#: sample columns in order; ``call_id`` is appended by the journal
SAMPLE_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(SampleRecord))


def sample_record(
    run_id: int | None,
    item: WorkItem,
    status: SampleStatus,
    output: str | None,
    extra: EngineFields,
) -> SampleRecord:
    now = now_iso()
    return SampleRecord(
        run_id=run_id,
        stage=item.stage,
        item_key=item.key,
        problem_id=item.problem_id,
        sample_index=item.sample_index,
        parent_id=item.parent_id,
        role=item.role,
        model=item.model_ref,
        status=status,
        output=output,
        payload=dumps({**item.payload, **extra}) if item.payload else dumps(extra),
        created_at=now,
        updated_at=now,
    )


def _call(
    run_id: int | None, key: str | None, p: Prepared, continuation: str | None, **rest: Any
) -> CallRecord:
    return CallRecord(
        run_id=run_id,
        item_key=key,
        provider=p.provider.name,
        base_url=p.provider.base_url or "",
        model=p.request.model,
        continuation=continuation,
        request_hash=p.key,
        request=p.request_text,
        created_at=now_iso(),
        **rest,
    )


def _answered(finish_reason: str | None, continuation: str | None) -> EngineFields:
    """What the engine adds to an answered item's payload (sent or from the cache)."""
    extra: EngineFields = {"finish_reason": finish_reason}
    if continuation:
        extra["continuation"] = continuation
    return extra


def ok_records(
    run_id: int | None, key: str | None, p: Prepared, outcome: AttemptOutcome, cost: float | None
) -> tuple[CallRecord, SampleRecord | None]:
    resp = outcome.response
    assert resp is not None
    usage = resp.usage
    cont = resp.continuation or p.continuation
    cont_name = cont.value if cont else None
    call = _call(
        run_id, key, p, cont_name,
        sent_params=dumps(resp.sent_params) if resp.sent_params else "{}",
        response_text=resp.text, response=response_json(resp, full=INLINE_STORE),
        finish_reason=resp.finish_reason,
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
        cached_tokens=usage.cached_tokens, cost_usd=cost, latency_ms=outcome.latency_ms,
        attempts=outcome.attempts, status=CallStatus.OK, error_kind=None, error=None,
        cache_hit=0, cached_from=None, endpoint=outcome.endpoint,
    )  # fmt: skip
    if p.item is None:
        return call, None
    extra = _answered(resp.finish_reason, cont_name)
    if len(resp.completions) > 1:
        extra["completions"] = [c.text for c in resp.completions]
    return call, sample_record(run_id, p.item, SampleStatus.DONE, resp.text, extra)


def error_records(
    run_id: int | None, key: str | None, p: Prepared, outcome: AttemptOutcome
) -> tuple[CallRecord, SampleRecord | None]:
    error = outcome.error
    assert error is not None
    call = _call(
        run_id, key, p, p.continuation.value if p.continuation else None,
        sent_params="{}", response_text=None, response=None, finish_reason=None,
        input_tokens=None, output_tokens=None, cached_tokens=None, cost_usd=None,
        latency_ms=outcome.latency_ms, attempts=outcome.attempts, status=CallStatus.ERROR,
        error_kind=error.kind.value, error=outcome.message, cache_hit=0, cached_from=None,
        endpoint=outcome.endpoint,
    )  # fmt: skip
    if p.item is None:
        return call, None
    extra: EngineFields = {"error_kind": error.kind.value, "error": outcome.message}
    return call, sample_record(run_id, p.item, SampleStatus.ERROR, None, extra)


def hit_records(
    run_id: int | None, key: str | None, p: Prepared
) -> tuple[CallRecord, SampleRecord | None]:
    """A cache hit: a new call row pointing at the original, cost 0, attempts 0."""
    hit = p.cached
    assert hit is not None
    cont_name = hit.continuation or (p.continuation.value if p.continuation else None)
    call = _call(
        run_id, key, p, cont_name,
        sent_params=hit.sent_params, response_text=hit.response_text, response=hit.response,
        finish_reason=hit.finish_reason, input_tokens=hit.input_tokens,
        output_tokens=hit.output_tokens, cached_tokens=hit.cached_tokens, cost_usd=0.0,
        latency_ms=0.0, attempts=0, status=CallStatus.OK, error_kind=None, error=None,
        cache_hit=1, cached_from=hit.id,
    )  # fmt: skip
    if p.item is None:
        return call, None
    extra = _answered(hit.finish_reason, cont_name)
    return call, sample_record(run_id, p.item, SampleStatus.DONE, hit.response_text, extra)
