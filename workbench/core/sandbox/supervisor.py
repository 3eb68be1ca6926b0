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
The barrier is an OS-level jail (``jail.py``: bubblewrap, every namespace,
an unprivileged uid, a private tmpfs folder, nothing of the home or the
workspace in view, its own PID namespace); where it is unavailable, an
``unshare`` network + PID namespace, or nothing, and the result says which
(``SandboxResult.isolation``).  Inside, as defence in depth, the child sets
rlimits and a syscall filter and refuses file access outside its directory
and the interpreter's libraries, process spawning, sockets, and imports
outside an allow-list (see ``child.py``).
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
from pathlib import Path
from typing import Any, Literal

from workbench.core.payloads import ExecPayload
from workbench.core.sandbox.jail import (
    CHILD_DIR,
    JAIL_DIR,
    Isolation,
    JailMount,
    bwrap_argv,
    jail_status,
    unshare_prefix,
)

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
    "tampering",
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
    folder_bytes: int = 100_000_000  # the program's private tmpfs under the jail
    jail: bool = True  # bubblewrap when it works (False: the pre-jail path, for comparison)
    network_namespace: bool = True  # without the jail: `unshare` when it works unprivileged
    syscall_filter: bool = True  # seccomp: no fork, exec or ptrace (Linux x86-64 / arm64)


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
    isolation: Isolation = Isolation.RLIMITS_ONLY  # what it ran under
    syscall_filter: bool = False  # whether the seccomp filter was installed

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    def to_json(self) -> ExecPayload:
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
            "isolation": str(self.isolation),
            "syscall_filter": self.syscall_filter,
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
    isolation = isolation_for(limits)
    workdir: str | None = None
    try:
        pairs = _file_pairs(files)
        if isolation is Isolation.BWRAP:
            launch = _jailed(limits, pairs)
        else:
            workdir = tempfile.mkdtemp(prefix="wb-sandbox-")
            launch = _unjailed(limits, workdir, pairs, isolation)
        result = _run_child(code, entry, limits, launch, started)
    except OSError as exc:  # cannot even start: still an outcome
        result = SandboxResult(
            stdout="", error=f"sandbox failed to start: {exc}", error_kind="crash"
        )
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    return replace(result, duration_s=time.monotonic() - started, isolation=isolation)


def isolation_for(limits: Limits) -> Isolation:
    """The isolation a run under ``limits`` gets on this machine (probed once)."""
    if limits.jail:
        status = jail_status()
        if status.isolation is Isolation.BWRAP:
            return Isolation.BWRAP
    if limits.network_namespace and unshare_prefix():
        return Isolation.NAMESPACE
    return Isolation.RLIMITS_ONLY


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


@dataclass(frozen=True)
class _Launch:
    """How to start the child: command, folder, environment, its read-only files."""

    argv: list[str]
    cwd: str
    env: dict[str, str]
    read_only: list[str]  # paths as the child sees them
    signal_as_status: bool  # bwrap reports a child killed by signal N as exit 128 + N


def _file_pairs(files: FileSpec | None) -> list[tuple[str, str]]:
    """(plain name, real path) of each data file, checked before anything starts."""
    if files is None:
        return []
    pairs = (
        list(files.items()) if isinstance(files, Mapping) else [(Path(p).name, p) for p in files]
    )
    checked = []
    for name, source in pairs:
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise OSError(f"file name '{name}' must be a plain name")
        real = os.path.realpath(source)
        if not os.path.isfile(real):
            raise OSError(f"{source}: no such file")
        checked.append((name, real))
    return checked


def _jailed(limits: Limits, pairs: list[tuple[str, str]]) -> _Launch:
    """bwrap around the child: its folder is a private tmpfs, data files bound read-only."""
    status = jail_status()
    assert status.bwrap is not None
    mounts = [JailMount(real, f"{JAIL_DIR}/{name}") for name, real in pairs]
    argv = bwrap_argv(
        status.bwrap,
        folder_bytes=limits.folder_bytes,
        mounts=mounts,
        child=CHILD_SCRIPT,
        env=_child_env(JAIL_DIR),
    )
    return _Launch(
        argv=[*argv, "-I", "-B", f"{CHILD_DIR}/{CHILD_SCRIPT.name}"],
        cwd="/",
        env=_child_env(JAIL_DIR),  # bwrap's own environment too: it is pid 1 in the jail
        read_only=[m.target for m in mounts],
        signal_as_status=True,
    )


