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
