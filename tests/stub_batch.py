"""Stand-ins for batch runners: ``vllm run-batch`` over a JSONL shard, in its output shape.

``run_batch_file`` reads OpenAI-batch input lines and writes one output line per
input line (``{"id", "custom_id", "response": {"status_code", "request_id",
"body"}, "error"}``), the bodies from ``tests/stub_wire.py`` (the same shapes the
loopback stub serves), in any order.  Every custom id answered is counted in
``billed`` so tests can check that nothing is paid twice.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

from tests import stub_wire as wire
from tests.stub_wire import Responder, StubReply, default_responder


class ReplySource:
    """What ``stub_wire``'s body builders need: replies and ids, no HTTP."""

    prefill_rejecting: tuple[str, ...] = ()

    def __init__(self, responder: Responder = default_responder) -> None:
        self.responder = responder
        self._seq = 0
        self.billed: Counter[str] = Counter()

    def reply(self, path: str, body: dict[str, Any]) -> StubReply:
        reply = self.responder(path, body)
        return StubReply(text=reply) if isinstance(reply, str) else reply

    def next_id(self) -> int:
        self._seq += 1
        return self._seq

    def body(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        model = str(body.get("model", ""))
        if url.endswith("/chat/completions"):
            return wire.openai_chat(self, url, body, model)
        if url.endswith("/completions"):
            return wire.openai_completions(self, url, body, model)
        if url.endswith("/messages"):
            return wire.anthropic(self, url, body, model)
        raise ValueError(f"no route {url}")


def run_batch_file(
    src: ReplySource,
    in_path: Path,
    out_path: Path,
    *,
    shuffle: bool = True,
    fail: Collection[str] = (),
    only: int | None = None,
) -> int:
    """``vllm run-batch -i in_path -o out_path``: answer every line (``fail``: a 500 for
    those custom ids; ``only``: the first N lines, as a node that died part way)."""
    lines = [json.loads(t) for t in in_path.read_text().splitlines() if t.strip()]
    if only is not None:
        lines = lines[:only]
    if shuffle:
        random.Random(7).shuffle(lines)
    with out_path.open("w") as f:
        for n, line in enumerate(lines):
            cid = line["custom_id"]
            if cid in fail:
                response = {
                    "status_code": 500,
                    "request_id": f"req-{n}",
                    "body": {"error": {"message": "server exploded", "type": "server_error"}},
                }
            else:
                src.billed[cid] += 1
                response = {
                    "status_code": 200,
                    "request_id": f"req-{n}",
                    "body": src.body(line["url"], line["body"]),
                }
            out = {"id": f"vllm-{n}", "custom_id": cid, "response": response, "error": None}
            f.write(json.dumps(out) + "\n")
    return len(lines)


# -- loopback stubs of the OpenAI Batch and Anthropic Message Batches APIs -----------


class BatchAPIStub:
    """OpenAI ``/v1/files``, ``/v1/batches`` and Anthropic ``/v1/messages/batches`` on 127.0.0.1.

    A batch moves one step per retrieve (``steps`` retrieves until it ends).  Scripts:
    ``fail_ids`` answer a 500 line (OpenAI: in the error file; Anthropic: ``errored``);
    ``expire_after`` ends a batch ``expired`` after that many results; ``reject_lines``
    fails validation (OpenAI ``failed`` with ``errors.data``); ``token_limit`` refuses
    the next N creates; ``not_found_first`` answers 404 to each batch's first retrieve.
    ``billed`` counts every custom id answered (paid) across batches; ``fail_all`` fails
    every line; sync chat completions are answered too (``sync_calls``).
    """

    def __init__(self, steps: int = 2) -> None:
        self.src = ReplySource()
        self.steps = steps
        self.fail_ids: set[str] = set()
        self.fail_all = False  # every line answers a 500
        self.sync_calls = 0  # POST /v1/chat/completions answered (a sync fallback)
        self.expire_after: int | None = None
        self.reject_lines: dict[int, str] = {}
        self.token_limit = 0
        self.not_found_first = False
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.requests: dict[str, list[dict[str, Any]]] = {}
        self.creates = 0
        self.port = 0
        self._seq = 0
        self._thread: Any = None
        self._loop: Any = None
        self._runner: Any = None

    @property
    def billed(self) -> Counter[str]:
        return self.src.billed

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BatchAPIStub:
        import asyncio
        import threading

        from aiohttp import web

        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application(client_max_size=512 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        import asyncio

        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def _id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}_{self._seq:06d}"

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        path, method = request.path, request.method
        parts = path.strip("/").split("/")
        if path == "/v1/chat/completions" and method == "POST":  # sync calls, for fallbacks
            self.sync_calls += 1
            return web.json_response(self.src.body(path, await request.json()))
        if path == "/v1/files" and method == "POST":
            form = await request.post()
            upload = form["file"]
            fid = self._id("file")
            self.files[fid] = upload.file.read()
            return web.json_response(
                {
                    "id": fid,
                    "object": "file",
                    "purpose": "batch",
                    "bytes": len(self.files[fid]),
                    "created_at": 0,
                    "filename": upload.filename,
                    "status": "processed",
                }
            )
        if path == "/v1/batches" and method == "POST":
            body = await request.json()
            if self.token_limit:
                self.token_limit -= 1
                return web.json_response(
                    {
                        "error": {
                            "message": "Enqueued token limit reached",
                            "type": "invalid_request_error",
                            "code": "token_limit_exceeded",
                        }
                    },
                    status=429,
                )
            lines = [
                json.loads(t) for t in self.files[body["input_file_id"]].decode().splitlines() if t
            ]
            bid = self._id("batch")
            self.creates += 1
            self.requests[bid] = lines
            self.batches[bid] = {
                "id": bid,
                "object": "batch",
                "endpoint": body["endpoint"],
                "input_file_id": body["input_file_id"],
                "completion_window": "24h",
                "status": "validating",
                "created_at": int(time.time()),
                "expires_at": int(time.time()) + 86400,
                "metadata": body.get("metadata"),
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "errors": None,
                "output_file_id": None,
                "error_file_id": None,
                "_polls": 0,
                "_kind": "openai",
            }
            return web.json_response(self._public(self.batches[bid]))
        if path == "/v1/batches" and method == "GET":
            data = [
                self._public(b) for b in reversed(self.batches.values()) if b["_kind"] == "openai"
            ]
            return web.json_response({"object": "list", "data": data, "has_more": False})
        if parts[:2] == ["v1", "batches"] and len(parts) == 3:
            return self._retrieve(parts[2])
        if parts[:2] == ["v1", "batches"] and parts[3:] == ["cancel"]:
            self.batches[parts[2]]["_cancel"] = True
            return web.json_response(self._public(self.batches[parts[2]]))
        if parts[:2] == ["v1", "files"] and parts[3:] == ["content"]:
            return web.Response(body=self.files[parts[2]], content_type="application/jsonl")
        if path == "/v1/messages/batches" and method == "POST":
            body = await request.json()
            bid = self._id("msgbatch")
            self.creates += 1
            self.requests[bid] = [
                {"custom_id": r["custom_id"], "url": "/v1/messages", "body": r["params"]}
                for r in body["requests"]
            ]
            self.batches[bid] = {
                "id": bid,
                "type": "message_batch",
                "processing_status": "in_progress",
                "created_at": _iso(time.time()),
                "expires_at": _iso(time.time() + 86400),
                "ended_at": None,
                "archived_at": None,
                "cancel_initiated_at": None,
                "results_url": None,
                "request_counts": {
                    "processing": len(body["requests"]),
                    "succeeded": 0,
                    "errored": 0,
                    "canceled": 0,
                    "expired": 0,
                },
                "_polls": 0,
                "_kind": "anthropic",
            }
            return web.json_response(self._public(self.batches[bid]))
        if path == "/v1/messages/batches" and method == "GET":
            data = [
                self._public(b)
                for b in reversed(self.batches.values())
                if b["_kind"] == "anthropic"
            ]
            return web.json_response(
                {"data": data, "has_more": False, "first_id": None, "last_id": None}
            )
        if parts[:3] == ["v1", "messages", "batches"] and len(parts) == 4:
            return self._retrieve(parts[3])
        if parts[:3] == ["v1", "messages", "batches"] and parts[4:] == ["cancel"]:
            self.batches[parts[3]]["_cancel"] = True
            return web.json_response(self._public(self.batches[parts[3]]))
        if parts[:3] == ["v1", "messages", "batches"] and parts[4:] == ["results"]:
            text = "".join(json.dumps(r) + "\n" for r in self.results[parts[3]])
            return web.Response(text=text, content_type="application/x-jsonl")
        return web.json_response({"error": {"message": f"no route {method} {path}"}}, status=404)

    @staticmethod
    def _public(b: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in b.items() if not k.startswith("_")}

    def _retrieve(self, bid: str) -> Any:
        from aiohttp import web

        b = self.batches.get(bid)
        if b is None:
            return web.json_response(
                {"error": {"message": "not found", "type": "not_found_error"}}, status=404
            )
        b["_polls"] += 1
        if self.not_found_first and b["_polls"] == 1:
            return web.json_response(
                {"error": {"message": "not found", "type": "not_found_error"}}, status=404
            )
        done = b.get("_cancel") or b["_polls"] > self.steps
        if b["_kind"] == "openai" and b["status"] not in (
            "completed",
            "expired",
            "cancelled",
            "failed",
        ):
            b["status"] = "in_progress"
            if done:
                self._finish_openai(b)
        elif b["_kind"] == "anthropic" and b["processing_status"] != "ended" and done:
            self._finish_anthropic(b)
        return web.json_response(self._public(b))

    def _finish_openai(self, b: dict[str, Any]) -> None:
        lines = self.requests[b["id"]]
        if self.reject_lines:
            b["status"] = "failed"
            b["errors"] = {
                "object": "list",
                "data": [
                    {"code": "invalid_request", "message": m, "line": n}
                    for n, m in self.reject_lines.items()
                ],
            }
            return
        stop = len(lines) if self.expire_after is None else self.expire_after
        if b.get("_cancel"):
            stop = len(lines) // 2
        out, err = [], []
        for n, line in enumerate(reversed(lines)):  # out of order
            cid = line["custom_id"]
            if n >= stop:
                code = "batch_cancelled" if b.get("_cancel") else "batch_expired"
                err.append(
                    {
                        "id": f"r{n}",
                        "custom_id": cid,
                        "response": None,
                        "error": {"code": code, "message": "not run"},
                    }
                )
            elif self.fail_all or cid in self.fail_ids:
                err.append(
                    {
                        "id": f"r{n}",
                        "custom_id": cid,
                        "response": {
                            "status_code": 500,
                            "request_id": "x",
                            "body": {"error": {"message": "server exploded"}},
                        },
                        "error": None,
                    }
                )
            else:
                self.billed[cid] += 1
                out.append(
                    {
                        "id": f"r{n}",
                        "custom_id": cid,
                        "response": {
                            "status_code": 200,
                            "request_id": "x",
                            "body": self.src.body(line["url"], line["body"]),
                        },
                        "error": None,
                    }
                )
        b["status"] = (
            "cancelled"
            if b.get("_cancel")
            else ("expired" if self.expire_after is not None else "completed")
        )
        for key, rows in (("output_file_id", out), ("error_file_id", err)):
            if rows:
                fid = self._id("file")
                self.files[fid] = "".join(json.dumps(r) + "\n" for r in rows).encode()
                b[key] = fid
        b["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(err)}

    def _finish_anthropic(self, b: dict[str, Any]) -> None:
        lines = self.requests[b["id"]]
        stop = len(lines) if self.expire_after is None else self.expire_after
        if b.get("_cancel"):
            stop = len(lines) // 2
        results, counts = (
            [],
            {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
        )
        for n, line in enumerate(reversed(lines)):
            cid = line["custom_id"]
            if n >= stop:
                kind = "canceled" if b.get("_cancel") else "expired"
                result: dict[str, Any] = {"type": kind}
            elif self.fail_all or cid in self.fail_ids:
                kind = "errored"
                result = {
                    "type": "errored",
                    "error": {
                        "type": "error",
                        "error": {"type": "overloaded_error", "message": "Overloaded"},
                    },
                }
            else:
                kind = "succeeded"
                self.billed[cid] += 1
                result = {
                    "type": "succeeded",
                    "message": self.src.body("/v1/messages", line["body"]),
                }
            counts[kind] += 1
            results.append({"custom_id": cid, "result": result})
        self.results[b["id"]] = results
        b.update(
            processing_status="ended",
            request_counts=counts,
            ended_at=_iso(time.time()),
            results_url=f"{self.url}/v1/messages/batches/{b['id']}/results",
        )


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
