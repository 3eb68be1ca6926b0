"""A loopback HTTP server that speaks the providers' wire formats, for tests and benchmarks.

It runs aiohttp in a background thread on 127.0.0.1 (a free port) and answers:

- OpenAI ``POST /v1/chat/completions`` and ``POST /v1/completions``
- Anthropic ``POST /v1/messages``
- Cohere v2 ``POST /v2/chat``
- OpenAI ``GET /v1/models`` (503 while ``healthy`` is false: an endpoint pool's probe)

Replies come from a *responder* (``(path, request_json) -> StubReply | str``);
the default one is deterministic and ends with "The answer is 42."  Faults are
injected for the next N requests or by a predicate (429 with Retry-After, 5xx,
a hang past the client's timeout, a 200 with malformed JSON, a dropped
connection, or any error status).  Every request is logged (path, headers,
body, outcome) so tests can count paid calls and check what reached the wire.

Point the SDKs at it with ``openai_base_url`` / ``anthropic_base_url`` /
``cohere_base_url``.  The JSON shapes live in ``tests/stub_wire.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests import stub_wire as wire
from tests.stub_wire import (
    Responder,
    StubReply,
    StubToolCall,
    WireError,
    default_responder,
    error_response,
    words,
)

__all__ = ["StubReply", "StubServer", "StubToolCall", "default_responder", "words"]

Predicate = Callable[[str, dict[str, Any]], bool]

FAULT_KINDS = ("rate_limit", "status", "hang", "malformed", "drop")

#: Claude model names (prefixes) that answer an assistant prefill with a 400, as newer models do.
DEFAULT_PREFILL_REJECTING = ("claude-opus-4-6", "claude-sonnet-4-6", "claude-opus-4-7")


@dataclass
class Fault:
    kind: str  # one of FAULT_KINDS
    status: int = 500
    retry_after: str | None = None  # the Retry-After header value (seconds)
    retry_after_ms: str | None = None
    remaining: int | None = 1  # None: until cleared
    when: Predicate | None = None
    message: str = "injected fault"


@dataclass(frozen=True)
class LoggedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    outcome: str  # "ok" or the fault kind
    at: float = field(default_factory=time.monotonic)

    @property
    def model(self) -> str | None:
        m = self.body.get("model")
        return m if isinstance(m, str) else None


class StubServer:
    """Start with ``start()`` (or as a context manager); ``url`` is ``http://127.0.0.1:PORT``."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        responder: Responder | None = None,
        prefill_rejecting: Collection[str] = DEFAULT_PREFILL_REJECTING,
        hang_s: float = 30.0,
        log_requests: bool = True,
    ) -> None:
        self.latency = latency
        self.responder: Responder = responder or default_responder
        self.prefill_rejecting = tuple(prefill_rejecting)
        self.hang_s = hang_s
        self.log_requests = log_requests
        self.healthy = True  # GET /v1/models answers 200 (else 503): an endpoint pool's probe
        self.probes = 0
        self._lock = threading.RLock()  # reentrant: wait_for conditions may read counters
        self._changed = threading.Condition(self._lock)
        self._faults: list[Fault] = []
        self._log: list[LoggedRequest] = []
        self.by_path: Counter[str] = Counter()
        self.by_model: Counter[str] = Counter()
        self.ok_by_path: Counter[str] = Counter()
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._release: asyncio.Event | None = None

    # -- lifecycle ---------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    @property
    def cohere_base_url(self) -> str:
        return self.url

    def start(self) -> StubServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._setup())
            except BaseException as exc:  # surfaced to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._teardown())
            loop.close()

        self._thread = threading.Thread(target=serve, name="stub-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _setup(self) -> None:
        self._release = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        server: Any = site._server  # an asyncio.Server once started
        self.port = server.sockets[0].getsockname()[1]

    async def _teardown(self) -> None:
        if self._release is not None:
            self._release.set()  # let hanging handlers finish
        if self._runner is not None:
            await self._runner.cleanup()

    # -- faults ------------------------------------------------------------

    def fail_next(
        self,
        n: int,
        kind: str,
        *,
        status: int | None = None,
        retry_after: float | str | None = None,
        retry_after_ms: float | str | None = None,
        message: str = "injected fault",
    ) -> None:
        """Make the next ``n`` requests fail with ``kind`` (see FAULT_KINDS)."""
        self._add(kind, n, None, status, retry_after, retry_after_ms, message)

    def fail_when(
        self,
        predicate: Predicate,
        kind: str,
        *,
        times: int | None = None,
        status: int | None = None,
        retry_after: float | str | None = None,
        retry_after_ms: float | str | None = None,
        message: str = "injected fault",
    ) -> None:
        """Fail requests matching ``predicate(path, body)`` (``times`` of them, or all)."""
        self._add(kind, times, predicate, status, retry_after, retry_after_ms, message)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add(
        self,
        kind: str,
        remaining: int | None,
        when: Predicate | None,
        status: int | None,
        retry_after: float | str | None,
        retry_after_ms: float | str | None,
        message: str,
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {FAULT_KINDS}")
        default_status = {"rate_limit": 429, "status": 500}.get(kind, 200)
        fault = Fault(
            kind=kind,
            status=status if status is not None else default_status,
            retry_after=None if retry_after is None else str(retry_after),
            retry_after_ms=None if retry_after_ms is None else str(retry_after_ms),
            remaining=remaining,
            when=when,
            message=message,
        )
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, path: str, body: dict[str, Any]) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.when is not None and not fault.when(path, body):
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    # -- counters ----------------------------------------------------------

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_path.values())

    @property
    def paid(self) -> int:
        """Requests answered with a successful completion (what a provider would bill)."""
        with self._lock:
            return sum(self.ok_by_path.values())

    def reset(self) -> None:
        with self._lock:
            self._log.clear()
            self.by_path.clear()
            self.by_model.clear()
            self.ok_by_path.clear()

    def wait_for(self, condition: Callable[[StubServer], bool], timeout: float = 10.0) -> bool:
        """Block until ``condition(self)`` holds after a request arrives (or time runs out)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> bool:
        return self.wait_for(lambda s: sum(s.by_path.values()) >= n, timeout)

    def _record(
        self, path: str, headers: dict[str, str], body: dict[str, Any], outcome: str
    ) -> None:
        with self._changed:
            self.by_path[path] += 1
            model = body.get("model")
            if isinstance(model, str):
                self.by_model[model] += 1
            if outcome == "ok":
                self.ok_by_path[path] += 1
            if self.log_requests:
                self._log.append(LoggedRequest(path, headers, body, outcome))
            self._changed.notify_all()

    # -- HTTP --------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_unparseable": raw.decode(errors="replace")}
        if not isinstance(body, dict):
            body = {"_body": body}
        headers = dict(request.headers) if self.log_requests else {}
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = self._take_fault(path, body)
        if fault is not None:
            self._record(path, headers, body, fault.kind)
            return await self._fault_response(request, path, fault)
        try:
            response = self._answer(path, body)
        except WireError as err:
            self._record(path, headers, body, f"error {err.status}")
            return error_response(path, err.status, err.message)
        self._record(path, headers, body, "ok")
        return response

    async def _models(self, request: web.Request) -> web.Response:
        with self._changed:
            self.probes += 1
            self._changed.notify_all()
        if not self.healthy:
            return error_response(request.path, 503, "replica unavailable")
        model = {"id": "stub-model", "object": "model", "created": 0, "owned_by": "stub"}
        return web.json_response({"object": "list", "data": [model]})

    async def _fault_response(
        self, request: web.Request, path: str, fault: Fault
    ) -> web.StreamResponse:
        if fault.kind == "drop":
            if request.transport is not None:
                request.transport.abort()  # close the socket: no status line, no body
            raise asyncio.CancelledError
        if fault.kind == "hang":
            assert self._release is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), self.hang_s)
            return error_response(path, 504, "hung")
        if fault.kind == "malformed":
            return web.Response(
                status=200, text='{"id": "broken", "choices": [', content_type="application/json"
            )
        extra = {}
        if fault.retry_after is not None:
            extra["retry-after"] = fault.retry_after
        if fault.retry_after_ms is not None:
            extra["retry-after-ms"] = fault.retry_after_ms
        return error_response(path, fault.status, fault.message, extra)

    def _answer(self, path: str, body: dict[str, Any]) -> web.Response:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise WireError(400, "model is required")
        if path == "/v1/chat/completions":
            return web.json_response(wire.openai_chat(self, path, body, model))
        if path == "/v1/completions":
            return web.json_response(wire.openai_completions(self, path, body, model))
        if path == "/v1/messages":
            return web.json_response(wire.anthropic(self, path, body, model))
        if path == "/v2/chat":
            return web.json_response(wire.cohere(self, path, body, model))
        raise WireError(404, f"no route {path}")

    def reply(self, path: str, body: dict[str, Any]) -> StubReply:
        reply = self.responder(path, body)
        if isinstance(reply, str):
            reply = StubReply(text=reply)
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        text, finish = reply.text, reply.finish
        stops = body.get("stop") or body.get("stop_sequences") or []
        for stop in [stops] if isinstance(stops, str) else stops:
            if stop and stop in text:
                text, finish = text[: text.index(stop)], finish or "stop"
        if isinstance(max_tokens, int) and words(text) > max_tokens:
            text, finish = " ".join(text.split()[:max_tokens]), "length"
        finish = finish or ("tool_calls" if reply.tool_calls else "stop")
        return StubReply(text, reply.tool_calls, finish, reply.cached_tokens)

    def next_id(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq
