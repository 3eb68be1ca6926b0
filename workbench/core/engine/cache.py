"""The response cache: ``calls`` rows with status ok, found by request hash.

The key (``hash_request_text``) covers provider, base URL, the full request and
the sample index (so N samples of one prompt at temperature > 0 are N entries).  A hit is recorded as a new ``calls`` row with
``cache_hit=1``, ``cached_from`` pointing at the original and cost 0.  Errors
are never cached because only ``status='ok'`` rows are looked up.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from workbench.core.providers import (
    Completion,
    Continuation,
    ModelRequest,
    ModelResponse,
    ToolCall,
    Usage,
)
from workbench.core.status import CallStatus
from workbench.core.store import Store, dumps, loads

_CHUNK = 500  # SQLite's host parameter limit is far above this; keeps statements small


def request_json_text(request: ModelRequest) -> str:
    """The request's JSON as stored on its call and hashed for the cache key."""
    return dumps(request.to_json())


def hash_request_text(provider: str, base_url: str, request_text: str, sample_index: int) -> str:
    """The cache key: sha256 of the request's already-encoded JSON with its key parts.

    Same bytes as ``dumps({...})`` of the four key parts (keys sorted, compact
    separators), so the request is JSON-encoded once per item, not twice.
    """
    blob = f'{_key_head(provider, base_url)}"request":{request_text},"sample_index":{int(sample_index)}}}'
    return hashlib.sha256(blob.encode()).hexdigest()


@functools.lru_cache(maxsize=64)
def _key_head(provider: str, base_url: str) -> str:
    return (
        f'{{"base_url":{json.dumps(base_url.rstrip("/"), ensure_ascii=False)},'
        f'"provider":{json.dumps(provider, ensure_ascii=False)},'
    )


@dataclass(frozen=True, slots=True)
class CachedCall:
    """The stored outcome a hit reuses."""

    id: int
    response_text: str | None
    response: str | None
    finish_reason: str | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    continuation: str | None
    sent_params: str

    def to_response(self) -> ModelResponse:
        data = loads(self.response, {}) or {}
        completions = tuple(
            Completion(
                text=c.get("text", ""),
                finish_reason=c.get("finish_reason"),
                tool_calls=tuple(ToolCall(**tc) for tc in c.get("tool_calls", ())),
            )
            for c in data.get("completions", ())
        ) or (Completion(text=self.response_text or "", finish_reason=self.finish_reason),)
        return ModelResponse(
            completions=completions,
            usage=Usage(self.input_tokens, self.output_tokens, self.cached_tokens),
            continuation=Continuation(self.continuation) if self.continuation else None,
            sent_params=loads(self.sent_params, {}) or {},
            model=data.get("model"),
        )


def response_text_sql(calls: str = "calls") -> str:
    """SQL for an ok call's text: inline, or (stored once) its sample's output."""
    return (
        f"COALESCE({calls}.response_text, (SELECT output FROM samples "
        f"WHERE call_id={calls}.id AND {calls}.status='ok' LIMIT 1))"
    )


_CACHED_COLS = (
    f"id, request_hash, {response_text_sql()}, response, finish_reason, "
    "COALESCE(input_tokens,0), COALESCE(output_tokens,0), COALESCE(cached_tokens,0), "
    "continuation, sent_params"
)


def find_cached(store: Store, hashes: Iterable[str]) -> dict[str, CachedCall]:
    """The first ok call for each hash that has one (originals before hits)."""
    wanted = list(dict.fromkeys(hashes))
    found: dict[str, CachedCall] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = store.conn.execute(
            f"SELECT {_CACHED_COLS} FROM calls WHERE status='ok' AND request_hash IN "
            f"({','.join('?' * len(chunk))}) ORDER BY cache_hit, id",
            chunk,
        ).fetchall()
        for row in rows:
            if row[1] not in found:
                found[row[1]] = CachedCall(row[0], *row[2:])
    return found


def response_json(response: ModelResponse, *, full: bool = False) -> str:
    """The stored form of a response (completions with tool calls, reported model).

    One completion without tool calls is exactly ``response_text`` + ``finish_reason``,
    stored beside it, so only the model is kept here (``CachedCall.to_response`` reads
    it back from those columns): the text is stored once.  ``full`` keeps every field.
    """
    if not full and len(response.completions) == 1 and not response.completions[0].tool_calls:
        return dumps({"model": response.model})
    return dumps(
        {
            "completions": [
                {
                    "text": c.text,
                    "finish_reason": c.finish_reason,
                    "tool_calls": [
                        {"id": t.id, "name": t.name, "arguments": t.arguments} for t in c.tool_calls
                    ],
                }
                for c in response.completions
            ],
            "model": response.model,
        }
    )


