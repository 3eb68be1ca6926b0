"""The sandbox's child process: set limits, install guards, run one program.

Run as ``python -I -B child.py`` by ``workbench.core.sandbox.supervisor``; it
reads its job (code, entry, policy) as JSON from stdin and writes one JSON
line describing the outcome to a pipe whose fd number is in the job.  The
program's own stdout/stderr go to the parent's capped pipes.

It imports nothing from ``workbench``: the child must not load the package
(or its settings) into the process that runs model-written code.

Guards, in order of strength: the jail the parent started it in (see
``jail.py``), OS limits (rlimits and a seccomp filter refusing fork, exec,
ptrace and namespace calls), an audit hook that refuses file access outside
the allowed roots, process spawning, sockets and frame introspection, and an
import allow-list for the program's own imports.  The audit hook and the
allow-list live in the program's own interpreter, so a determined program can
get round them: they are defence in depth and a record of intent, never the
barrier.  Every refusal is recorded, so a program that catches the exception
still ends as a violation, and a guard found switched off afterwards is
recorded as tampering.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import io
import json
import linecache
import os
import resource
import signal
import sys
import sysconfig
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

USER_FILENAME = "<program>"

# Read-only system facts libraries probe (CPU quota, time zones); nothing private.
SYSTEM_INFO = (
    "/usr/share/zoneinfo",
    "/etc/localtime",
    "/sys/fs/cgroup",
    "/sys/devices/system/cpu",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/dev/null",
    "/dev/urandom",
)

_PROCESS_EVENTS = frozenset(
    {
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.kill",
        "os.killpg",
        "subprocess.Popen",
        "pty.spawn",
        "resource.setrlimit",
        "resource.prlimit",
        "sys.addaudithook",
    }
)
_NATIVE_EVENTS = frozenset(
    {
        "ctypes.call_function",
        "ctypes.dlsym",
        "ctypes.dlsym/handle",
        "ctypes.cdata",
        "ctypes.cdata/buffer",
        "ctypes.string_at",
        "ctypes.wstring_at",
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
    }
)
# reaching another frame's locals is how a program finds the guard to switch it off
_FRAME_ATTRIBUTES = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"})
_NETWORK_PREFIX = "socket."
_WRITE_PATH_EVENTS = frozenset(
    {
        "os.remove",
        "os.rmdir",
        "os.rename",
        "os.mkdir",
        "os.chmod",
        "os.chown",
        "os.link",
        "os.symlink",
        "os.truncate",
        "os.utime",
        "os.chflags",
        "os.lchflags",
        "os.setxattr",
        "os.removexattr",
        "os.chdir",
        "shutil.rmtree",
        "shutil.move",
        "shutil.copyfile",
        "shutil.copymode",
        "shutil.copystat",
        "shutil.chown",
    }
)
_READ_PATH_EVENTS = frozenset({"os.listdir", "os.scandir", "os.getxattr", "os.listxattr"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class SandboxViolation(PermissionError):
    """Raised by the guards; a PermissionError so well-behaved libraries cope."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ForbiddenImport(ImportError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.kind = "forbidden_import"


# -- policy -------------------------------------------------------------------