def _unjailed(
    limits: Limits, workdir: str, pairs: list[tuple[str, str]], isolation: Isolation
) -> _Launch:
    """The child in a host temporary folder, data files symlinked in."""
    for name, real in pairs:
        Path(workdir, name).symlink_to(real)
    prefix = unshare_prefix() if isolation is Isolation.NAMESPACE else ()
    return _Launch(
        argv=[*prefix, sys.executable, "-I", "-B", str(CHILD_SCRIPT)],
        cwd=workdir,
        env=_child_env(workdir),
        read_only=[real for _, real in pairs],
        signal_as_status=False,
    )


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
    launch: _Launch,
    started: float,
) -> SandboxResult:
    report_r, report_w = os.pipe()
    job = {
        "code": code,
        "entry": entry,
        "report_fd": report_w,
        "read_only": launch.read_only,
        "allowed_modules": sorted(limits.modules),
        "syscall_filter": bool(limits.syscall_filter),
        "limits": {
            "cpu_s": int(limits.cpu_s),
            "memory_bytes": int(limits.memory_mb) * 1024 * 1024,
            "file_bytes": int(limits.file_bytes),
            "open_files": int(limits.open_files),
            "processes": int(limits.processes),
        },
    }
    try:
        proc = subprocess.Popen(
            launch.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=launch.cwd,
            env=launch.env,
            pass_fds=(report_w,),  # and nothing else: close_fds stays on
            start_new_session=True,  # its own process group, killed as a whole
        )
    finally:
        os.close(report_w)
    try:
        result = _supervise(proc, json.dumps(job).encode(), report_r, limits, started, launch)
    finally:
        if proc.returncode is None:  # not reaped yet, so its group id cannot be someone else's
            _kill_group(proc)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        proc.wait()
    return result


def _exit_fd(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits (Linux pidfd), if available."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _supervise(
    proc: subprocess.Popen[bytes],
    job: bytes,
    report_r: int,
    limits: Limits,
    started: float,
    launch: _Launch,
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
    if launch.signal_as_status and returncode > 128:
        returncode = 128 - returncode  # as if we had waited on the child itself
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
    # killed at the hard limit, or the child's own SIGXCPU handler at the soft one
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGXCPU):
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
        syscall_filter=bool(outcome.get("syscall_filter")),
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
    """Kill the child's process group, and the init of any namespace it started first.

    Under bwrap or ``unshare --fork`` the program runs as init of its own PID namespace
    in another session; it may have cleared its parent-death signal, so it is killed
    directly (SIGKILL from outside reaches a namespace init), which ends everything
    inside it.
    """
    for pid in _children(proc.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (its parent is alive and unreaped, so no pid is reused)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


# -- long-lived programs under the same jail ------------------------------------------------

SCRIPT_DIR = "/opt/workbench-script"  # a long-lived program's own modules inside the jail


@dataclass(frozen=True)
class ScriptLaunch:
    """How to start a trusted long-lived script (a tool worker) under a sandbox child's jail.

    The script reads ``child_path`` to reuse the child's rlimits, syscall filter and
    audit hook; ``workdir`` is a host folder to remove afterwards (unjailed runs only).
    """

    argv: list[str]
    cwd: str
    env: dict[str, str]
    read_only: list[str]  # data files as the script sees them
    files: dict[str, str]  # name -> path as the script sees it
    child_path: str  # child.py as the script sees it
    isolation: Isolation
    signal_as_status: bool
    workdir: str | None


def script_launch(
    script: Path,
    *,
    limits: Limits = Limits(),
    files: FileSpec | None = None,
    modules: Sequence[Path] = (),
) -> ScriptLaunch:
    """Start ``script`` (with ``modules`` beside it) the way ``run_code`` starts its child.

    The same jail, empty environment and read-only data files; ``OSError`` when a file
    is missing.  The caller starts it with ``subprocess.Popen(..., start_new_session=True)``
    and ends it with ``kill_process_group``.
    """
    isolation = isolation_for(limits)
    pairs = _file_pairs(files)
    if isolation is Isolation.BWRAP:
        status = jail_status()
        assert status.bwrap is not None
        mounts = [JailMount(real, f"{JAIL_DIR}/{name}") for name, real in pairs]
        mounts += [JailMount(str(m), f"{SCRIPT_DIR}/{m.name}") for m in (script, *modules)]
        env = _child_env(JAIL_DIR)
        argv = bwrap_argv(
            status.bwrap,
            folder_bytes=limits.folder_bytes,
            mounts=mounts,
            child=CHILD_SCRIPT,
            env=env,
        )
        return ScriptLaunch(
            argv=[*argv, "-I", "-B", f"{SCRIPT_DIR}/{script.name}"],
            cwd="/",
            env=env,
            read_only=[f"{JAIL_DIR}/{name}" for name, _ in pairs],
            files={name: f"{JAIL_DIR}/{name}" for name, _ in pairs},
            child_path=f"{CHILD_DIR}/{CHILD_SCRIPT.name}",
            isolation=isolation,
            signal_as_status=True,
            workdir=None,
        )
    workdir = tempfile.mkdtemp(prefix="wb-script-")
    launch = _unjailed(limits, workdir, pairs, isolation)
    return ScriptLaunch(
        argv=[*launch.argv[:-1], str(script)],  # the script instead of child.py
        cwd=workdir,
        env=launch.env,
        read_only=launch.read_only,
        files={name: str(Path(workdir, name)) for name, _ in pairs},
        child_path=str(CHILD_SCRIPT),
        isolation=isolation,
        signal_as_status=False,
        workdir=workdir,
    )


def kill_process_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill a process started in its own session, and the init of any namespace it started."""
    if proc.returncode is None:
        _kill_group(proc)
