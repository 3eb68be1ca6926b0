"""Run model-written Python in a separate, limited process.

``run_code(code, limits=..., entry="solution")`` starts ``python -I -B`` on
``child.py`` in a fresh temporary directory with an empty
environment, and returns a ``SandboxResult``: captured stdout, the entry
function's value (repr, a JSON-able form, and the answer text graders read),
and, when something went wrong, a one-line ``error`` with an ``error_kind``.
Every violation is an outcome, never an exception out of ``run_code``.

Limits: wall clock (enforced here), CPU seconds, address space, file size,
open files and processes (rlimits in the child), and the bytes of output
read back (pipes are read as they fill; the process is killed at the cap).
The child refuses file access outside its directory and the interpreter's
libraries, process spawning, sockets, and imports outside an allow-list
(see ``child.py``); when ``unshare`` can give it an empty network
namespace without privileges it runs inside one as well.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

CHILD_SCRIPT = Path(__file__).with_name("child.py")

ErrorKindName = Literal[
    "timeout",
    "memory",
    "output_limit",
    "forbidden_import",
    "forbidden_io",
    "forbidden_process",
    "network",
    "syntax",
    "exception",
    "no_result",
    "crash",
]
LimitName = Literal["wall_time", "cpu_time", "memory", "output"]

DEFAULT_MODULES: frozenset[str] = frozenset(
    {
        "__future__",
        "abc",
        "array",
        "bisect",
        "calendar",
        "cmath",
        "collections",
        "copy",
        "csv",
        "dataclasses",
        "datetime",
        "decimal",
        "enum",
        "fractions",
        "functools",
        "heapq",
        "io",
        "itertools",
        "json",
        "math",
        "mpmath",
        "numbers",
        "numpy",
        "operator",
        "pandas",
        "random",
        "re",
        "statistics",
        "string",
        "sympy",
        "textwrap",
        "time",
        "typing",
    }
)


@dataclass(frozen=True)
class Limits:
    """Resource limits for one program run."""

    wall_s: float = 10.0
    cpu_s: int = 5
    memory_mb: int = 1024  # address space; importing numpy, pandas and sympy fits in 256 MB
    output_bytes: int = 1_000_000  # stdout and stderr, each
    file_bytes: int = 10_000_000  # largest file the program may write in its directory
    open_files: int = 64
    processes: int = 0  # RLIMIT_NPROC; no forks or threads (ignored when running as root)
    modules: frozenset[str] = DEFAULT_MODULES
    network_namespace: bool = True  # use `unshare` when it works unprivileged


@dataclass(frozen=True)
class SandboxResult:
    """What a run produced.  ``error_kind`` is None exactly when it succeeded."""

    stdout: str
    result: Any = None  # JSON-able form of the entry's return value
    error: str | None = None
    error_kind: ErrorKindName | None = None
    limit_hit: LimitName | None = None
    duration_s: float = 0.0
    result_repr: str | None = None
    answer: str | None = None  # the value as answer text (LaTeX for sympy / fractions)
    result_type: str | None = None
    stderr: str = ""
    returncode: int | None = None
    violations: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    def to_json(self) -> dict[str, Any]:
        """A compact record for sample payloads (stdout/stderr cut to 2,000 characters)."""
        return {
            "ok": self.ok,
            "answer": self.answer,
            "result": self.result,
            "result_repr": self.result_repr,
            "result_type": self.result_type,
            "error": self.error,
            "error_kind": self.error_kind,
            "limit_hit": self.limit_hit,
            "duration_s": round(self.duration_s, 4),
            "stdout": self.stdout[:2000],
            "stderr": self.stderr[-2000:],
            "violations": list(self.violations),
        }


FileSpec = Mapping[str, str | os.PathLike[str]] | Iterable[str | os.PathLike[str]]


def run_code(
    code: str,
    *,
    limits: Limits = Limits(),
    entry: str | None = None,
    files: FileSpec | None = None,
    call: str | None = None,
) -> SandboxResult:
    """Run ``code``; if ``entry`` names a function, call it and return its value.

    ``files`` (name -> path, or paths) are made available read-only in the
    program's working directory under those names.  ``call`` is an alias of
    ``entry``.
    """
    started = time.monotonic()
    entry = entry or call
    workdir = tempfile.mkdtemp(prefix="wb-sandbox-")
    try:
        read_only = _link_files(workdir, files)
        result = _run_child(code, entry, limits, workdir, read_only, started)
    except OSError as exc:  # cannot even start: still an outcome
        result = SandboxResult(
            stdout="", error=f"sandbox failed to start: {exc}", error_kind="crash"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return replace(result, duration_s=time.monotonic() - started)


def run_many(
    codes: Sequence[str],
    *,
    limits: Limits = Limits(),
    entry: str | None = None,
    files: FileSpec | None = None,
    max_workers: int | None = None,
) -> list[SandboxResult]:
    """Run several programs concurrently (one process each), results in input order."""
    if not codes:
        return []
    workers = max_workers or max(1, min(len(codes), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda c: run_code(c, limits=limits, entry=entry, files=files), codes))


# -- internals ------------------------------------------------------------------


def _link_files(workdir: str, files: FileSpec | None) -> list[str]:
    """Symlink data files into the directory; the child may read but not write them."""
    if files is None:
        return []
    pairs = (
        list(files.items()) if isinstance(files, Mapping) else [(Path(p).name, p) for p in files]
    )
    read_only = []
    for name, source in pairs:
        target = Path(workdir, name)
        if target.parent.resolve() != Path(workdir).resolve():
            raise OSError(f"file name '{name}' must be a plain name")
        real = os.path.realpath(source)
        if not os.path.isfile(real):
            raise OSError(f"{source}: no such file")
        target.symlink_to(real)
        read_only.append(real)
    return read_only


@cache
def _unshare_prefix() -> tuple[str, ...]:
    """``unshare`` arguments for an empty network namespace, or () when unavailable."""
    exe = shutil.which("unshare")
    if exe is None or not sys.platform.startswith("linux"):
        return ()
    prefix = (exe, "--user", "--map-root-user", "--net", "--")
    try:
        probe = subprocess.run(
            [*prefix, "/bin/true"], capture_output=True, timeout=5, env={}, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    return prefix if probe.returncode == 0 else ()


def _child_env(workdir: str) -> dict[str, str]:
    """Nothing from the parent's environment: no keys, no HOME."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": workdir,
        # one thread each: thread pools would also trip RLIMIT_NPROC
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_MAX_THREADS": "1",
    }