# -- explaining a miss -------------------------------------------------------


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out or {prefix: []}
    return {prefix: value}


def request_sql(calls: str = "calls") -> str:
    """SQL for a call's request JSON, inline or in ``blobs`` (``calls``: the table's alias)."""
    return (
        f"(CASE WHEN {calls}.request_blob IS NULL THEN {calls}.request "
        f"ELSE (SELECT wb_inflate(data) FROM blobs WHERE hash={calls}.request_blob) END)"
    )


def key_parts(call: dict[str, Any], sample_index: int | None) -> dict[str, Any]:
    """The parts of a call's cache key, flattened for display and comparison."""
    parts: dict[str, Any] = {
        "provider": call["provider"],
        "base_url": (call["base_url"] or "").rstrip("/"),
        "sample_index": sample_index,
    }
    for k, v in _flatten(loads(call["request"], {})).items():
        parts[f"request.{k}"] = v
    return parts


def _difference(a: Any, b: Any, width: int = 50) -> tuple[str, str]:
    """Two values as short JSON, cut around where they first differ."""
    ja, jb = json.dumps(a, ensure_ascii=False), json.dumps(b, ensure_ascii=False)
    if len(ja) <= width and len(jb) <= width:
        return ja, jb
    at = next((i for i, (x, y) in enumerate(zip(ja, jb, strict=False)) if x != y), 0)
    start = max(0, at - 10)
    prefix = f"…(char {start})" if start else ""
    return prefix + ja[start : start + width], prefix + jb[start : start + width]


def explain(store: Store, run_id: int, item_key: str, *, scan: int = 2000) -> list[str]:
    """Lines saying what an item's cache key was and why its lookup hit or missed."""
    call = store.query_one(
        f"SELECT *, {request_sql()} AS request FROM calls "
        "WHERE run_id=? AND item_key=? ORDER BY id DESC LIMIT 1",
        (run_id, item_key),
    )
    if call is None:
        return [f"run {run_id} has no call for item '{item_key}'"]
    sample = store.query_one(
        "SELECT sample_index FROM samples WHERE run_id=? AND item_key=?", (run_id, item_key)
    )
    index = sample["sample_index"] if sample else None
    parts = key_parts(call, index)
    lines = [f"call {call['id']}  key {call['request_hash']}"]
    lines += [f"  {k} = {json.dumps(v, ensure_ascii=False)[:120]}" for k, v in parts.items()]
    if call["cache_hit"]:
        lines.append(f"HIT: reused call {call['cached_from']} (cost 0, no request sent)")
        return lines
    same = store.query(
        "SELECT id, status, created_at FROM calls WHERE request_hash=? AND id<>? ORDER BY id",
        (call["request_hash"], call["id"]),
    )
    earlier_ok = [r for r in same if r["status"] == CallStatus.OK and r["id"] < call["id"]]
    if earlier_ok:
        lines.append(
            f"MISS although call {earlier_ok[0]['id']} had the same key: "
            "it was written after this lookup (same batch) or the cache was bypassed"
        )
        return lines
    if any(r["status"] == CallStatus.ERROR and r["id"] < call["id"] for r in same):
        lines.append("MISS: earlier calls with this key all failed, and errors are never cached")
        return lines
    candidates = store.query(
        f"SELECT c.*, s.sample_index, {request_sql('c')} AS request "
        "FROM calls c LEFT JOIN samples s ON s.call_id=c.id "
        "WHERE c.status='ok' AND c.cache_hit=0 AND c.id<? AND c.provider=? AND c.model=? "
        "ORDER BY c.id DESC LIMIT ?",
        (call["id"], call["provider"], call["model"], scan),
    )
    if not candidates:
        lines.append(
            f"MISS: no earlier successful call to {call['provider']}:{call['model']} is stored"
        )
        return lines
    best: tuple[int, list[str], dict[str, Any]] | None = None
    for cand in candidates:
        other = key_parts(cand, cand["sample_index"])
        diff = sorted(k for k in parts.keys() | other.keys() if parts.get(k) != other.get(k))
        if best is None or len(diff) < len(best[1]):
            best = (int(cand["id"]), diff, other)
    assert best is not None
    cand_id, diff, other = best
    lines.append(f"MISS: the closest stored call is {cand_id}; its key differs in:")
    for k in diff[:20]:
        mine, theirs = _difference(parts.get(k), other.get(k))
        lines.append(f"  {k}: here {mine}, there {theirs}")
    if len(diff) > 20:
        lines.append(f"  ... and {len(diff) - 20} more")
    return lines