def library_roots() -> list[str]:
    """Directories the interpreter and installed packages are read from."""
    roots: set[str] = set()
    bases = [
        {},
        {"base": sys.base_prefix, "platbase": sys.base_exec_prefix},
    ]
    for overrides in bases:
        paths = sysconfig.get_paths(vars=overrides) if overrides else sysconfig.get_paths()
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            if key in paths:
                roots.add(os.path.realpath(paths[key]))
    for entry in sys.path:  # e.g. lib-dynload, pythonXY.zip; only inside the prefixes
        real = os.path.realpath(entry)
        prefixes = (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
        if any(real.startswith(os.path.realpath(p) + os.sep) for p in prefixes):
            roots.add(real)
    roots.update(SYSTEM_INFO)
    return sorted(roots)


def _inside(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


class Guard:
    """The audit hook and the import check, sharing one record of violations."""

    def __init__(
        self,
        *,
        workdir: str,
        read_roots: Sequence[str],
        read_only: Sequence[str],
        allowed_modules: Sequence[str],
    ) -> None:
        self.workdir = os.path.realpath(workdir)
        self.read_roots = [*read_roots, self.workdir]
        self.read_only = {os.path.realpath(p) for p in read_only}
        self.allowed = frozenset(allowed_modules)
        self.violations: list[tuple[str, str]] = []
        self.user_globals: dict[str, Any] = {}
        self.active = False
        self._busy = False  # the hook's own sys._getframe raises an event too

    def refuse(self, kind: str, message: str) -> SandboxViolation:
        self.violations.append((kind, message))
        return SandboxViolation(kind, message)

    # audit hook ---------------------------------------------------------

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active or self._busy:
            return
        self._busy = True
        try:
            self._audit(event, args)
        finally:
            self._busy = False

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            self._check_open(args)
        elif event in _PROCESS_EVENTS:
            raise self.refuse("forbidden_process", f"starting processes is not allowed ({event})")
        elif event.startswith(_NETWORK_PREFIX):
            raise self.refuse("network", f"network access is not allowed ({event})")
        elif event in _WRITE_PATH_EVENTS:
            for arg in args[:2]:
                if isinstance(arg, str | bytes | os.PathLike):
                    self._check_path(arg, write=True, what=event)
        elif event in _READ_PATH_EVENTS:
            if args and isinstance(args[0], str | bytes | os.PathLike):
                self._check_path(args[0], write=False, what=event)
        elif event == "sqlite3.connect":
            raise self.refuse("forbidden_io", "opening databases is not allowed")
        elif event == "sys._getframe" or (
            event == "object.__getattr__" and len(args) > 1 and args[1] in _FRAME_ATTRIBUTES
        ):
            if self._from_program():
                raise self.refuse("tampering", f"frame introspection is not allowed ({event})")
        elif event in _NATIVE_EVENTS or (event == "ctypes.dlopen" and self._from_program()):
            # libraries load ctypes on import (dlopen); calling through it is never needed
            raise self.refuse("forbidden_process", f"native code access is not allowed ({event})")

    def _from_program(self) -> bool:
        frame = sys._getframe(3)  # 0: here, 1: _audit(), 2: audit(), 3: who raised the event
        return frame.f_globals is self.user_globals

    def _check_open(self, args: tuple[Any, ...]) -> None:
        path, mode, flags = ([*list(args), None, None, None])[:3]
        if isinstance(path, int):
            raise self.refuse("forbidden_io", f"opening file descriptor {path} is not allowed")
        if path is None:
            return
        writing = False
        if isinstance(mode, str):
            writing = any(c in mode for c in "wax+")
        if isinstance(flags, int):
            writing = writing or bool(flags & _WRITE_FLAGS)
        self._check_path(path, write=writing, what="open")

    def _check_path(self, path: str | bytes | os.PathLike[Any], *, write: bool, what: str) -> None:
        raw = os.fsdecode(os.fspath(path))
        real = os.path.realpath(os.path.join(self.workdir, raw))
        if write:
            if real in self.read_only or not _inside(real, [self.workdir]):
                raise self.refuse("forbidden_io", f"{what} '{raw}': writing outside the sandbox")
            return
        if real in self.read_only or _inside(real, self.read_roots):
            return
        raise self.refuse("forbidden_io", f"{what} '{raw}': reading outside the sandbox")

    # import check -------------------------------------------------------

    def wrap_import(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def guarded_import(
            name: str,
            globals: Mapping[str, Any] | None = None,
            locals: Mapping[str, Any] | None = None,
            fromlist: Sequence[str] = (),
            level: int = 0,
        ) -> Any:
            caller = globals if globals is not None else sys._getframe(1).f_globals
            if not self._is_library(caller):
                top = name.partition(".")[0]
                if level or top not in self.allowed:
                    message = f"import of '{name}' is not allowed"
                    self.violations.append(("forbidden_import", message))
                    raise ForbiddenImport(message)
            return original(name, globals, locals, fromlist, level)

        return guarded_import

    def _is_library(self, globals: Mapping[str, Any]) -> bool:
        """True when the import statement runs inside an installed module's code."""
        if globals is self.user_globals:
            return False
        module = sys.modules.get(str(globals.get("__name__")))
        return module is not None and getattr(module, "__dict__", None) is globals


# -- running ---------------------------------------------------------------------------------

_VALUES: list[Any] = []


def _values() -> Any:
    """``values.py`` (as module ``sandbox_values``), loaded from beside this file (the child has no package path)."""
    if not _VALUES:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "values.py")
        spec = importlib.util.spec_from_file_location("sandbox_values", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["sandbox_values"] = module  # its own imports then count as library code
        spec.loader.exec_module(module)
        _VALUES.append(module)
    return _VALUES[0]


def _error_line(exc: BaseException) -> str:
    """``line N: Type: message`` for the innermost frame of the program."""
    line = None
    tb = exc.__traceback__
    while tb is not None:  # walked by hand: extract_tb would read library sources
        if tb.tb_frame.f_code.co_filename == USER_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    if isinstance(exc, SyntaxError) and exc.filename == USER_FILENAME:
        line = exc.lineno
    label = "" if isinstance(exc, SandboxViolation | ForbiddenImport) else type(exc).__name__
    text = (f"{label}: {exc}" if label else str(exc)).strip()
    text = (text.splitlines() or [label])[0][:500]
    return f"line {line}: {text}" if line is not None else text


def _kind_of(exc: BaseException) -> str:
    if isinstance(exc, SandboxViolation | ForbiddenImport):
        return exc.kind
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, SyntaxError):
        return "syntax"
    return "exception"


#: the exit status for the CPU limit, as a shell reports death by SIGXCPU
CPU_LIMIT_EXIT = 128 + 24


def set_limits(limits: Mapping[str, int]) -> None:
    cpu = limits["cpu_s"]
    # soft < hard: SIGXCPU at the soft limit ends the process before the hard kill.  It
    # exits with a status, not by the signal: ``unshare --fork`` (the fallback when the
    # jail cannot run) reports any death by signal as a plain failure, so the supervisor
    # would read a CPU limit as a crash.  A program that resets the handler is still
    # killed, by the signal or the hard limit.
    signal.signal(signal.SIGXCPU, lambda signum, frame: os._exit(CPU_LIMIT_EXIT))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    pairs = (
        (resource.RLIMIT_AS, limits["memory_bytes"]),
        (resource.RLIMIT_FSIZE, limits["file_bytes"]),
        (resource.RLIMIT_NOFILE, limits["open_files"]),
        (resource.RLIMIT_CORE, 0),
    )
    for which, value in pairs:
        resource.setrlimit(which, (value, value))
    # ignored for root, and may be refused in some containers: best effort
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"], limits["processes"]))


def run(job: Mapping[str, Any], report: io.TextIOBase) -> None:
    guard = Guard(
        workdir=os.getcwd(),
        read_roots=library_roots(),
        read_only=job.get("read_only", ()),
        allowed_modules=job["allowed_modules"],
    )
    user_globals: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    guard.user_globals = user_globals
    outcome: dict[str, Any] = {"status": "ok"}
    source = str(job["code"])
    # tracebacks show the program's lines without reading a file
    linecache.cache[USER_FILENAME] = (len(source), None, source.splitlines(True), USER_FILENAME)
    try:
        code = compile(source, USER_FILENAME, "exec")
    except (SyntaxError, ValueError) as exc:
        outcome = {"status": "error", "kind": "syntax", "error": _error_line(exc)}
        code = None
    filtered = False
    if code is not None:
        set_limits(job["limits"])
        if job.get("syscall_filter", True):
            filtered = install_syscall_filter()
        guarded_import = guard.wrap_import(builtins.__import__)
        builtins.__import__ = guarded_import
        _disable_fork_exec(guard)
        sys.addaudithook(guard.audit)
        guard.active = True
        outcome, failure = _execute(code, job.get("entry"), user_globals)
        if not guard.active or builtins.__import__ is not guarded_import:
            guard.violations.append(("tampering", "the program switched the sandbox guard off"))
        guard.active = False  # the traceback reads library sources: not the program's doing
        if failure is not None:
            traceback.print_exception(failure, file=sys.stderr)
    outcome["violations"] = [{"kind": k, "message": m} for k, m in guard.violations]
    outcome["syscall_filter"] = filtered
    _flush_program_output()
    report.write(json.dumps(outcome) + "\n")
    report.flush()


# -- the seccomp filter -------------------------------------------------------------------

# Refused with EPERM: new programs, new processes (clone is allowed for threads only,
# CLONE_THREAD; clone3 hides its flags in memory, so it answers ENOSYS and the C library
# falls back to clone), other processes' memory, namespaces, and kernel attack surface.
_REFUSED = (
    "execve",
    "execveat",
    "fork",
    "vfork",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "userfaultfd",
    "perf_event_open",
    "kexec_load",
    "init_module",
    "finit_module",
    "delete_module",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
)
_NUMBERS = {
    "x86_64": {
        "execve": 59,
        "execveat": 322,
        "fork": 57,
        "vfork": 58,
        "ptrace": 101,
        "process_vm_readv": 310,
        "process_vm_writev": 311,
        "unshare": 272,
        "setns": 308,
        "mount": 165,
        "umount2": 166,
        "pivot_root": 155,
        "chroot": 161,
        "keyctl": 250,
        "add_key": 248,
        "request_key": 249,
        "bpf": 321,
        "userfaultfd": 323,
        "perf_event_open": 298,
        "kexec_load": 246,
        "init_module": 175,
        "finit_module": 313,
        "delete_module": 176,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "clone": 56,
        "clone3": 435,
    },
    "aarch64": {
        "execve": 221,
        "execveat": 281,
        "ptrace": 117,
        "process_vm_readv": 270,
        "process_vm_writev": 271,
        "unshare": 97,
        "setns": 268,
        "mount": 40,
        "umount2": 39,
        "pivot_root": 41,
        "chroot": 51,
        "keyctl": 219,
        "add_key": 217,
        "request_key": 218,
        "bpf": 280,
        "userfaultfd": 282,
        "perf_event_open": 241,
        "kexec_load": 104,
        "init_module": 105,
        "finit_module": 273,
        "delete_module": 106,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "clone": 220,
        "clone3": 435,
    },
}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_CLONE_THREAD = 0x00010000
_EPERM, _ENOSYS = 1, 38


def syscall_filter_program(machine: str) -> list[tuple[int, int, int, int]] | None:
    """The classic-BPF seccomp program (code, jt, jf, k) for ``machine``, or None."""
    numbers = _NUMBERS.get(machine)
    if numbers is None:
        return None
    arch, clone, clone3 = _AUDIT_ARCH[machine], numbers["clone"], numbers["clone3"]
    refused = [numbers[name] for name in _REFUSED if name in numbers]  # arm64 has no fork
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, deny, nosys = 0x7FFF0000, 0x00050000 | _EPERM, 0x00050000 | _ENOSYS
    # labels resolved after layout: jumps are relative to the next instruction
    body: list[tuple[int, str | int, str | int, int]] = [
        (ld, 0, 0, 4),  # seccomp_data.arch
        (jeq, 0, "deny", arch),  # another ABI (32-bit calls on x86-64): refused
        (ld, 0, 0, 0),  # seccomp_data.nr
    ]
    if machine == "x86_64":
        body.append((jge, "deny", 0, 0x40000000))  # the x32 ABI
    body += [(jeq, "deny", 0, nr) for nr in refused]
    body += [(jeq, "nosys", 0, clone3), (jeq, 0, "allow", clone)]
    body += [(ld, 0, 0, 16), (jset, "allow", "deny", _CLONE_THREAD)]  # args[0], low word
    labels = {"allow": len(body), "deny": len(body) + 1, "nosys": len(body) + 2}
    program = []
    for i, (code, jt, jf, k) in enumerate(body):
        jt_off = labels[jt] - i - 1 if isinstance(jt, str) else jt
        jf_off = labels[jf] - i - 1 if isinstance(jf, str) else jf
        program.append((code, jt_off, jf_off, k))
    return [*program, (ret, 0, 0, allow), (ret, 0, 0, deny), (ret, 0, 0, nosys)]


def install_syscall_filter() -> bool:
    """Refuse fork, exec, ptrace and namespace calls from here on; False where impossible."""
    if not sys.platform.startswith("linux"):
        return False
    program = syscall_filter_program(os.uname().machine)
    if program is None:
        return False
    try:
        import ctypes
    except ImportError:
        return False

    class SockFilter(ctypes.Structure):
        _fields_ = [
            ("code", ctypes.c_uint16),
            ("jt", ctypes.c_uint8),
            ("jf", ctypes.c_uint8),
            ("k", ctypes.c_uint32),
        ]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(SockFilter))]

    filters = (SockFilter * len(program))(*[SockFilter(*insn) for insn in program])
    fprog = SockFprog(len(program), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0:
        return False
    return bool(libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.byref(fprog), 0, 0) == 0)


