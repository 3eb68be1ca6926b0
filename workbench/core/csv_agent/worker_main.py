"""The tool worker's process: load one table once, then serve tool calls as JSON lines.

Started by ``worker.py`` through ``sandbox.script_launch``: inside the sandbox's
jail, with an empty environment and the table file read-only.  It imports nothing
from ``workbench``: it loads the sandbox child (for its rlimits, syscall filter and
audit hook) and its sibling modules ``tools`` and ``render`` by path.

Protocol: the first stdin line is the job (table, read options, limits); the worker
answers ``{"ready": true, ...}`` and then, per request line ``{"id", "op": "call",
"conv", "tool", "args"}``, one line ``{"id", "result"}``.  ``{"op": "drop", "conv"}``
forgets a conversation's frames.  Replies go to the original stdout; anything a
library prints goes to stderr.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import os
import resource
import sys
from typing import Any

PACKAGE = "csv_worker_pkg"


def _load_child(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("sandbox_child", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sandbox_child"] = module
    spec.loader.exec_module(module)
    return module


def _load_tools() -> Any:
    """``tools`` (and ``render``) as a package of this folder: their relative imports work."""
    folder = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.machinery.ModuleSpec(PACKAGE, None, is_package=True)
    package = importlib.util.module_from_spec(spec)
    package.__path__ = [folder]
    sys.modules[PACKAGE] = package
    return importlib.import_module(f"{PACKAGE}.tools")


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # a library's print() cannot corrupt the replies
    sys.stdout = sys.stderr
    job = json.loads(sys.stdin.readline())
    child = _load_child(job["child_path"])
    limits = job["limits"]
    # the CPU limit is per call: a generous hard limit, the soft one moved before each call
    child.set_limits({**limits, "cpu_s": int(job["cpu_budget_s"])})
    tools = _load_tools()
    import pandas as pd

    frame = pd.read_csv(job["table"], **job["read_csv"])
    guard = child.Guard(
        workdir=os.getcwd(),
        # its own modules too: a warning's traceback reads their source lines
        read_roots=[*child.library_roots(), os.path.dirname(os.path.abspath(__file__))],
        read_only=job.get("read_only", ()),
        allowed_modules=job["allowed_modules"],
    )
    filtered = child.install_syscall_filter() if job.get("syscall_filter", True) else False
    child._disable_fork_exec(guard)
    sys.addaudithook(guard.audit)
    conversations: dict[str, Any] = {}
    per_call_cpu = float(job["cpu_per_call_s"])
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    ready = {
        "ready": True,
        "rows": int(frame.shape[0]),
        "syscall_filter": filtered,
        "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    out.write(json.dumps(ready) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        op = request.get("op")
        if op == "drop":
            conversations.pop(str(request["conv"]), None)
            continue
        if op == "stats":
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            out.write(json.dumps({"id": request["id"], "max_rss_kb": rss}) + "\n")
            continue
        conv = str(request["conv"])
        frames = conversations.get(conv)
        if frames is None:
            frames = tools.Frames(
                frame, max_frames=int(job["max_frames"]), frame_mb=float(job["frame_mb"])
            )
            conversations[conv] = frames
        soft = min(int(_cpu_used() + per_call_cpu) + 1, hard - 1)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))  # before the guard is on
        guard.active = True
        try:
            result = tools.run_tool(frames, request["tool"], request["args"])
        finally:
            guard.active = False
        if guard.violations:
            kind, message = guard.violations[-1]
            guard.violations.clear()
            result = {"kind": "error", "is_error": True, "error": message, "error_kind": kind}
        try:
            reply = json.dumps({"id": request["id"], "result": result}, allow_nan=False)
        except (TypeError, ValueError) as exc:  # a value json_safe missed: still one line
            error = {"kind": "error", "is_error": True, "error": str(exc), "error_kind": "crash"}
            reply = json.dumps({"id": request["id"], "result": error})
        out.write(reply + "\n")
    out.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