def _run_child(
    code: str,
    entry: str | None,
    limits: Limits,
    workdir: str,
    read_only: list[str],
    started: float,
) -> SandboxResult:
    report_r, report_w = os.pipe()
    job = {
        "code": code,
        "entry": entry,
        "report_fd": report_w,
        "read_only": read_only,
        "allowed_modules": sorted(limits.modules),
        "limits": {
            "cpu_s": int(limits.cpu_s),
            "memory_bytes": int(limits.memory_mb) * 1024 * 1024,
            "file_bytes": int(limits.file_bytes),
            "open_files": int(limits.open_files),
            "processes": int(limits.processes),
        },
    }
    prefix = _unshare_prefix() if limits.network_namespace else ()
    argv = [*prefix, sys.executable, "-I", "-B", str(CHILD_SCRIPT)]
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=workdir,
            env=_child_env(workdir),
            pass_fds=(report_w,),
            start_new_session=True,  # its own process group, killed as a whole
        )
    finally:
        os.close(report_w)
    try:
        return _supervise(proc, json.dumps(job).encode(), report_r, limits, started)
    finally:
        if proc.returncode is None:  # not reaped yet, so its group id cannot be someone else's
            _kill_group(proc)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        proc.wait()


def _exit_fd(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits (Linux pidfd), if available."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _supervise(
    proc: subprocess.Popen[bytes], job: bytes, report_r: int, limits: Limits, started: float
) -> SandboxResult:
    """Feed the job, read the pipes up to their caps until the child is done, classify."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        proc.stdin.write(job)
        proc.stdin.close()
    except BrokenPipeError:
        pass  # the child died at start; its stderr says why
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    report = bytearray()
    caps = {fd: limits.output_bytes for fd in buffers} | {report_r: 64 * limits.output_bytes}
    deadline = started + limits.wall_s
    limit_hit: LimitName | None = None
    exit_fd = _exit_fd(proc.pid)
    with selectors.DefaultSelector() as sel:
        for fd in (*buffers, report_r):
            sel.register(fd, selectors.EVENT_READ)
        if exit_fd is not None:
            sel.register(exit_fd, selectors.EVENT_READ)
        while sel.get_map() and limit_hit is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                limit_hit = "wall_time"
                break
            for key, _ in sel.select(remaining):
                fd = int(key.fd)
                if fd == exit_fd:
                    # exited but not reaped: its group id is still ours, so anything it
                    # left behind (holding our pipes open) can be killed safely
                    sel.unregister(fd)
                    _kill_group(proc)
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    sel.unregister(fd)
                    continue
                target = buffers.get(fd, report)
                target += chunk
                if len(target) > caps[fd]:
                    del target[caps[fd] :]
                    limit_hit = "output"
                    break
    if exit_fd is not None:
        os.close(exit_fd)
    os.close(report_r)
    if limit_hit is None and exit_fd is None:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            limit_hit = "wall_time"
    if proc.returncode is None:
        _kill_group(proc)
    returncode = proc.wait()
    stdout = buffers[proc.stdout.fileno()].decode("utf-8", "replace")
    stderr = buffers[proc.stderr.fileno()].decode("utf-8", "replace")
    return _classify(stdout, stderr, bytes(report), returncode, limit_hit, limits)


def _classify(
    stdout: str,
    stderr: str,
    report: bytes,
    returncode: int,
    limit_hit: LimitName | None,
    limits: Limits,
) -> SandboxResult:
    base = SandboxResult(stdout=stdout, stderr=stderr, returncode=returncode)
    if limit_hit == "wall_time":
        return replace(
            base,
            error_kind="timeout",
            limit_hit=limit_hit,
            error=f"wall-clock limit of {limits.wall_s:g}s exceeded",
        )
    if limit_hit == "output":
        return replace(
            base,
            error_kind="output_limit",
            limit_hit=limit_hit,
            error=f"output exceeded {limits.output_bytes:,} bytes",
        )
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return replace(
            base,
            error_kind="timeout",
            limit_hit="cpu_time",
            error=f"CPU limit of {limits.cpu_s}s exceeded",
        )
    outcome = _parse_report(report)
    if outcome is None:
        if "MemoryError" in stderr:
            return replace(
                base,
                error_kind="memory",
                limit_hit="memory",
                error=f"memory limit of {limits.memory_mb} MB exceeded",
            )
        last = stderr.strip().splitlines()[-1:] or [f"exit status {returncode}"]
        return replace(base, error_kind="crash", error=f"program crashed: {last[0][:300]}")
    violations = tuple(f"{v['kind']}: {v['message']}" for v in outcome.get("violations", ()))
    value = outcome.get("value") or {}
    result = replace(
        base,
        result=value.get("json"),
        result_repr=value.get("repr"),
        answer=value.get("answer"),
        result_type=value.get("type"),
        violations=violations,
    )
    if outcome.get("status") == "error":
        kind = outcome.get("kind", "exception")
        hit: LimitName | None = "memory" if kind == "memory" else None
        error = outcome.get("error") or kind
        if kind == "memory":
            error = f"memory limit of {limits.memory_mb} MB exceeded ({error})"
        return replace(result, error_kind=kind, error=error, limit_hit=hit)
    if violations:  # the program caught the refusal and carried on: still a violation
        first = outcome["violations"][0]
        return replace(result, error_kind=first["kind"], error=first["message"])
    return result


def _parse_report(report: bytes) -> dict[str, Any] | None:
    line = report.decode("utf-8", "replace").strip()
    if not line:
        return None
    try:
        parsed = json.loads(line)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