def _disable_fork_exec(guard: Guard) -> None:
    """``_posixsubprocess.fork_exec`` spawns without an audit event: replace it.

    Libraries (numpy, pandas) import ``subprocess``, so the module is reachable
    through ``sys.modules`` even though the program may not import it.
    """
    import _posixsubprocess
    import subprocess

    def refuse(*args: object, **kwargs: object) -> None:
        raise guard.refuse("forbidden_process", "starting processes is not allowed (fork_exec)")

    _posixsubprocess.fork_exec = refuse  # type: ignore[assignment]
    if hasattr(subprocess, "_fork_exec"):  # newer Pythons keep their own reference
        subprocess._fork_exec = refuse


def _execute(
    code: Any, entry: str | None, user_globals: dict[str, Any]
) -> tuple[dict[str, Any], BaseException | None]:
    """Run the program (and its entry); the outcome, and the exception if it failed."""
    try:
        try:
            exec(code, user_globals)
        except SystemExit as exc:
            if exc.code not in (None, 0):
                raise
        if entry is None:
            return {"status": "ok"}, None
        function = user_globals.get(entry)
        if not callable(function):
            return {"status": "error", "kind": "no_result", "error": f"no function {entry}()"}, None
        value = function()
        if value is None:
            no_value = f"{entry}() returned None"
            return {"status": "error", "kind": "no_result", "error": no_value}, None
        return {"status": "ok", "value": _values().describe(value)}, None
    except BaseException as exc:  # every way the program can fail becomes an outcome
        return {"status": "error", "kind": _kind_of(exc), "error": _error_line(exc)}, exc


def _flush_program_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def main() -> None:
    job = json.loads(sys.stdin.read())
    sys.stdin.close()
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    sys.set_int_max_str_digits(0)
    _values()  # loaded before the guards: reading its source is not the program's doing
    report = os.fdopen(int(job["report_fd"]), "w", encoding="utf-8")
    try:
        run(job, report)
    finally:
        report.close()
        _flush_program_output()
    os._exit(0)  # skip atexit handlers the program may have registered


if __name__ == "__main__":
    main()
